/**
 * What the VMM hands a device when it creates one: the only way a device reaches the world
 * outside guest memory and its queues. Everything here is injected, so a device under test gets
 * fakes (a hand-driven clock, an fd watcher the test fires, a log it reads) instead of
 * process-wide singletons or environment reads.
 */
import type { Clock, Timers } from '../../ratelimit/clock';
import type { LogSink } from './guest-log';

/** Which readiness a watch reports: readable, writable, or both (bits as libuv's UV_READABLE/UV_WRITABLE). */
export const FD_READABLE = 1;
export const FD_WRITABLE = 2;

/** A watch on one fd; close() stops it (idempotent). */
export interface FdWatch {
  /** Changes which readiness is reported (e.g. add FD_WRITABLE after a write returned EAGAIN). */
  setEvents(events: number): void;
  close(): void;
}

/**
 * Non-queue events of a device (a TAP fd, a Unix socket, an eventfd) on the VMM thread's loop.
 * `onEvent` gets the ready bits, or a negative errno when watching failed.
 */
export interface FdWatcher {
  watch(fd: number, onEvent: (eventsOrError: number) => void, events?: number): FdWatch;
}

/** Messages about things a guest did go to `log` (rate-limited); host-side events to `host`. */
export interface DeviceContext {
  /** Rate-limited: a hostile driver cannot flood the host's log through it. */
  readonly log: LogSink;
  /** Host-side messages (a backend failed, a file vanished): not guest-triggerable. */
  readonly host: LogSink;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly fds: FdWatcher;
}
