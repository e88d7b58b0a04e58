/**
 * The legacy devices every microVM has, wired to the buses and to the guest's interrupts:
 * COM1 at 0x3f8 (IRQ 4), the i8042 at 0x60-0x64 (IRQ 1), the ACPI sleep registers (power-off)
 * and, with --boot-timer, the boot timer at MMIO 0xC000_0000.
 */
import { Bus } from '../devices/bus';
import { SLEEP_CONTROL_PORT } from '../arch/x86_64/acpi';
import { COM1_IRQ, COM1_PORT, COM1_PORT_COUNT, I8042_DATA_PORT, I8042_IRQ } from '../arch/x86_64/layout';
import { AcpiSleepControl } from '../devices/legacy/acpi-sleep';
import { BootTimer, BOOT_TIMER_ADDRESS, BOOT_TIMER_LENGTH } from '../devices/legacy/boot-timer';
import { I8042 } from '../devices/legacy/i8042';
import { Serial } from '../devices/legacy/serial';
import { VmFd } from '../kvm/vm';
import { IrqfdLine } from './irq-line';


/**
 * How long console output may wait before it is written, so that a burst (one vCPU exit per
 * byte) leaves in a few write(2)s instead of one per byte (~30x fewer measured). libuv counts
 * whole ms, so bytes wait 2-3 ms; a full 4 KiB batch, VM stop and log lines
 * (logger.beforeStdoutWrite) flush at once. 2 rather than 1 ms: each timer that fires during a
 * burst wakes the VMM thread, which costs the vCPU when both share a CPU (measured pinned with
 * taskset: 1 ms +2-3 CPU us per byte over setImmediate, 2 ms +1-2, 5 ms and more none).
 */
export const SERIAL_FLUSH_DELAY_MS = 2;

/**
 * Serial's scheduleFlush: one timer per batch, unref'd so pending output never keeps the process
 * alive (the VM's stop flushes it), and cancelled when the serial flushes for another reason.
 */
export function serialFlushTimer(delayMs: number = SERIAL_FLUSH_DELAY_MS): (flush: () => void) => () => void {
  return (flush) => {
    const timer = setTimeout(flush, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  };
}

export interface LegacyDevices {
  serial: Serial;
  i8042: I8042;
  bootTimer?: BootTimer;
  /** Writes pending console output and closes the interrupt eventfds. */
  close(): void;
}

export interface LegacyDeviceOptions {
  serialOutput: (bytes: Buffer) => void;
  onReset: () => void;
  /** The guest's ACPI power-off (S5); defaults to onReset: either way the VM ends cleanly. */
  onPowerOff?: () => void;
  bootTimer?: { log: (line: string) => void };
  /** How long console output may be held to be written in one go; default SERIAL_FLUSH_DELAY_MS. */
  serialFlushDelayMs?: number;
}

export function attachLegacyDevices(vm: VmFd, pio: Bus, mmio: Bus, opts: LegacyDeviceOptions): LegacyDevices {
  const serialIrq = IrqfdLine.register(vm, COM1_IRQ);
  let i8042Irq: IrqfdLine;
  try {
    i8042Irq = IrqfdLine.register(vm, I8042_IRQ);
  } catch (err) {
    serialIrq.close();
    throw err;
  }
  const serial = new Serial(serialIrq, opts.serialOutput, { scheduleFlush: serialFlushTimer(opts.serialFlushDelayMs) });
  pio.insert(serial, COM1_PORT, COM1_PORT_COUNT, 'serial');
  const i8042 = new I8042(i8042Irq, opts.onReset);
  // Ports 0x60-0x64: data, and the status/command register at 0x64.
  pio.insert(i8042, I8042_DATA_PORT, 5, 'i8042');
  pio.insert(new AcpiSleepControl(opts.onPowerOff ?? opts.onReset), SLEEP_CONTROL_PORT, 2, 'acpi-sleep');
  let bootTimer: BootTimer | undefined;
  if (opts.bootTimer) {
    bootTimer = new BootTimer(opts.bootTimer.log);
    mmio.insert(bootTimer, BOOT_TIMER_ADDRESS, BOOT_TIMER_LENGTH, 'boot-timer');
  }
  const close = (): void => {
    serial.flush();
    serialIrq.close();
    i8042Irq.close();
  };
  return { serial, i8042, bootTimer, close };
}
