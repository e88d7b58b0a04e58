/**
 * The VMM process: Firecracker's flags in, one microVM run to its end, an exit code out
 * (0 guest stopped, 1 VMM error, 152 bad configuration, 153 bad arguments). With --api-sock the
 * API server runs for the whole life of the process; --config-file configures (and boots) the
 * microVM at start, with or without the API.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseVmConfigText, VmConfig } from '../config/vm-config';
import { ConfigError } from '../config/validate';
import { logger } from '../logger/logger';
import { metrics } from '../metrics/metrics';
import { native } from '../native';
import { ArgumentError, parseVmmArgs, USAGE, VmmArgs } from './args';
import { VERSION } from './version';
import type { Vmm } from '../vmm/vmm';
import type { VmStopReason } from '../vmm/vcpu-runner';

export const EXIT = { OK: 0, GENERIC: 1, BAD_CONFIGURATION: 152, ARG_PARSING: 153 } as const;

function readConfigFile(path: string): VmConfig {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the config file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (err as Error).message}.`);
  }
  return parseVmConfigText(text, path);
}

function configureLogging(args: VmmArgs): void {
  logger.configure({ instanceId: args.id, showLevel: args.showLevel, showLogOrigin: args.showLogOrigin, module: args.module });
  if (args.level) logger.configure({ level: args.level });
  if (args.logPath) logger.setLogPath(args.logPath);
  if (args.metricsPath) metrics.init(args.metricsPath);
}

/** Guest keystrokes: stdin feeds the UART only when it is a terminal (raw mode, so Ctrl-C reaches the guest). */
function connectTerminal(vmm: Vmm): void {
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

/** Exit code for how the VM ended, with the logging Firecracker does at that point. */
function stopped(vmm: Vmm, reason: VmStopReason, clockOffsetNs: bigint): number {
  if (vmm.firstRunNs !== undefined) {
    logger.debug(`VMM set-up: process start to first KVM_RUN ${(Number(vmm.firstRunNs - clockOffsetNs) / 1e6).toFixed(1)} ms.`);
  }
  logger.debug(`vCPU exits: ${JSON.stringify(vmm.exitCounters)}.`);
  if (reason.kind === 'error') return fail(`The microVM stopped on an error: ${reason.error.message}`, EXIT.GENERIC);
  logger.info(`Vmm is stopping (guest ${reason.kind}).`);
  return EXIT.OK;
}

export async function runVmm(argv: string[]): Promise<number> {
  let args: VmmArgs;
  try {
    args = parseVmmArgs(argv);
  } catch (err) {
    if (err instanceof ArgumentError) return fail(err.message, EXIT.ARG_PARSING);
    throw err;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return EXIT.OK;
  }
  if (args.version) {
    process.stdout.write(`Sparkler v${VERSION}\n`);
    return EXIT.OK;
  }
  try {
    configureLogging(args);
  } catch (err) {
    return fail((err as Error).message, EXIT.GENERIC);
  }
  logger.info(`Running Sparkler v${VERSION}`);
  const clockOffsetNs = native().monotonicNs() - BigInt(Math.round(performance.now() * 1e6));

  let onStarted!: (vmm: Vmm) => void;
  const started = new Promise<Vmm>((resolve) => { onStarted = resolve; });
  const { VmmController } = await import('../vmm/controller');
  const controller = new VmmController({
    instanceId: args.id,
    vmmVersion: VERSION,
    bootTimer: args.bootTimer,
    onStarted: (vmm) => {
      logger.beforeStdoutWrite = () => vmm.parts.devices.serial.flush();
      connectTerminal(vmm);
      onStarted(vmm);
    },
  });

  let config: VmConfig | undefined;
  if (args.configFile) {
    try {
      config = readConfigFile(args.configFile);
      controller.configure(config);
    } catch (err) {
      if (err instanceof ConfigError) return fail(err.message, EXIT.BAD_CONFIGURATION);
      return fail((err as Error).message, EXIT.GENERIC);
    }
  }

  let server: { close(): Promise<void> } | undefined;
  if (!args.noApi) {
    const { ApiServer } = await import('../api/server');
    try {
      server = await ApiServer.listen({ socketPath: args.apiSock, maxPayload: args.httpApiMaxPayloadSize, controller });
    } catch (err) {
      return fail((err as Error).message, EXIT.GENERIC);
    }
    logger.info('API server started.');
    // Off the critical path to a listening socket, but before a client is likely to start the VM.
    setImmediate(() => controller.preload());
  }
  const cleanUp = () => {
    metrics.flush();
    metrics.stop();
    if (server) {
      void server.close();
      try { fs.unlinkSync(args.apiSock); } catch { /* already gone */ }
    }
  };

  let terminate!: (code: number) => void;
  const terminated = new Promise<number>((resolve) => { terminate = resolve; });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      const vmm = controller.runningVmm;
      if (vmm) vmm.stop({ kind: 'requested' });
      else terminate(EXIT.OK);
    });
  }

  if (config) {
    try {
      await controller.handle({ kind: 'StartMicroVm' });
    } catch (err) {
      cleanUp();
      const message = (err as Error).message.replace(/^Start microvm error: /, '');
      return fail(message, err instanceof ConfigError ? EXIT.BAD_CONFIGURATION : EXIT.GENERIC);
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
