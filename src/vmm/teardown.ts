/**
 * What a VM build created, in order, with how to release each thing. A failed build releases
 * what it made so far; Vmm.close() releases everything; both go last-made first, so a vCPU fd is
 * closed before the VM fd, and guest RAM is unmapped after KVM let go of it.
 */
import { SparklerError } from '../errors';

export class TeardownError extends SparklerError {
  constructor(message: string, cause?: unknown) {
    super('ETEARDOWN', message, { cause });
    this.name = 'TeardownError';
  }
}

export class Teardown {
  private readonly steps: { what: string; release: () => void }[] = [];
  private done = false;

  /** Records how to release something just made. Throws if the teardown already ran. */
  add(what: string, release: () => void): void {
    if (this.done) throw new TeardownError(`Cannot record ${what}: this VM was already torn down.`);
    this.steps.push({ what, release });
  }

  get released(): boolean {
    return this.done;
  }

  /**
   * Runs a build step by step: if `build` throws, what it made so far is released and the error
   * goes on (saying so when releasing failed too).
   */
  guard<T>(build: () => T): T {
    try {
      return build();
    } catch (err) {
      try {
        this.run();
      } catch (releaseErr) {
        (err as Error).message += ` (and releasing what was built failed: ${(releaseErr as Error).message})`;
      }
      throw err;
    }
  }

  /** Releases everything, last added first; every step runs even when one fails. Idempotent. */
  run(): void {
    if (this.done) return;
    this.done = true;
    const failed: string[] = [];
    let first: unknown;
    for (const { what, release } of this.steps.splice(0).reverse()) {
      try {
        release();
      } catch (err) {
        first ??= err;
        failed.push(`${what}: ${(err as Error).message}`);
      }
    }
    if (failed.length > 0) throw new TeardownError(`Releasing the VM's resources failed: ${failed.join('; ')}`, first);
  }
}
