/**
 * Firecracker's command-line flags, parsed with util.parseArgs. A bad argument is an
 * ArgumentError, which the entry point turns into exit code 153 as Firecracker does; an invalid
 * --level is an InvalidLevelError (exit 152, Firecracker's BadConfiguration).
 */
import { parseArgs } from 'node:util';
import { SparklerError } from '../errors';
import { LogLevel, parseLogLevel } from '../logger/logger';

export class ArgumentError extends SparklerError {
  constructor(message: string) {
    super('EARGS', message);
    this.name = 'ArgumentError';
  }
}

/** An unknown --level: Firecracker exits with 152 (bad configuration) for it, not 153. */
export class InvalidLevelError extends SparklerError {
  constructor(message: string) {
    super('ELEVEL', message);
    this.name = 'InvalidLevelError';
  }
}

/**
 * What the jailer passes so that the VMM can report its start-up time (metrics
 * api_server.process_startup_time_us and _cpu_us): CLOCK_MONOTONIC and process CPU time in µs
 * when the jailer started, and the CPU time its parent used before forking it.
 */
export interface StartTimes {
  startTimeUs?: number;
  startTimeCpuUs?: number;
  parentCpuTimeUs?: number;
}

/** MMDS flags, parsed now and used by the metadata service. */
export interface MmdsArgs {
  /** --metadata: a JSON file to fill the data store with at start. */
  metadataPath?: string;
  /** --mmds-size-limit: the largest data store in bytes (compact JSON); defaults to the payload limit. */
  sizeLimit: number;
}

export interface VmmArgs {
  apiSock: string;
  id: string;
  configFile?: string;
  noApi: boolean;
  bootTimer: boolean;
  logPath?: string;
  level?: LogLevel;
  module?: string;
  showLevel: boolean;
  showLogOrigin: boolean;
  metricsPath?: string;
  httpApiMaxPayloadSize: number;
  startTimes: StartTimes;
  mmds: MmdsArgs;
  version: boolean;
  help: boolean;
  /** --describe-snapshot FILE: print the snapshot's format version and exit. */
  describeSnapshot?: string;
  /** --snapshot-version: print the snapshot format version this build writes and exit. */
  snapshotVersion: boolean;
  /** --no-seccomp: off; --seccomp-filter FILE: a custom filter (JSON); else the default allow-list. */
  seccomp: SeccompChoice;
}

export type { SeccompChoice } from '../seccomp/vmm-filter';
import type { SeccompChoice } from '../seccomp/vmm-filter';

export const DEFAULT_API_SOCK = '/run/firecracker.socket';
export const DEFAULT_MAX_PAYLOAD = 51200;
const ID_PATTERN = /^[a-zA-Z0-9-]{1,64}$/;

