/**
 * Firecracker's command-line flags, parsed with util.parseArgs. A bad argument is an
 * ArgumentError, which the entry point turns into exit code 153 as Firecracker does.
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
  version: boolean;
  help: boolean;
}

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
        version: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
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
    if (!level) throw new ArgumentError(`Invalid --level "${v.level}": use Error, Warning, Info, Debug, Trace or Off.`);
  }
  let maxPayload = DEFAULT_MAX_PAYLOAD;
  if (v['http-api-max-payload-size'] !== undefined) {
    maxPayload = Number(v['http-api-max-payload-size']);
    if (!Number.isSafeInteger(maxPayload) || maxPayload <= 0) {
      throw new ArgumentError(`Invalid --http-api-max-payload-size "${v['http-api-max-payload-size']}": expected a positive integer.`);
    }
  }
  if (v['no-api'] && v['config-file'] === undefined && !v.version && !v.help) {
    throw new ArgumentError('--no-api needs --config-file: without the API the configuration must come from a file.');
  }
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
    version: v.version ?? false,
    help: v.help ?? false,
  };
}

export const USAGE = `usage: sparkler [--api-sock PATH | --no-api] [--config-file FILE] [options]
       sparkler doctor | guest kernel|initrd|rootfs | emuhost -- CMD... | demo

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
  --version                         print the version and exit
`;
