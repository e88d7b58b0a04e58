/** PUT /logger, `logger` in the config file. The level is case-insensitive, as Firecracker's. */
import { LogLevel, parseLogLevel } from '../logger/logger';
import { ConfigError, optionalBoolean, optionalString, parseObject } from './validate';

export interface LoggerConfig {
  logPath?: string;
  level?: LogLevel;
  showLevel?: boolean;
  showLogOrigin?: boolean;
  module?: string;
}

export function parseLoggerConfig(value: unknown, where = 'logger'): LoggerConfig {
  const obj = parseObject(value, ['log_path', 'level', 'show_level', 'show_log_origin', 'module'], where);
  const c: LoggerConfig = {};
  const levelText = optionalString(obj, 'level', where);
  if (levelText !== undefined) {
    const level = parseLogLevel(levelText);
    if (!level) throw new ConfigError(`${where}: field \`level\` is "${levelText}", but must be one of Error, Warning, Info, Debug, Trace, Off.`);
    c.level = level;
  }
  const logPath = optionalString(obj, 'log_path', where);
  const showLevel = optionalBoolean(obj, 'show_level', where);
  const showLogOrigin = optionalBoolean(obj, 'show_log_origin', where);
  const module = optionalString(obj, 'module', where);
  if (logPath !== undefined) c.logPath = logPath;
  if (showLevel !== undefined) c.showLevel = showLevel;
  if (showLogOrigin !== undefined) c.showLogOrigin = showLogOrigin;
  if (module !== undefined) c.module = module;
  return c;
}

export function loggerConfigToJson(c: LoggerConfig): Record<string, unknown> {
  return {
    log_path: c.logPath ?? null,
    level: c.level ?? 'Info',
    show_level: c.showLevel ?? false,
    show_log_origin: c.showLogOrigin ?? false,
    module: c.module ?? null,
  };
}
