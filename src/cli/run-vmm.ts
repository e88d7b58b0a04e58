/**
 * The VMM process: Firecracker's flags in, one microVM run to its end, an exit code out, as
 * Firecracker v1.16.1 (0 guest stopped; 1 VMM error, a bad config file or --metadata file;
 * 152 an invalid --level; 153 bad arguments). With --api-sock the
 * API server runs for the whole life of the process; --config-file configures (and boots) the
 * microVM at start, with or without the API.
 */
import * as fs from 'node:fs';
import { parseVmConfigText, VmConfig } from '../config/vm-config';
import { ConfigError } from '../config/validate';
import { osErrorText } from '../config/os-error';
import { logger } from '../logger/logger';
import { metrics } from '../metrics/metrics';
import { native, NativeShim } from '../native';
import { ArgumentError, InvalidLevelError, parseVmmArgs, StartTimes, USAGE, VmmArgs } from './args';
import { installFatalSignalHandlers } from './fatal-signals';
import { QuietWork, whenQuiet } from './when-quiet';
import { loadMetadata, MmdsMetadata } from './metadata';
import { VERSION, versionLine } from './version';
import { markStartup, startupMarksReport } from '../vmm/startup-marks';
import type { Vmm } from '../vmm/vmm';
import type { VmStopReason } from '../vmm/vcpu-runner';

export const EXIT = { OK: 0, GENERIC: 1, BAD_CONFIGURATION: 152, ARG_PARSING: 153 } as const;

