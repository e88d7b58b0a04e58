import type { BusDevice } from '../bus';

/**
 * First page of the 32-bit MMIO window, just below the virtio-mmio devices. Guest inits must
 * write here (older Firecracker releases put the timer at 0xD000_0000 on x86_64).
 */
export const BOOT_TIMER_ADDRESS = 0xc000_0000;
export const BOOT_TIMER_LENGTH = 0x1000;

/** The byte a guest's init writes at offset 0 to say "booted". */
const BOOT_COMPLETE_MAGIC = 123;

/** Microsecond clocks, injectable so tests can fake them. */
export interface BootClock {
  /** Elapsed (monotonic) time, in microseconds since the process started. */
  wallUs(): number;
  /** CPU time (user + system) used by this process, in microseconds. */
  cpuUs(): number;
}

export const processClock: BootClock = {
  // process.uptime(), not perf_hooks: loading perf_hooks costs a VMM start ~12 modules.
  wallUs: () => process.uptime() * 1e6,
  cpuUs: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
};

export interface BootTimerOptions {
  /** Start of the measurement on the clock's scale; defaults to 0, the process start. */
  startWallUs?: number;
  /** CPU time already used at the start; defaults to 0, i.e. all CPU time of the process. */
  startCpuUs?: number;
  clock?: BootClock;
}

export interface BootTime {
  wallUs: number;
  cpuUs: number;
}

/**
 * The boot timer: a write of 123 at offset 0 logs how long the guest took to boot, in the line
 * format of Firecracker's boot timer, so existing boot-time tooling parses our logs.
 */
export class BootTimer implements BusDevice {
  /** The last measurement, for tests and metrics; undefined until the guest signals. */
  lastBootTime: BootTime | undefined;

  private readonly clock: BootClock;
  private readonly startWallUs: number;
  private readonly startCpuUs: number;

  constructor(
    private readonly log: (line: string) => void,
    options: BootTimerOptions = {},
  ) {
    this.clock = options.clock ?? processClock;
    this.startWallUs = options.startWallUs ?? 0;
    this.startCpuUs = options.startCpuUs ?? 0;
  }

  read(_offset: number, data: Buffer): void {
    data.fill(0);
  }

  write(offset: number, data: Buffer): void {
    if (offset !== 0 || data.length !== 1 || data[0] !== BOOT_COMPLETE_MAGIC) return;
    const wallUs = Math.max(0, Math.floor(this.clock.wallUs() - this.startWallUs));
    const cpuUs = Math.max(0, Math.floor(this.clock.cpuUs() - this.startCpuUs));
    this.lastBootTime = { wallUs, cpuUs };
    this.log(formatBootTime(wallUs, cpuUs));
  }
}

/** `Guest-boot-time = {us:>6} us {ms} ms, {cpu_us:>6} CPU us {cpu_ms} CPU ms` */
export function formatBootTime(wallUs: number, cpuUs: number): string {
  const pad = (n: number): string => String(n).padStart(6, ' ');
  const ms = (us: number): number => Math.floor(us / 1000);
  return `Guest-boot-time = ${pad(wallUs)} us ${ms(wallUs)} ms, ${pad(cpuUs)} CPU us ${ms(cpuUs)} CPU ms`;
}
