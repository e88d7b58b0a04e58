/**
 * What every configuration resource shares beyond its wire schema (src/config/decode.ts does the
 * structure and types): ConfigError, and the resource-ID rule the API applies to IDs in paths.
 */
import { SparklerError } from '../errors';

export class ConfigError extends SparklerError {
  constructor(message: string, code = 'ECONFIG', cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.name = 'ConfigError';
  }
}

export type JsonObject = Record<string, unknown>;

export function expectObject(value: unknown, where: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where}: expected a JSON object.`);
  }
  return value as JsonObject;
}

/**
 * Resource IDs (drive_id, iface_id, pmem id, ...) travel in URL paths, so Firecracker allows only
 * letters, digits and '_' (Rust's char::is_alphanumeric, hence Unicode letters too) and no
 * empty string. It sets no length limit on them; we cap at 64 characters so that an ID always
 * fits in log lines and metrics names.
 */
export const MAX_RESOURCE_ID_LENGTH = 64;
// Made on first use: a Unicode-property pattern costs ~0.6 ms to build (~10 ms in the emulated
// host), and most VMM starts check no ID.
let resourceIdPattern: RegExp | undefined;

/** The reason `id` is not a valid resource ID, or undefined when it is. */
export function resourceIdProblem(id: string): string | undefined {
  if (id.length === 0) return 'The ID cannot be empty.';
  resourceIdPattern ??= new RegExp('^[\\p{L}\\p{N}_]+$', 'u');
  if (!resourceIdPattern.test(id)) return 'API Resource IDs can only contain alphanumeric characters and underscores.';
  if (id.length > MAX_RESOURCE_ID_LENGTH) return `API Resource IDs can be at most ${MAX_RESOURCE_ID_LENGTH} characters long.`;
  return undefined;
}

/** An ID field already decoded, checked as the API checks IDs in paths. */
export function checkResourceId(id: string, key: string, where: string): string {
  const problem = resourceIdProblem(id);
  if (problem) throw new ConfigError(`${where}: field \`${key}\` is invalid: ${problem}`);
  return id;
}
