/**
 * A clock and timers that move only when a test says so; devices' tests can throttle a queue
 * and release it at an exact time with the same object.
 */
import type { Clock, TimerHandle, Timers } from './clock';
import { NS_PER_MS } from './clock';

interface FakeTimer {
  id: number;
  dueNs: bigint;
  callback: () => void;
}

export class FakeClock implements Clock, Timers {
  private now: bigint;
  private nextId = 1;
  private timers: FakeTimer[] = [];

  constructor(startMs = 0) {
    this.now = BigInt(startMs) * NS_PER_MS;
  }

  nowNs(): bigint {
    return this.now;
  }

  nowMs(): number {
    return Number(this.now) / 1e6;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.push({ id, dueNs: this.now + BigInt(Math.max(0, Math.ceil(delayMs))) * NS_PER_MS, callback });
    return id;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Timers armed and not yet fired. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Moves time forward by `ms`, firing due timers in due order with the clock set to each one's
   * due time, as a real loop would see it (timers armed by a callback fire too if due).
   */
  advance(ms: number): void {
    const end = this.now + BigInt(Math.round(ms * 1e6));
    for (;;) {
      const due = this.timers.filter((t) => t.dueNs <= end).sort((a, b) => (a.dueNs < b.dueNs ? -1 : a.dueNs > b.dueNs ? 1 : a.id - b.id))[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      if (due.dueNs > this.now) this.now = due.dueNs;
      due.callback();
    }
    this.now = end;
  }
}
