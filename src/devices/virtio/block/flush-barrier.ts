/**
 * Orders flushes after writes. A flush promises that every write the driver saw complete is
 * on stable storage (spec 5.2.6.1); with the Async engine writes complete in any order, so a
 * flush waits until every write *started* before it has finished, then runs. Writes started
 * after the flush do not hold it (the driver cannot have seen them complete).
 */
export class FlushBarrier {
  private seq = 0;
  /** Writes in flight by ticket; a Set iterates in insertion order, so the first is the oldest. */
  private readonly writes = new Set<number>();
  private waiters: Array<{ upTo: number; run: () => void }> = [];

  /** A write starts; pass the ticket to writeDone when it ends, however it ends. */
  writeStarted(): number {
    this.writes.add(++this.seq);
    return this.seq;
  }

  writeDone(ticket: number): void {
    if (this.writes.delete(ticket)) this.release();
  }

  /** Runs `flush` now if no earlier write is in flight, else once the last of them ends. */
  flush(run: () => void): void {
    this.waiters.push({ upTo: this.seq, run });
    this.release();
  }

  /** Device reset: forget writes and pending flushes (their completions are dropped anyway). */
  clear(): void {
    this.writes.clear();
    this.waiters = [];
  }

  private release(): void {
    while (this.waiters.length > 0) {
      const oldest = this.writes.values().next();
      if (!oldest.done && oldest.value <= this.waiters[0].upTo) return;
      this.waiters.shift()!.run();
    }
  }
}
