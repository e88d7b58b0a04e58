import type { BusDevice, InterruptLine } from '../bus';
import { SparklerError } from '../../errors';

/**
 * The PS/2 controller with a keyboard behind it, as Linux's i8042 and atkbd drivers probe it.
 * Register it on the port bus at 0x60 with length 5: offset 0 is the data port (0x60), offset 4
 * the status/command port (0x64); offsets 1-3 read as 0. There is no mouse: aux commands
 * answer as a PS/2 controller would, but no IRQ 12 is wired, so a guest without `i8042.noaux`
 * spends Linux's 250 ms aux-IRQ probe timeout finding that out.
 */

// Status register (port 0x64 read), bit names as in Linux's i8042.h.
const STR_OBF = 0x01;
const STR_SYSFLAG = 0x04;
const STR_CMDDAT = 0x08; // last write went to the command port
const STR_KEYLOCK = 0x10; // set = keyboard not inhibited; clear makes Linux warn "Keylock active"
const STR_AUXDATA = 0x20;

// Controller configuration byte ("CTR" in Linux).
const CTR_KBDINT = 0x01;
const CTR_SYSFLAG = 0x04;
const CTR_KBDDIS = 0x10;
const CTR_AUXDIS = 0x20;
const CTR_XLATE = 0x40;
// Translation off: Linux keeps what it finds (i8042_direct), so atkbd speaks raw set 2 to us and
// no set 2 -> set 1 translation table is needed for keyboard replies.
const CTR_INITIAL = CTR_KBDINT | CTR_SYSFLAG;

// Output port (0xD0/0xD1): bit 0 is the CPU reset line (active low), bit 1 the A20 gate.
const OUTPORT_INITIAL = 0x03;

const KBD_ACK = 0xfa;
const KBD_RESEND = 0xfe;
const KBD_BAT_OK = 0xaa;
const KBD_ID = [0xab, 0x83]; // MF2 keyboard

const AUX_FLAG = 0x100; // queue entries carry "came from the aux port" in bit 8
const BUFFER_SIZE = 16; // Linux's I8042_BUFFER_SIZE

// Left Ctrl, left Alt, Delete: make codes only, as a user pressing the three keys.
const CTRL_ALT_DEL_SET2 = [0x14, 0x11, 0xe0, 0x71];
const CTRL_ALT_DEL_SET1 = [0x1d, 0x38, 0xe0, 0x53]; // what the controller emits when translating

/** I8042.saveState's plain data. */
export interface I8042State {
  ctr: number; outPort: number; queue: number[]; lastData: number; lastWasCommand: boolean;
  pendingCommand: number; pendingKbdCommand: number; lastKbdByte: number; irqLevel: boolean;
  scancodeSet: number; scanning: boolean; leds: number;
}

export class I8042 implements BusDevice {
  private ctr = CTR_INITIAL;
  private outPort = OUTPORT_INITIAL;
  private readonly queue: number[] = [];
  private lastData = 0;
  private lastWasCommand = false;
  /** A controller command waiting for its parameter byte on port 0x60. */
  private pendingCommand = 0;
  /** A keyboard command waiting for its parameter byte. */
  private pendingKbdCommand = 0;
  private lastKbdByte = KBD_BAT_OK;
  private irqLevel = false;
  /** Keyboard state the guest can query or set; kept for fidelity, not acted on. */
  scancodeSet = 2;
  scanning = true;
  leds = 0;

  constructor(
    private readonly interrupt: InterruptLine,
    private readonly onReset: () => void,
  ) {}

  /** The controller's registers, output queue and keyboard state, as plain data for a snapshot. */
  saveState(): I8042State {
    return {
      ctr: this.ctr, outPort: this.outPort, queue: [...this.queue], lastData: this.lastData, lastWasCommand: this.lastWasCommand,
      pendingCommand: this.pendingCommand, pendingKbdCommand: this.pendingKbdCommand, lastKbdByte: this.lastKbdByte,
      irqLevel: this.irqLevel, scancodeSet: this.scancodeSet, scanning: this.scanning, leds: this.leds,
    };
  }

