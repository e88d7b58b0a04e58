/**
 * Errors the MMDS library raises to its callers (the API layer maps them to HTTP statuses).
 * The guest never sees these as exceptions: guest-facing failures are HTTP answers.
 */
import { SparklerError } from '../errors';

export class MmdsError extends SparklerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'MmdsError';
  }
}

/** A PUT or PATCH would make the store bigger than its limit; the API answers 413. */
export class MmdsLimitExceededError extends MmdsError {
  constructor() {
    super('EMMDS_LIMIT', "The MMDS patch request doesn't fit.");
    this.name = 'MmdsLimitExceededError';
  }
}

/** PATCH before the first PUT (Firecracker's wording). */
export class MmdsNotInitializedError extends MmdsError {
  constructor() {
    super('EMMDS_UNINITIALIZED', 'The MMDS data store is not initialized.');
    this.name = 'MmdsNotInitializedError';
  }
}

/** A token TTL outside 1..21600 seconds. */
export class MmdsTokenTtlError extends MmdsError {
  readonly ttlSeconds: number;
  constructor(ttlSeconds: number) {
    super('EMMDS_TOKEN_TTL', `Invalid time to live value provided for token: ${ttlSeconds}. Please provide a value between 1 and 21600.`);
    this.name = 'MmdsTokenTtlError';
    this.ttlSeconds = ttlSeconds;
  }
}
