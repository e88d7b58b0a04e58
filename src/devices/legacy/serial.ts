import type { BusDevice, InterruptLine } from '../bus';

/**
 * A 16550A UART as Linux's 8250 driver probes and drives it (COM1: port 0x3f8, 8 ports, IRQ 4).
 * Transmission is instantaneous, so THR/TEMT always read as empty. Register semantics follow the
 * National PC16550D datasheet; the probe sequence it has to satisfy is 8250_port.c's autoconfig().
 */

// Register offsets (DLAB=0 meaning first; DLL/DLM share 0/1 when LCR.DLAB=1).
const RBR_THR = 0;
const IER = 1;
const IIR_FCR = 2;
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDA = 0x01; // received data available
const IER_THRE = 0x02; // transmitter holding register empty
const IER_RLS = 0x04; // receiver line status
const IER_MS = 0x08; // modem status
const IER_MASK = 0x0f; // bits 4-7 read as 0 on a 16550A: autoconfig relies on it

const IIR_NONE = 0x01;
const IIR_MS = 0x00;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_RLS = 0x06;
const IIR_TIMEOUT = 0x0c; // data below the trigger level: the 4-character timeout has elapsed
const IIR_FIFO_BITS = 0xc0;

const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const RX_TRIGGER = [1, 4, 8, 14];

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
// Outside loopback the line looks like a cable with the other end ready: CTS, DSR, DCD up.
const MSR_DEFAULT_LINES = MSR_DCD | MSR_DSR | MSR_CTS;

// 1.8432 MHz / 16 / 12 = 9600 baud, the usual reset value of the divisor.
const DEFAULT_DIVISOR = 12;
const OUTPUT_BATCH = 4096;

// Pending-condition bits, used to detect when an enabled condition newly becomes pending.
const P_RLS = 1;
const P_RDA = 2;
const P_THRE = 4;
const P_MS = 8;

export interface SerialOptions {
  /** Receive FIFO size; a real 16550A has 16, more keeps stdin bursts from stalling. Default 64. */
  fifoCapacity?: number;
  /**
   * When given, transmitted bytes are gathered and handed to the sink in one Buffer when the
   * scheduled callback runs (the VMM passes a 2 ms timer, see vmm/legacy-devices.ts), when 4 KiB
   * accumulate, or when flush() is called. At most one callback is pending at a time; it may
   * return a function that cancels it, which flush() calls. Without it each byte goes to the
   * sink as soon as the guest writes it.
   */
  scheduleFlush?: (flush: () => void) => (() => void) | void;
}

/**
 * Told whether the guest transmits by polling (it has read LSR, and IER.THRE is clear: Linux's
 * console reads LSR before each THR write) or waits for THRE interrupts. While polled, the VMM
 * may let KVM queue THR writes without an exit (coalesced PIO, vmm/queued-writes.ts): the next
 * exit, the LSR read, applies them first, and no interrupt depends on seeing them at once. A
 * guest that never reads LSR keeps an exit per write, so its output is never held back.
 */
export type PolledTransmitHook = (polled: boolean) => void;

/**
 * Which of the guest's accesses the vCPU threads may answer themselves (vmm/serial-fast-path.ts),
 * recomputed after every access and input: `lsr`, the value an LSR read returns while nothing
 * would change it (no input waiting, no error bit, and the guest already polls, so the first
 * poll is seen here); `thr`, whether a THR write may only be queued for the sink (polled
 * transmit, DLAB clear, no loopback: nothing but the output depends on it).
 */
export interface SerialFastRules {
  lsr: number | undefined;
  thr: boolean;
}
export type SerialFastRulesHook = (rules: SerialFastRules) => void;

/** Serial.saveState's plain data. */
export interface SerialState {
  ier: number; lcr: number; mcr: number; scr: number; dll: number; dlm: number;
  fifoEnabled: boolean; rxTrigger: number; overrun: boolean; msrDeltas: number;
  threPending: boolean; lastRbr: number; pending: number; lsrPolled: boolean;
  /** The receive FIFO, oldest byte first. */
  rx: number[];
}

export class Serial implements BusDevice {
  // Metrics, read by the metrics module.
  bytesOut = 0;
  /** Bytes accepted from the host into the receive FIFO. */
  bytesIn = 0;
  /** Guest reads of RBR with nothing received. */
  missedReads = 0;
  /** Bytes lost to a full receive FIFO (only possible in loopback). */
  overruns = 0;

