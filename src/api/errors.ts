/**
 * API failures carry the HTTP status, the `fault_message` sentence and a stable code that the
 * answer also carries in the `X-Sparkler-Error-Code` header. Validation errors from src/config
 * (ConfigError) become 400 with their message and code; anything unexpected becomes 500.
 */
import { ConfigError } from '../config/validate';
import { SparklerError } from '../errors';

/** Firecracker's words for an action in the wrong lifecycle half. */
export const NOT_SUPPORTED_BEFORE_START = 'The requested operation is not supported before starting the microVM.';
export const NOT_SUPPORTED_AFTER_START = 'The requested operation is not supported after starting the microVM.';

export class ApiError extends SparklerError {
  constructor(readonly status: number, message: string, cause?: unknown, code?: string) {
    // The lifecycle refusals get their own code so a client can tell "too early/late" from bad input.
    super(code ?? (message === NOT_SUPPORTED_BEFORE_START || message === NOT_SUPPORTED_AFTER_START ? 'ELIFECYCLE' : 'EAPI'), message, { cause });
    this.name = 'ApiError';
  }
}

/** A 400; `code` says which kind (EROUTE: method or path, EBODY: the body, EID: a resource id). */
export const badRequest = (message: string, code = 'EAPI'): ApiError => new ApiError(400, message, undefined, code);

export interface Fault {
  status: number;
  message: string;
  /** Stable error code (`EBODY`, `EBOOTSOURCE`, `ELIFECYCLE`, ...). */
  code: string;
}

/** Status, message and code for any error thrown while handling a request. */
export function toFault(err: unknown): Fault {
  if (err instanceof ApiError) return { status: err.status, message: err.message, code: err.code };
  if (err instanceof ConfigError || err instanceof SparklerError) return { status: 400, message: err.message, code: err.code };
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, message: `Internal error: ${message}`, code: 'EINTERNAL' };
}
