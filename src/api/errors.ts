/**
 * API failures carry the HTTP status and the `fault_message` sentence. Validation errors from
 * src/config (ConfigError) become 400 with their message; anything unexpected becomes 500.
 */
import { ConfigError } from '../config/validate';
import { SparklerError } from '../errors';

export class ApiError extends SparklerError {
  constructor(readonly status: number, message: string, cause?: unknown) {
    super('EAPI', message, { cause });
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, message);

/** Firecracker's words for an action in the wrong lifecycle half. */
export const NOT_SUPPORTED_BEFORE_START = 'The requested operation is not supported before starting the microVM.';
export const NOT_SUPPORTED_AFTER_START = 'The requested operation is not supported after starting the microVM.';

/** Status and message for any error thrown while handling a request. */
export function toFault(err: unknown): { status: number; message: string } {
  if (err instanceof ApiError) return { status: err.status, message: err.message };
  if (err instanceof ConfigError || err instanceof SparklerError) return { status: 400, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, message: `Internal error: ${message}` };
}
