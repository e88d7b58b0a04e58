/**
 * The human-readable log, in Firecracker's line format:
 *   <time> [<instance id>:<thread>(:<LEVEL>)(:<file>:<line>)] <message>
 * Level and origin are shown only when asked for (--show-level, --show-log-origin). Lines go
 * to stdout until a log path is configured. Writes are synchronous so that a line logged just
 * before the process exits is never lost.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LoggerConfig } from '../config/logger';
import { unbundledLocation } from '../build/bundle-lines';

/** Compiled modules live under this directory; origins are named relative to it. */
const CODE_ROOT = path.resolve(__dirname, '..');

export const LOG_LEVELS = ['Off', 'Error', 'Warning', 'Info', 'Debug', 'Trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  instanceId: string;
  level: LogLevel;
  showLevel: boolean;
  showLogOrigin: boolean;
  /** Only messages whose module starts with this prefix are logged. */
  module?: string;
  /** File descriptor the lines go to (1 = stdout). */
  fd: number;
}

export function parseLogLevel(text: string): LogLevel | undefined {
  const lower = text.toLowerCase();
  return lower === 'warn' ? 'Warning' : LOG_LEVELS.find((l) => l.toLowerCase() === lower);
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Firecracker's timestamp: local ISO date and time with nanoseconds, no zone. */
export function formatTimestamp(d: Date, nanosWithinSecond: number): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)}T${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(nanosWithinSecond, 9)}`;
}

export interface LogOrigin {
  /** Module path under src/ without extension (`api/server`); --module matches its prefix. */
  module: string;
  file: string;
  line: number;
}

/**
 * Where the caller of the logger is, from the stack: the first frame outside this file. Only
 * computed when origins are shown or filtered, since capturing a stack costs microseconds.
 * Lines are those of the compiled JavaScript (there are no source maps at run time).
 */
export function callerOrigin(): LogOrigin | undefined {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?([^()\s]+):(\d+):\d+\)?$/.exec(frame.trim());
    if (!m) continue;
    const where = unbundledLocation(m[1], Number(m[2]));
    if (where.file === __filename || !where.file.startsWith(CODE_ROOT)) continue;
    const file = path.relative(CODE_ROOT, where.file);
    return { module: file.replace(/\.[jt]s$/, ''), file, line: where.line };
  }
  return undefined;
}

export class Logger {
  private opts: LoggerOptions;
  /** Runs before a line goes to stdout, so buffered guest console output stays in order. */
  beforeStdoutWrite?: () => void;

  constructor(opts: Partial<LoggerOptions> = {}) {
    this.opts = { instanceId: 'anonymous-instance', level: 'Info', showLevel: false, showLogOrigin: false, fd: 1, ...opts };
  }

  /** Where lines go (1, or the --log-path file): the SIGSYS handler writes its line there too. */
  get fd(): number {
    return this.opts.fd;
  }

  configure(opts: Partial<LoggerOptions>): void {
    this.opts = { ...this.opts, ...opts };
  }

  /** Opens (creating or appending) a file or named pipe as the log target. */
  setLogPath(path: string): void {
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NONBLOCK, 0o644);
    this.configure({ fd });
  }

  enabled(level: LogLevel): boolean {
    return level !== 'Off' && LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(this.opts.level);
  }

  /** PUT /logger and the config file's `logger`: only the fields given change. */
  update(c: LoggerConfig): void {
    if (c.logPath !== undefined) this.setLogPath(c.logPath);
    const opts: Partial<LoggerOptions> = {};
    if (c.level !== undefined) opts.level = c.level;
    if (c.showLevel !== undefined) opts.showLevel = c.showLevel;
    if (c.showLogOrigin !== undefined) opts.showLogOrigin = c.showLogOrigin;
    if (c.module !== undefined) opts.module = c.module;
    this.configure(opts);
  }

  get options(): Readonly<LoggerOptions> {
    return this.opts;
  }

  log(level: LogLevel, message: string, origin?: LogOrigin): void {
    if (!this.enabled(level)) return;
    if (!origin && (this.opts.showLogOrigin || this.opts.module)) origin = callerOrigin();
    if (this.opts.module && origin && !origin.module.startsWith(this.opts.module)) return;
    const now = Date.now();
    const nanos = (now % 1000) * 1_000_000 + Number(process.hrtime.bigint() % 1_000_000n);
    let prefix = `${this.opts.instanceId}:main`;
    if (this.opts.showLevel) prefix += `:${level.toUpperCase() === 'WARNING' ? 'WARN' : level.toUpperCase()}`;
    if (this.opts.showLogOrigin && origin) prefix += `:${origin.file}:${origin.line}`;
    const line = `${formatTimestamp(new Date(now), nanos)} [${prefix}] ${message}\n`;
    if (this.opts.fd === 1) this.beforeStdoutWrite?.();
    try {
      fs.writeSync(this.opts.fd, line);
    } catch {
      // A full pipe or closed log target must not take the VMM down.
    }
  }

  error(message: string): void { this.log('Error', message); }
  warn(message: string): void { this.log('Warning', message); }
  info(message: string): void { this.log('Info', message); }
  debug(message: string): void { this.log('Debug', message); }
}

/** The process-wide logger (one process runs one microVM). */
export const logger = new Logger();