  private ier = 0;
  private lcr = 0x03; // 8N1
  private mcr = MCR_OUT2; // routed from reset, so a guest that never writes MCR still gets IRQs
  private scr = 0;
  private dll = DEFAULT_DIVISOR;
  private dlm = 0;
  private fifoEnabled = false;
  private rxTrigger = 1;
  private overrun = false;
  private msrDeltas = 0;
  private threPending = false;
  private lastRbr = 0;
  private pending = 0; // enabled pending conditions as last signalled

  private readonly rx: Uint8Array;
  private rxHead = 0;
  private rxCount = 0;
  private inputBlocked = false;
  private inputSpaceCb: (() => void) | undefined;

  private readonly out: Buffer | undefined;
  private outLen = 0;
  private flushScheduled = false;
  private cancelScheduledFlush: (() => void) | undefined;
  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false;
    this.cancelScheduledFlush = undefined;
    this.flush();
  };

  private polledTransmitHook: PolledTransmitHook | undefined;
  private fastRulesHook: SerialFastRulesHook | undefined;
  private fastLsr: number | undefined;
  private fastThr = false;
  private lsrPolled = false;
  private toldPolled = false;

  constructor(
    private readonly interrupt: InterruptLine,
    private readonly output: (bytes: Buffer) => void,
    private readonly options: SerialOptions = {},
  ) {
    this.rx = new Uint8Array(options.fifoCapacity ?? 64);
    if (options.scheduleFlush) this.out = Buffer.allocUnsafe(OUTPUT_BATCH);
  }

  /**
   * The registers and the receive FIFO, as plain data for a snapshot (output not yet written is
   * flushed first, so it is never saved twice nor lost).
   */
  saveState(): SerialState {
    this.flush();
    const rx = Array.from({ length: this.rxCount }, (_, i) => this.rx[(this.rxHead + i) % this.rx.length]);
    return {
      ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm,
      fifoEnabled: this.fifoEnabled, rxTrigger: this.rxTrigger, overrun: this.overrun, msrDeltas: this.msrDeltas,
      threPending: this.threPending, lastRbr: this.lastRbr, pending: this.pending, lsrPolled: this.lsrPolled, rx,
    };
  }

  /** Puts a saved state back (on a fresh Serial, before the guest runs); the guest's IRQ line state is the irqchip's. */
  restoreState(s: SerialState): void {
    ({ ier: this.ier, lcr: this.lcr, mcr: this.mcr, scr: this.scr, dll: this.dll, dlm: this.dlm } = s);
    ({ fifoEnabled: this.fifoEnabled, rxTrigger: this.rxTrigger, overrun: this.overrun, msrDeltas: this.msrDeltas } = s);
    ({ threPending: this.threPending, lastRbr: this.lastRbr, pending: this.pending, lsrPolled: this.lsrPolled } = s);
    this.rxHead = 0;
    this.rxCount = 0;
    for (const byte of s.rx.slice(0, this.rx.length)) this.pushRx(byte);
    this.noteFastRules();
  }

  /** The registers and fast-path bookkeeping (debug dumps). */
  debugState(): Record<string, unknown> {
    return {
      ier: this.ier, lcr: this.lcr, mcr: this.mcr, rxCount: this.rxCount, overrun: this.overrun, threPending: this.threPending,
      pending: this.pending, lsrPolled: this.lsrPolled, toldPolled: this.toldPolled, fastLsr: this.fastLsr, fastThr: this.fastThr,
      outLen: this.outLen, flushScheduled: this.flushScheduled,
    };
  }

  /** Installs the hook and tells it the current rules; it is told again on every change. */
  onFastRules(hook: SerialFastRulesHook): void {
    this.fastRulesHook = hook;
    this.fastLsr = this.fastLsrValue();
    this.fastThr = this.fastThrAllowed();
    hook({ lsr: this.fastLsr, thr: this.fastThr });
  }

  private fastLsrValue(): number | undefined {
    return this.lsrPolled && this.rxCount === 0 && !this.overrun ? LSR_THRE | LSR_TEMT : undefined;
  }

  private fastThrAllowed(): boolean {
    return this.transmitPolled() && (this.lcr & LCR_DLAB) === 0 && (this.mcr & MCR_LOOP) === 0;
  }

  private noteFastRules(): void {
    if (!this.fastRulesHook) return;
    const lsr = this.fastLsrValue();
    const thr = this.fastThrAllowed();
    if (lsr === this.fastLsr && thr === this.fastThr) return;
    this.fastLsr = lsr;
    this.fastThr = thr;
    this.fastRulesHook({ lsr, thr });
  }

  /** Installs the hook and tells it the current mode; it is told again on every change. */
  onPolledTransmit(hook: PolledTransmitHook): void {
    this.polledTransmitHook = hook;
    this.toldPolled = this.transmitPolled();
    hook(this.toldPolled);
  }

  private transmitPolled(): boolean {
    return this.lsrPolled && (this.ier & IER_THRE) === 0;
  }

  private notePolledTransmit(): void {
    const polled = this.transmitPolled();
    if (polled === this.toldPolled || !this.polledTransmitHook) return;
    this.toldPolled = polled;
    this.polledTransmitHook(polled);
  }

  /** Offers host input (stdin) to the guest; returns how many bytes fit. */
  enqueueInput(bytes: Buffer): number {
    let accepted = 0;
    // In loopback the receiver is wired to the transmitter, so outside input is refused.
    if (!(this.mcr & MCR_LOOP)) {
      accepted = Math.min(bytes.length, this.rx.length - this.rxCount);
      for (let i = 0; i < accepted; i++) this.pushRx(bytes[i]);
    }
    if (accepted < bytes.length) this.inputBlocked = true;
    this.bytesIn += accepted;
    this.updateInterrupt();
    this.noteFastRules();
    return accepted;
  }

  /**
   * `cb` runs once the guest has drained the receive FIFO after enqueueInput refused bytes:
   * the VMM stops reading stdin when input is refused and resumes here.
   */
  onInputSpace(cb: () => void): void {
    this.inputSpaceCb = cb;
  }

  /** Hands any gathered output to the sink now (and cancels the pending scheduled flush). */
  flush(): void {
    if (this.flushScheduled) {
      this.flushScheduled = false;
      const cancel = this.cancelScheduledFlush;
      this.cancelScheduledFlush = undefined;
      cancel?.();
    }
    if (!this.out || this.outLen === 0) return;
    const chunk = Buffer.from(this.out.subarray(0, this.outLen));
    this.outLen = 0;
    this.output(chunk);
  }

  read(offset: number, data: Buffer): void {
    // Wider accesses are split into byte cycles, as the ISA bus does.
    for (let i = 0; i < data.length; i++) data[i] = this.readByte(offset + i);
    this.updateInterrupt();
    this.maybeSignalSpace();
    this.noteFastRules();
  }

  write(offset: number, data: Buffer): void {
    for (let i = 0; i < data.length; i++) this.writeByte(offset + i, data[i]);
    this.updateInterrupt();
    this.maybeSignalSpace();
    this.noteFastRules();
  }

  private readByte(offset: number): number {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR:
        return dlab ? this.dll : this.popRx();
      case IER:
        return dlab ? this.dlm : this.ier;
      case IIR_FCR: {
        const id = this.interruptId();
        if (id === IIR_THRE) this.threPending = false; // reading IIR acknowledges THRE
        return id | (this.fifoEnabled ? IIR_FIFO_BITS : 0);
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR: {
        const v = (this.rxCount > 0 ? LSR_DR : 0) | (this.overrun ? LSR_OE : 0) | LSR_THRE | LSR_TEMT;
        this.overrun = false; // error bits clear on read
        if (!this.lsrPolled) {
          this.lsrPolled = true;
          this.notePolledTransmit();
        }
        return v;
      }
      case MSR: {
        const v = this.msrLines() | this.msrDeltas;
        this.msrDeltas = 0;
        return v;
      }
      case SCR:
        return this.scr;
      default:
        return 0xff;
    }
  }

  private writeByte(offset: number, v: number): void {
    const dlab = (this.lcr & LCR_DLAB) !== 0;
    switch (offset) {
      case RBR_THR:
        if (dlab) this.dll = v;
        else this.transmit(v);
        break;
      case IER:
        if (dlab) {
          this.dlm = v;
        } else {
          const enablingThre = (v & IER_THRE) !== 0 && (this.ier & IER_THRE) === 0;
          this.ier = v & IER_MASK;
          this.notePolledTransmit();
          // The holding register is always empty, so enabling THRE makes it pending at once.
          this.threPending = enablingThre || (this.threPending && (v & IER_THRE) !== 0);
        }
        break;
      case IIR_FCR:
        this.writeFcr(v);
        break;
      case LCR:
        this.lcr = v;
        break;
      case MCR: {
        const before = this.msrLines();
        this.mcr = v & MCR_MASK;
        this.noteLineChanges(before, this.msrLines());
        break;
      }
      case SCR:
        this.scr = v;
        break;
      default:
        break; // LSR and MSR are read-only
    }
  }

  private transmit(byte: number): void {
    if (this.mcr & MCR_LOOP) {
      if (this.rxCount === this.rx.length) {
        this.overrun = true;
        this.overruns++;
      } else {
        this.pushRx(byte);
      }
    } else {
      this.emit(byte);
    }
    // Writing THR clears THRE; it is empty again at once, so the interrupt re-arms as an edge.
    this.threPending = true;
    this.pending &= ~P_THRE;
  }

  private emit(byte: number): void {
    this.bytesOut++;
    if (!this.out) {
      this.output(Buffer.of(byte));
      return;
    }
    this.out[this.outLen++] = byte;
    if (this.outLen === this.out.length) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      this.cancelScheduledFlush = this.options.scheduleFlush!(this.scheduledFlush) ?? undefined;
    }
  }

  private writeFcr(v: number): void {
    const enable = (v & FCR_ENABLE) !== 0;
    // Toggling the FIFO enable empties the FIFOs (datasheet, FCR bit 0).
    if (enable !== this.fifoEnabled) this.clearRx();
    this.fifoEnabled = enable;
    if (!enable) return; // other FCR bits are only programmed while bit 0 is set
    if (v & FCR_CLEAR_RX) this.clearRx();
    this.rxTrigger = RX_TRIGGER[v >> 6];
  }

  /** Modem input lines: looped back from MCR in loopback mode (DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD). */
  private msrLines(): number {
    const m = this.mcr;
    if (!(m & MCR_LOOP)) return MSR_DEFAULT_LINES;
    return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0) | (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
  }

  private noteLineChanges(before: number, after: number): void {
    const changed = before ^ after;
    if (changed & MSR_CTS) this.msrDeltas |= 0x01; // DCTS
    if (changed & MSR_DSR) this.msrDeltas |= 0x02; // DDSR
    if (before & ~after & MSR_RI) this.msrDeltas |= 0x04; // TERI: trailing edge only
    if (changed & MSR_DCD) this.msrDeltas |= 0x08; // DDCD
  }

  /** The highest-priority enabled pending interrupt, as IIR bits 0-3. */
  private interruptId(): number {
    const p = this.pendingConditions();
    if (p & P_RLS) return IIR_RLS;
    if (p & P_RDA) return this.fifoEnabled && this.rxCount < this.rxTrigger ? IIR_TIMEOUT : IIR_RDA;
    if (p & P_THRE) return IIR_THRE;
    if (p & P_MS) return IIR_MS;
    return IIR_NONE;
  }

  private pendingConditions(): number {
    const ier = this.ier;
    return (
      (ier & IER_RLS && this.overrun ? P_RLS : 0) |
      (ier & IER_RDA && this.rxCount > 0 ? P_RDA : 0) |
      (ier & IER_THRE && this.threPending ? P_THRE : 0) |
      (ier & IER_MS && this.msrDeltas ? P_MS : 0)
    );
  }

  /**
   * Raises an edge when an enabled condition becomes pending. On a PC the UART's INTR pin reaches
   * the interrupt controller only through OUT2 (which loopback forces inactive), and Linux sets
   * OUT2 when it opens the port; gating on it keeps probe-time conditions from raising IRQ 4.
   */
  private updateInterrupt(): void {
    const routed = (this.mcr & (MCR_OUT2 | MCR_LOOP)) === MCR_OUT2;
    const now = routed ? this.pendingConditions() : 0;
    const rising = now & ~this.pending;
    this.pending = now;
    if (rising) this.interrupt.trigger();
  }

  private maybeSignalSpace(): void {
    if (this.inputBlocked && this.rxCount === 0 && !(this.mcr & MCR_LOOP)) {
      this.inputBlocked = false;
      this.inputSpaceCb?.();
    }
  }

  private pushRx(byte: number): void {
    this.rx[(this.rxHead + this.rxCount) % this.rx.length] = byte;
    this.rxCount++;
  }

  private popRx(): number {
    if (this.rxCount === 0) {
      this.missedReads++;
      return this.lastRbr; // RBR keeps the last character
    }
    this.lastRbr = this.rx[this.rxHead];
    this.rxHead = (this.rxHead + 1) % this.rx.length;
    this.rxCount--;
    return this.lastRbr;
  }

  private clearRx(): void {
    this.rxHead = 0;
    this.rxCount = 0;
  }
}
