/**
 * The VMM process: Firecracker's flags in, one microVM run to its end, an exit code out
 * (0 guest stopped, 1 VMM error, 152 bad configuration, 153 bad arguments).
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseVmConfigText, VmConfig } from '../config/vm-config';
import { ConfigError } from '../config/validate';
import { DEFAULT_MACHINE_CONFIG } from '../config/machine-config';
import { logger } from '../logger/logger';
import { native } from '../native';
import { ArgumentError, parseVmmArgs, USAGE, VmmArgs } from './args';
import { VERSION } from './version';
import type { Vmm } from '../vmm/vmm';

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

function configureLogger(args: VmmArgs): void {
  logger.configure({ instanceId: args.id, showLevel: args.showLevel, showLogOrigin: args.showLogOrigin, module: args.module });
  if (args.level) logger.configure({ level: args.level });
  if (args.logPath) logger.setLogPath(args.logPath);
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

async function runFromConfig(config: VmConfig, args: VmmArgs): Promise<number> {
  if (!config.bootSource) throw new ConfigError('config file: missing section `boot-source`.');
  const { buildMicroVm } = await import('../vmm/builder');
  const vmm = buildMicroVm({
    bootSource: config.bootSource,
    machineConfig: config.machineConfig ?? DEFAULT_MACHINE_CONFIG,
    serialOutput: (bytes) => { try { fs.writeSync(1, bytes); } catch { /* stdout gone: drop console output */ } },
    onReset: () => vmm.stop({ kind: 'reset' }),
    bootTimer: args.bootTimer ? { log: (line) => logger.info(line) } : undefined,
  });
  logger.beforeStdoutWrite = () => vmm.parts.devices.serial.flush();
  const startedAt = performance.now();
  const clockOffsetNs = native().monotonicNs() - BigInt(Math.round(startedAt * 1e6));
  vmm.start();
  logger.info('Successfully started microvm that was configured from one single json');
  connectTerminal(vmm);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => vmm.stop({ kind: 'requested' }));
  const reason = await vmm.waitForStop();
  if (vmm.firstRunNs !== undefined) {
    const firstRunMs = Number(vmm.firstRunNs - clockOffsetNs) / 1e6;
    logger.debug(`VMM set-up: process start to first KVM_RUN ${firstRunMs.toFixed(1)} ms.`);
  }
  logger.debug(`vCPU exits: ${JSON.stringify(vmm.exitCounters)}.`);
  if (reason.kind === 'error') {
    logger.error(`The microVM stopped on an error: ${reason.error.message}`);
    process.stderr.write(`sparkler: ${reason.error.message}\n`);
    return EXIT.GENERIC;
  }
  logger.info(`Vmm is stopping (guest ${reason.kind}).`);
  return EXIT.OK;
}

export async function runVmm(argv: string[]): Promise<number> {
  let args: VmmArgs;
  try {
    args = parseVmmArgs(argv);
  } catch (err) {
    if (err instanceof ArgumentError) {
      process.stderr.write(`sparkler: ${err.message}\n`);
      return EXIT.ARG_PARSING;
    }
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
  configureLogger(args);
  logger.info(`Running Sparkler v${VERSION}`);
  let config: VmConfig;
  try {
    if (!args.configFile) {
      throw new ConfigError('The API server is not part of this version yet: boot with --no-api --config-file FILE.');
    }
    config = readConfigFile(args.configFile);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`sparkler: ${err.message}\n`);
      logger.error(err.message);
      return EXIT.BAD_CONFIGURATION;
    }
    throw err;
  }
  try {
    return await runFromConfig(config, args);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`sparkler: ${message}\n`);
    return err instanceof ConfigError ? EXIT.BAD_CONFIGURATION : EXIT.GENERIC;
  }
}
