/** PUT /logger, `logger` in the config file. The level is case-insensitive, as Firecracker's. */
import * as wire from '../api/wire/definitions';
import type { LogLevel } from '../logger/logger';
import { decode } from './decode';

export interface LoggerConfig {
  logPath?: string;
  level?: LogLevel;
  showLevel?: boolean;
  showLogOrigin?: boolean;
  module?: string;
}

export function parseLoggerConfig(value: unknown, where = 'logger'): LoggerConfig {
  const w = decode(wire.Logger, value, where);
  const c: LoggerConfig = {};
  if (w.level != null) c.level = w.level;
  if (w.log_path != null) c.logPath = w.log_path;
  if (w.show_level != null) c.showLevel = w.show_level;
  if (w.show_log_origin != null) c.showLogOrigin = w.show_log_origin;
  if (w.module != null) c.module = w.module;
  return c;
}

export function loggerConfigToJson(c: LoggerConfig): wire.Logger {
  return {
    log_path: c.logPath ?? null,
    level: c.level ?? 'Info',
    show_level: c.showLevel ?? false,
    show_log_origin: c.showLogOrigin ?? false,
    module: c.module ?? null,
  };
}