  restoreState(s: I8042State): void {
    ({ ctr: this.ctr, outPort: this.outPort, lastData: this.lastData, lastWasCommand: this.lastWasCommand } = s);
    ({ pendingCommand: this.pendingCommand, pendingKbdCommand: this.pendingKbdCommand, lastKbdByte: this.lastKbdByte } = s);
    ({ irqLevel: this.irqLevel, scancodeSet: this.scancodeSet, scanning: this.scanning, leds: this.leds } = s);
    this.queue.splice(0, this.queue.length, ...s.queue.slice(0, BUFFER_SIZE));
  }

  /** Queues the make codes of Ctrl, Alt and Del so the guest's keyboard driver sees the salute. */
  triggerCtrlAltDel(): void {
    const codes = this.ctr & CTR_XLATE ? CTRL_ALT_DEL_SET1 : CTRL_ALT_DEL_SET2;
    const free = BUFFER_SIZE - this.queue.length;
    if (free < codes.length) {
      throw new SparklerError(
        'EI8042FULL',
        `The i8042 output buffer has room for ${free} bytes but Ctrl-Alt-Del needs ${codes.length}; the guest is not reading its keyboard.`,
      );
    }
    const wasEmpty = this.queue.length === 0;
    for (const c of codes) this.queue.push(c);
    this.updateIrq(wasEmpty);
  }

  read(offset: number, data: Buffer): void {
    data.fill(0);
    if (data.length === 0) return;
    if (offset === 0) data[0] = this.readData();
    else if (offset === 4) data[0] = this.status();
  }

  write(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    if (offset === 0) this.writeData(data[0]);
    else if (offset === 4) this.writeCommand(data[0]);
  }

  private status(): number {
    // IBF (bit 1) is never set: commands complete before the exit returns, so Linux's
    // kb_wait() before the 0xFE reset pulse finds the input buffer empty.
    const head = this.queue[0];
    return (
      (this.queue.length > 0 ? STR_OBF : 0) |
      (head !== undefined && head & AUX_FLAG ? STR_AUXDATA : 0) |
      (this.ctr & CTR_SYSFLAG ? STR_SYSFLAG : 0) |
      (this.lastWasCommand ? STR_CMDDAT : 0) |
      STR_KEYLOCK
    );
  }

  private readData(): number {
    const entry = this.queue.shift();
    // An empty output buffer still reads as the last byte delivered.
    if (entry !== undefined) this.lastData = entry & 0xff;
    this.updateIrq(entry !== undefined && this.queue.length > 0);
    return this.lastData;
  }

  private writeCommand(cmd: number): void {
    this.lastWasCommand = true;
    this.pendingCommand = 0;
    switch (cmd) {
      case 0x20: // read configuration byte
        this.respond(this.ctr);
        break;
      case 0x60: // write configuration byte
      case 0xd1: // write output port
      case 0xd2: // write keyboard output buffer
      case 0xd3: // write aux output buffer
      case 0xd4: // write to aux device
        this.pendingCommand = cmd;
        break;
      case 0xa7: // disable aux interface
        this.setCtr(this.ctr | CTR_AUXDIS);
        break;
      case 0xa8: // enable aux interface
        this.setCtr(this.ctr & ~CTR_AUXDIS);
        break;
      case 0xa9: // aux interface test: 0 = no error
      case 0xab: // keyboard interface test: 0 = no error
        this.respond(0x00);
        break;
      case 0xaa: // controller self test
        this.respond(0x55);
        break;
      case 0xad: // disable keyboard interface
        this.setCtr(this.ctr | CTR_KBDDIS);
        break;
      case 0xae: // enable keyboard interface
        this.setCtr(this.ctr & ~CTR_KBDDIS);
        break;
      case 0xd0: // read output port
        this.respond(this.outPort);
        break;
      default:
        // 0xF0-0xFF pulse output lines low for the bits clear in the low nibble; bit 0 is the
        // CPU reset line, so 0xFE (Linux's reboot=k) resets the machine.
        if ((cmd & 0xf0) === 0xf0 && (cmd & 0x01) === 0) this.onReset();
        break; // other commands are not implemented and are ignored
    }
  }

