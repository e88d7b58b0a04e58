/**
 * Messages a guest can trigger (bad register accesses, malformed chains) go through a limiter:
 * a hostile driver must not be able to fill the host's disk with log lines.
 */
import { logger, LogLevel } from '../../logger/logger';

export interface LogSink {
  error(message: string): void;
  warn(message: string): void;
  /** Detail only worth seeing at the Debug level; sinks without it drop it. */
  debug?(message: string): void;
  /** Whether a line at `level` would be written (absent: always). */
  enabled?(level: LogLevel): boolean;
}

export class GuestTriggeredLog implements LogSink {
  private windowStart = -Infinity;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly sink: LogSink = logger,
    private readonly perWindow = 20,
    private readonly windowMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  error(message: string): void { this.emit('error', message); }
  warn(message: string): void { this.emit('warn', message); }
  debug(message: string): void { this.emit('debug', message); }
  enabled(level: LogLevel): boolean { return this.sink.enabled?.(level) ?? true; }

  private emit(level: 'error' | 'warn' | 'debug', message: string): void {
    // A line the sink would drop must not use up the window's budget of real warnings.
    if (level === 'debug' && !this.enabled('Debug')) return;
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.sink.warn(`${this.suppressed} more messages triggered by the guest were suppressed.`);
      this.windowStart = t;
      this.count = this.suppressed = 0;
    }
    if (this.count++ < this.perWindow) this.sink[level]?.(message);
    else this.suppressed++;
  }
}
