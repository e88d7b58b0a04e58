/**
 * The MMDS data store: one JSON document the host sets (PUT), merges into (PATCH) and reads
 * (GET) through the API, and the guest reads by path. Its compact serialisation may not grow
 * beyond the size limit; a change that would is refused and leaves the store as it was.
 */
import { MmdsLimitExceededError, MmdsNotInitializedError } from './errors';
import { DEFAULT_MMDS_SIZE_LIMIT } from './options';
import { type JsonValue, isJsonObject, jsonByteLength, mergePatch, resolvePointer, sortedKeys, toCompactJson } from './json';

export type OutputFormat = 'json' | 'imds';

export type LookupResult =
  | { kind: 'ok'; body: string }
  | { kind: 'not-found' }
  /** IMDS text has no form for numbers, booleans, null or arrays (Firecracker answers 501). */
  | { kind: 'unsupported-type' };

export const UNSUPPORTED_VALUE_TYPE_MESSAGE = 'Cannot retrieve value. The value has an unsupported type.';

export class MmdsStore {
  private data: JsonValue = null;
  private initialized = false;
  private limit: number;

  constructor(options: { sizeLimit?: number } = {}) {
    this.limit = options.sizeLimit ?? DEFAULT_MMDS_SIZE_LIMIT;
  }

  get sizeLimit(): number {
    return this.limit;
  }

  set sizeLimit(bytes: number) {
    this.limit = bytes;
  }

  /** False until the first successful PUT. */
  get isInitialized(): boolean {
    return this.initialized;
  }

  /** The whole document (null before any PUT); callers must not modify it. */
  get value(): JsonValue {
    return this.data;
  }

  /** What `GET /mmds` shows: `{}` before the first PUT (Firecracker's answer), else the document. */
  valueForApi(): JsonValue {
    return this.initialized ? this.data : {};
  }

  /** Replaces the document. */
  put(value: JsonValue): void {
    if (jsonByteLength(value) > this.limit) throw new MmdsLimitExceededError();
    this.data = value;
    this.initialized = true;
  }

  /** Applies an RFC 7396 merge patch. */
  patch(patch: JsonValue): void {
    if (!this.initialized) throw new MmdsNotInitializedError();
    const next = mergePatch(this.data, patch);
    if (jsonByteLength(next) > this.limit) throw new MmdsLimitExceededError();
    this.data = next;
  }

  /** Forgets the data (a restored VM starts with an empty, uninitialised store). */
  clear(): void {
    this.data = null;
    this.initialized = false;
  }

  /**
   * What the guest sees at `path` (a JSON pointer, already free of doubled slashes). A trailing
   * slash is ignored, so `/latest/` and `/latest` are the same resource.
   */
  lookup(path: string, format: OutputFormat): LookupResult {
    const pointer = path.endsWith('/') ? path.slice(0, -1) : path;
    const value = resolvePointer(this.data, pointer);
    if (value === undefined) return { kind: 'not-found' };
    if (format === 'json') return { kind: 'ok', body: toCompactJson(value) };
    return formatImds(value);
  }
}

/**
 * IMDS text: a string as-is; an object's keys sorted, one per line (no trailing newline), the
 * keys of sub-objects with a trailing slash; anything else has no IMDS form.
 */
export function formatImds(value: JsonValue): LookupResult {
  if (typeof value === 'string') return { kind: 'ok', body: value };
  if (isJsonObject(value)) {
    const lines = sortedKeys(value).map((key) => (isJsonObject(value[key]) ? `${key}/` : key));
    return { kind: 'ok', body: lines.join('\n') };
  }
  return { kind: 'unsupported-type' };
}