  private writeData(byte: number): void {
    this.lastWasCommand = false;
    const cmd = this.pendingCommand;
    this.pendingCommand = 0;
    switch (cmd) {
      case 0x60:
        this.setCtr(byte);
        return;
      case 0xd1:
        this.outPort = byte;
        if ((byte & 0x01) === 0) this.onReset(); // reset line driven low
        return;
      case 0xd2:
        this.respond(byte);
        return;
      case 0xd3:
        this.respond(byte | AUX_FLAG); // no IRQ 12 line: the aux byte is only polled
        return;
      case 0xd4:
        return; // no mouse behind the aux port
      default:
        this.keyboardByte(byte);
    }
  }

  /** A byte sent to the keyboard itself (port 0x60 with no controller command pending). */
  private keyboardByte(byte: number): void {
    const pending = this.pendingKbdCommand;
    this.pendingKbdCommand = 0;
    // A parameter is < 0x80; anything else aborts the pending command and starts a new one.
    if (pending !== 0 && byte < 0x80) {
      if (pending === 0xed) this.leds = byte & 0x07;
      if (pending === 0xf0) {
        if (byte === 0) {
          this.kbdReply(KBD_ACK, this.scancodeSet);
          return;
        }
        if (byte <= 3) this.scancodeSet = byte;
      }
      this.kbdReply(KBD_ACK);
      return;
    }
    switch (byte) {
      case 0xed: // set LEDs
      case 0xf0: // get/set scancode set
      case 0xf3: // set typematic rate
        this.pendingKbdCommand = byte;
        this.kbdReply(KBD_ACK);
        break;
      case 0xee: // echo
        this.kbdReply(0xee);
        break;
      case 0xf2: // identify
        this.kbdReply(KBD_ACK, ...KBD_ID);
        break;
      case 0xf4: // enable scanning
        this.scanning = true;
        this.kbdReply(KBD_ACK);
        break;
      case 0xf5: // disable scanning (and restore defaults)
        this.scanning = false;
        this.kbdReply(KBD_ACK);
        break;
      case 0xf6: // restore defaults
        this.kbdReply(KBD_ACK);
        break;
      case 0xf7: case 0xf8: case 0xf9: case 0xfa: case 0xfb: case 0xfc: case 0xfd:
        this.kbdReply(KBD_ACK); // set-3 key type commands: accepted, no effect
        break;
      case 0xfe: // resend the last byte
        this.kbdReply(this.lastKbdByte);
        break;
      case 0xff: // reset: ACK, then basic assurance test passed
        this.scancodeSet = 2;
        this.scanning = true;
        this.leds = 0;
        this.kbdReply(KBD_ACK, KBD_BAT_OK);
        break;
      default:
        this.kbdReply(KBD_RESEND); // unknown command
    }
  }

  private kbdReply(...bytes: number[]): void {
    for (const b of bytes) this.respond(b);
    this.lastKbdByte = bytes[bytes.length - 1];
  }

  /** Queues one byte for the guest; dropped when the buffer is full, as a busy keyboard would lose it. */
  private respond(entry: number): void {
    if (this.queue.length >= BUFFER_SIZE) return;
    const wasEmpty = this.queue.length === 0;
    this.queue.push(entry);
    this.updateIrq(wasEmpty);
  }

  private setCtr(value: number): void {
    this.ctr = value & 0xff;
    this.updateIrq(false);
  }

  /**
   * IRQ 1 is "keyboard byte in the output buffer and CTR.KBDINT set". An edge goes out when that
   * becomes true, or when a fresh byte reaches the head of the buffer while it stays true.
   */
  private updateIrq(newHead: boolean): void {
    const head = this.queue[0];
    const level = head !== undefined && (head & AUX_FLAG) === 0 && (this.ctr & CTR_KBDINT) !== 0;
    if (level && (!this.irqLevel || newHead)) this.interrupt.trigger();
    this.irqLevel = level;
  }
}