export function parseVmmArgs(argv: string[]): VmmArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'api-sock': { type: 'string' },
        id: { type: 'string' },
        'config-file': { type: 'string' },
        'no-api': { type: 'boolean' },
        'boot-timer': { type: 'boolean' },
        'log-path': { type: 'string' },
        level: { type: 'string' },
        module: { type: 'string' },
        'show-level': { type: 'boolean' },
        'show-log-origin': { type: 'boolean' },
        'metrics-path': { type: 'string' },
        'http-api-max-payload-size': { type: 'string' },
        'start-time-us': { type: 'string' },
        'start-time-cpu-us': { type: 'string' },
        'parent-cpu-time-us': { type: 'string' },
        metadata: { type: 'string' },
        'mmds-size-limit': { type: 'string' },
        'no-seccomp': { type: 'boolean' },
        'seccomp-filter': { type: 'string' },
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'describe-snapshot': { type: 'string' },
        'snapshot-version': { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new ArgumentError(`${(err as Error).message.replace(/\.$/, '')}. Run \`sparkler --help\` for the flags.`);
  }
  const v = parsed.values;
  const id = v.id ?? 'anonymous-instance';
  if (!ID_PATTERN.test(id)) {
    throw new ArgumentError(`Invalid --id "${id}": use 1 to 64 characters from a-z, A-Z, 0-9 and '-'.`);
  }
  let level: LogLevel | undefined;
  if (v.level !== undefined) {
    level = parseLogLevel(v.level);
    if (!level) throw new InvalidLevelError(`Invalid --level "${v.level}": use Error, Warning (or Warn), Info, Debug, Trace or Off.`);
  }
  const maxPayload = positiveInteger(v['http-api-max-payload-size'], '--http-api-max-payload-size') ?? DEFAULT_MAX_PAYLOAD;
  const startTimes: StartTimes = {};
  const startTimeUs = unsignedInteger(v['start-time-us'], '--start-time-us');
  const startTimeCpuUs = unsignedInteger(v['start-time-cpu-us'], '--start-time-cpu-us');
  const parentCpuTimeUs = unsignedInteger(v['parent-cpu-time-us'], '--parent-cpu-time-us');
  if (startTimeUs !== undefined) startTimes.startTimeUs = startTimeUs;
  if (startTimeCpuUs !== undefined) startTimes.startTimeCpuUs = startTimeCpuUs;
  if (parentCpuTimeUs !== undefined) startTimes.parentCpuTimeUs = parentCpuTimeUs;
  if (v.metadata === '') throw new ArgumentError('Invalid --metadata "": name a JSON file.');
  const mmds: MmdsArgs = { sizeLimit: positiveInteger(v['mmds-size-limit'], '--mmds-size-limit') ?? maxPayload };
  if (v.metadata !== undefined) mmds.metadataPath = v.metadata;
  if (v['no-api'] && v['config-file'] === undefined && !v.version && !v.help && !v['snapshot-version'] && v['describe-snapshot'] === undefined) {
    throw new ArgumentError('--no-api needs --config-file: without the API the configuration must come from a file.');
  }
  if (v['no-seccomp'] && v['seccomp-filter'] !== undefined) {
    throw new ArgumentError('--no-seccomp and --seccomp-filter cannot be used together.');
  }
  if (v['seccomp-filter'] === '') throw new ArgumentError('Invalid --seccomp-filter "": name a filter file.');
  let seccomp: SeccompChoice = { mode: 'default' };
  if (v['no-seccomp']) seccomp = { mode: 'off' };
  else if (v['seccomp-filter'] !== undefined) seccomp = { mode: 'file', path: v['seccomp-filter'] };
  return {
    apiSock: v['api-sock'] ?? DEFAULT_API_SOCK,
    id,
    configFile: v['config-file'],
    noApi: v['no-api'] ?? false,
    bootTimer: v['boot-timer'] ?? false,
    logPath: v['log-path'],
    level,
    module: v.module,
    showLevel: v['show-level'] ?? false,
    showLogOrigin: v['show-log-origin'] ?? false,
    metricsPath: v['metrics-path'],
    httpApiMaxPayloadSize: maxPayload,
    startTimes,
    mmds,
    version: v.version ?? false,
    help: v.help ?? false,
    describeSnapshot: v['describe-snapshot'],
    snapshotVersion: v['snapshot-version'] ?? false,
    seccomp,
  };
}

/** A whole number of at least 0 (Firecracker's u64 flags), exactly representable here. */
function unsignedInteger(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new ArgumentError(`Invalid ${flag} "${text}": expected a whole number from 0 to ${Number.MAX_SAFE_INTEGER}.`);
  return n;
}

function positiveInteger(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0) throw new ArgumentError(`Invalid ${flag} "${text}": expected a positive integer.`);
  return n;
}

export const USAGE = `usage: sparkler [--api-sock PATH | --no-api] [--config-file FILE] [options]
       sparkler doctor | guest kernel|initrd|rootfs | emuhost -- CMD... | demo | openapi
       sparkler snapshot merge --memory-path BASE --diff-path DIFF | snapshot describe FILE

VMM options (as Firecracker):
  --api-sock PATH                   API socket path (default ${DEFAULT_API_SOCK})
  --no-api                          run without the API; needs --config-file
  --config-file FILE                boot the microVM described by FILE (Firecracker's format)
  --id ID                           instance id used in logs (default anonymous-instance)
  --boot-timer                      log the guest boot time when the guest writes 123 to 0xC0000000
  --log-path PATH                   write the log to PATH instead of stdout
  --level LEVEL                     Error, Warning, Info (default), Debug, Trace, Off
  --module PREFIX                   log only messages from modules starting with PREFIX
  --show-level, --show-log-origin   add the level / file:line to each log line
  --metrics-path PATH               write metrics (JSON lines) to PATH
  --http-api-max-payload-size N     largest API request body in bytes (default ${DEFAULT_MAX_PAYLOAD})
  --metadata FILE                   JSON file for the MMDS data store (read and checked; MMDS comes later)
  --mmds-size-limit N               largest MMDS data store in bytes (default: the payload limit)
  --start-time-us N, --start-time-cpu-us N, --parent-cpu-time-us N
                                    start times from the jailer (us), for the start-up metrics
  --no-seccomp                      run without a seccomp filter
  --seccomp-filter FILE             a custom seccomp filter (JSON, docs/seccomp.md) instead of the default
  --version                         print the version and exit
  --snapshot-version                print the snapshot format version this build writes and exit
  --describe-snapshot FILE          print the format version of the snapshot in FILE and exit
`;