function readConfigFile(path: string): VmConfig {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the config file ${path}: ${osErrorText(err)}.`);
  }
  return parseVmConfigText(text, path);
}

function configureLogging(args: VmmArgs): void {
  logger.configure({ instanceId: args.id, showLevel: args.showLevel, showLogOrigin: args.showLogOrigin, module: args.module });
  if (args.level) logger.configure({ level: args.level });
  if (args.logPath) logger.setLogPath(args.logPath);
  if (args.metricsPath) metrics.init(args.metricsPath);
}

/**
 * Whether fd 0 can be a terminal, decided without touching `process.stdin`: creating that
 * stream loads Node's stream, fs-stream, fs/promises and readline modules (about 0.25 MiB of
 * V8 heap for the life of the process), even when stdin is /dev/null. A terminal is a character
 * device; /dev/null, what a VMM host usually gives, is the one that is not.
 */
export function stdinMayBeTerminal(fd = 0): boolean {
  try {
    const st = fs.fstatSync(fd);
    return st.isCharacterDevice() && st.rdev !== fs.statSync('/dev/null').rdev;
  } catch {
    return false;
  }
}

/** Guest keystrokes: stdin feeds the UART only when it is a terminal (raw mode, so Ctrl-C reaches the guest). */
function connectTerminal(vmm: Vmm): void {
  if (!stdinMayBeTerminal()) return;
  const stdin = process.stdin;
  if (!stdin.isTTY) return;
  stdin.setRawMode(true);
  const serial = vmm.parts.devices.serial;
  let pending: Buffer = Buffer.alloc(0);
  const feed = () => {
    while (pending.length > 0) {
      const taken = serial.enqueueInput(pending);
      pending = pending.subarray(taken);
      if (taken === 0) {
        stdin.pause();
        serial.onInputSpace(() => { feed(); stdin.resume(); });
        return;
      }
    }
  };
  stdin.on('data', (chunk: Buffer) => { pending = Buffer.concat([pending, chunk]); feed(); });
  process.on('exit', () => stdin.setRawMode(false));
}

function fail(message: string, code: number): number {
  process.stderr.write(`sparkler: ${message}\n`);
  logger.error(message);
  return code;
}

/**
 * When the VMM gives back the memory that building the VM left behind. It looks every
 * `periodMs`; a look is quiet when fewer than `quietExits` vCPU exits happened since the
 * previous one. It settles at the first quiet look once the guest has said it booted (the boot
 * timer's mark) or, for guests that never say so, once `quietAfterMs` have passed; at the latest
 * after `maxWaitMs`. A booting Linux makes few exits per second, so "quiet" alone would put a
 * full collection in the middle of its boot, where it stalls the vCPUs' exits.
 */
export const SETTLE_MEMORY = { periodMs: 250, quietExits: 25, quietAfterMs: 3000, maxWaitMs: 10_000 } as const;

export interface SettleResult {
  /** V8 ran its memory-reducing collection (false when the addon or node lacks it). */
  collected: boolean;
  /** glibc gave pages back. */
  trimmed: boolean;
  /** CPU time the process used meanwhile, µs (all threads: V8 marks in parallel). */
  cpuUs: number;
}

/** V8's default --bytecode-old-age (major GCs a function may go unused before its bytecode is dropped). */
export const V8_DEFAULT_BYTECODE_OLD_AGE = 5;
/** How long the API must be quiet before the idle work (builder preload, memory settle) runs. */
export const IDLE_WORK_QUIET_MS = 100;

/**
 * Gives back the memory the set-up left behind, once the VM runs:
 * - node::LowMemoryNotification(): V8 collects all garbage in memory-reducing mode, which
 *   shrinks the young generation that building the VM grew (2 MiB of pages for 0.5 MiB of live
 *   objects), compacts the old generation and frees pooled pages, and frees garbage with big
 *   external backing stores (file Buffers read while building). A plain full GC (`gc()`)
 *   neither shrinks nor compacts; V8's own memory reducer does, but only after 8 s or more,
 *   and not reliably for a process this idle.
 * - with --bytecode-old-age at 1 for that collection, V8 drops the bytecode of functions that
 *   ran only while building the VM (builder, loaders, ACPI tables, config parsing), about
 *   0.25 MiB; a function that runs again is recompiled from its source. The age goes back to
 *   V8's default afterwards.
 * - malloc_trim(0): glibc keeps the freed pages of its arenas (V8's worker threads each have
 *   one) unless they sit at the very top of the main heap.
 * About 15 to 25 CPU ms, once per VM.
 */
export function settleMemory(shim: Pick<NativeShim, 'lowMemoryNotification' | 'mallocTrim' | 'setV8Flags'> = native(), ageBytecode = true): SettleResult {
  const before = process.cpuUsage();
  let collected = false;
  if (shim.lowMemoryNotification) {
    const aged = ageBytecode && shim.setV8Flags?.('--bytecode-old-age=1') === 0;
    try {
      collected = shim.lowMemoryNotification() === 0;
    } finally {
      if (aged) shim.setV8Flags!(`--bytecode-old-age=${V8_DEFAULT_BYTECODE_OLD_AGE}`);
    }
  }
  const trimmed = shim.mallocTrim !== undefined && shim.mallocTrim(0) === 1;
  const used = process.cpuUsage(before);
  return { collected, trimmed, cpuUs: used.user + used.system };
}

/** The Debug line after settling: RSS, external memory and the V8 heap by space (physical/used KiB). */
function memoryReport(): string {
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  const m = process.memoryUsage();
  // node:v8 is loaded only when the line is logged (it costs heap of its own).
  const v8 = require('node:v8') as typeof import('node:v8');
  const spaces = v8.getHeapSpaceStatistics()
    .filter((sp) => sp.physical_space_size > 0)
    .map((sp) => `${sp.space_name.replace(/_space$/, '')} ${Math.round(sp.physical_space_size / 1024)}/${Math.round(sp.space_used_size / 1024)}`);
  return `rss ${mib(m.rss)}, external ${mib(m.external)} (array buffers ${mib(m.arrayBuffers)}), V8 heap KiB physical/used: ${spaces.join(', ')}`;
}

/**
 * Settles memory once the VM has run for a moment with the guest quiet (see SETTLE_MEMORY).
 * Returns a function that cancels it. The timers never keep the process alive.
 */
export function scheduleMemorySettle(
  vmm: Pick<Vmm, 'exitCounters'> & { guestBooted?: () => boolean },
  opts: { periodMs: number; quietExits: number; quietAfterMs: number; maxWaitMs: number } = SETTLE_MEMORY,
  settle: () => SettleResult = () => settleMemory(),
): () => void {
  const exits = () => Object.values(vmm.exitCounters).reduce((a, b) => a + b, 0);
  const startedAt = process.uptime();
  let last = exits();
  let timer: NodeJS.Timeout | undefined;
  const look = () => {
    timer = undefined;
    const now = exits();
    const waited = (process.uptime() - startedAt) * 1000;
    const quiet = now - last < opts.quietExits;
    const ready = quiet && (vmm.guestBooted?.() === true || waited >= opts.quietAfterMs);
    if (!ready && waited < opts.maxWaitMs) {
      last = now;
      timer = setTimeout(look, opts.periodMs).unref();
      return;
    }
    const r = settle();
    if (logger.enabled('Debug')) {
      logger.debug(`Memory settled ${Math.round(waited)} ms after start (${r.collected ? 'V8 collected' : 'no V8 collection'}, ${r.trimmed ? 'malloc trimmed' : 'nothing to trim'}, ${(r.cpuUs / 1000).toFixed(1)} CPU ms): ${memoryReport()}.`);
    }
  };
  timer = setTimeout(look, opts.periodMs).unref();
  return () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
}

/** Exit code for how the VM ended, with the logging Firecracker does at that point. */
function stopped(vmm: Vmm, reason: VmStopReason, clockOffsetNs: bigint): number {
  if (vmm.firstRunNs !== undefined) {
    logger.debug(`VMM set-up: process start to first KVM_RUN ${(Number(vmm.firstRunNs - clockOffsetNs) / 1e6).toFixed(1)} ms.`);
    logger.debug(`VMM set-up milestones, ms since process start: ${startupMarksReport()}.`);
  }
  logger.debug(`vCPU exits: ${JSON.stringify(vmm.exitCounters)}; hand-overs: ${JSON.stringify(vmm.handoverCounters)}.`);
  if (reason.kind === 'error') return fail(`The microVM stopped on an error: ${reason.error.message}`, EXIT.GENERIC);
  if (reason.kind === 'triple-fault' && reason.state) logger.warn(`vCPU ${reason.vcpu ?? '?'} shut down (triple fault): ${reason.state}.`);
  logger.info(`Vmm is stopping (guest ${reason.kind}).`);
  return EXIT.OK;
}

/**
 * api_server.process_startup_time_us and _cpu_us, as Firecracker computes them from the
 * jailer's --start-time-us, --start-time-cpu-us and --parent-cpu-time-us: the time from the
 * jailer's start to a VMM ready to serve.
 */
export function startupTimes(t: StartTimes, monotonicUs: number, processCpuUs: number): { wallUs: number; cpuUs: number } | undefined {
  if (t.startTimeUs === undefined) return undefined;
  const wallUs = Math.max(0, monotonicUs - t.startTimeUs);
  const cpuUs = Math.max(0, processCpuUs - (t.startTimeCpuUs ?? 0) + (t.parentCpuTimeUs ?? 0));
  return { wallUs, cpuUs };
}

function recordStartupTime(t: StartTimes): void {
  const cpu = process.cpuUsage();
  const times = startupTimes(t, Number(native().monotonicNs() / 1000n), cpu.user + cpu.system);
  if (times) metrics.api.setProcessStartup(times.wallUs, times.cpuUs);
}

export async function runVmm(argv: string[]): Promise<number> {
  let args: VmmArgs;
  try {
    args = parseVmmArgs(argv);
  } catch (err) {
    if (err instanceof ArgumentError) return fail(err.message, EXIT.ARG_PARSING);
    if (err instanceof InvalidLevelError) return fail(err.message, EXIT.BAD_CONFIGURATION);
    throw err;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return EXIT.OK;
  }
  if (args.version) {
    process.stdout.write(versionLine());
    return EXIT.OK;
  }
  if (args.snapshotVersion || args.describeSnapshot !== undefined) {
    return (require('../snapshot/cli') as typeof import('../snapshot/cli')).printSnapshotVersion(args.describeSnapshot);
  }
  try {
    configureLogging(args);
  } catch (err) {
    return fail((err as Error).message, EXIT.GENERIC);
  }
  markStartup('main');
  logger.info(`Running Sparkler v${VERSION}`);
  // process.uptime() counts from Node's start on CLOCK_MONOTONIC, the clock the vCPU thread
  // stamps its first KVM_RUN with (and the boot timer's origin); perf_hooks is not loaded.
  const clockOffsetNs = native().monotonicNs() - BigInt(Math.round(process.uptime() * 1e9));

  let onStarted!: (vmm: Vmm) => void;
  const started = new Promise<Vmm>((resolve) => { onStarted = resolve; });
  // Kept for the metadata service, which fills its data store from it.
  let metadata: MmdsMetadata | undefined;
  if (args.mmds.metadataPath !== undefined) {
    try {
      metadata = loadMetadata(args.mmds.metadataPath, args.mmds.sizeLimit);
    } catch (err) {
      return fail((err as Error).message, EXIT.GENERIC);
    }
  }

  const { VmmController } = await import('../vmm/controller');
  const controller = new VmmController({
    instanceId: args.id,
    vmmVersion: VERSION,
    bootTimer: args.bootTimer,
    mmdsSizeLimit: args.mmds.sizeLimit,
    metadata: metadata?.data,
    onStarted: (vmm) => {
      logger.beforeStdoutWrite = () => vmm.parts.devices.serial.flush();
      connectTerminal(vmm);
      const bootTimer = vmm.parts.devices.bootTimer;
      const cancelSettle = scheduleMemorySettle({ exitCounters: vmm.exitCounters, guestBooted: () => bootTimer?.lastBootTime !== undefined });
      void vmm.waitForStop().then(cancelSettle);
      onStarted(vmm);
    },
  });

  // Installed before the API socket exists: a client may signal as soon as it can connect.
  let terminate!: (code: number) => void;
  const terminated = new Promise<number>((resolve) => { terminate = resolve; });
  installFatalSignalHandlers();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      const vmm = controller.runningVmm;
      if (vmm) vmm.stop({ kind: 'requested' });
      else terminate(EXIT.OK);
    });
  }

  // Seccomp on every thread from here on (Node's own threads exist by now; later ones inherit it).
  try {
    const { applySeccomp } = await import('../seccomp/vmm-filter');
    const insns = applySeccomp(args.seccomp, logger.fd);
    logger.debug(insns > 0 ? `Seccomp filter installed on every thread (${insns} BPF instructions).` : 'Seccomp is off (--no-seccomp).');
  } catch (err) {
    return fail(`Seccomp error: ${(err as Error).message}`, EXIT.GENERIC);
  }

  let config: VmConfig | undefined;
  if (args.configFile) {
    try {
      config = readConfigFile(args.configFile);
      controller.configure(config);
      markStartup('configured');
    } catch (err) {
      // Firecracker v1.16.1 exits 1 for any refusal of the file (152 is only for --level).
      return fail(`Configuration for VMM from one single json failed: ${(err as Error).message}`, EXIT.GENERIC);
    }
  }

  let server: { close(): Promise<void> } | undefined;
  let idleWork: QuietWork | undefined;
  if (!args.noApi) {
    const { ApiServer } = await import('../api/server');
    try {
      server = await ApiServer.listen({ socketPath: args.apiSock, maxPayload: args.httpApiMaxPayloadSize, controller, onActivity: () => idleWork?.poke() });
    } catch (err) {
      return fail((err as Error).message, EXIT.GENERIC);
    }
    logger.info('API server started.');
    recordStartupTime(args.startTimes);
    // Once no request has come for IDLE_WORK_QUIET_MS (a warm pool's VMM, or a client that takes
    // its time): load the builder for InstanceStart, then give back what start-up left (the young
    // generation it grew, the code cache's buffer, glibc's freed pages), keeping the bytecode a
    // claimed VMM's InstanceStart will run. Run at once after listen, it made the first request
    // wait ~10-20 ms behind it (a low-memory GC is two full collections).
    idleWork = whenQuiet(IDLE_WORK_QUIET_MS, () => {
      if (controller.runningVmm) return; // InstanceStart loaded the builder; the running VM settles on its own
      controller.preload();
      try {
        settleMemory(undefined, false);
      } catch (err) {
        // Best effort: a VMM that cannot load the addon still serves its API (and says why at InstanceStart).
        logger.debug(`Idle memory settle skipped: ${(err as Error).message}`);
      }
    });
  }
  const cleanUp = () => {
    idleWork?.cancel(); // no memory settle while the VMM winds down
    metrics.flush();
    metrics.stop();
    if (server) {
      void server.close();
      try { fs.unlinkSync(args.apiSock); } catch { /* already gone */ }
    }
  };


  if (config) {
    if (args.noApi) recordStartupTime(args.startTimes);
    try {
      await controller.handle({ kind: 'StartMicroVm' });
    } catch (err) {
      cleanUp();
      return fail(`Could not Start MicroVM from one single json: ${(err as Error).message.replace(/^Start microvm error: /, '')}`, EXIT.GENERIC);
    }
    logger.info('Successfully started microvm that was configured from one single json');
  }

  const code = await Promise.race([
    started.then(async (vmm) => stopped(vmm, await vmm.waitForStop(), clockOffsetNs)),
    terminated,
  ]);
  cleanUp();
  return code;
}
