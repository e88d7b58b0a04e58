/**
 * Small validators shared by every configuration resource. They throw ConfigError with a
 * message that names the resource, the field and the problem, as Firecracker's API does.
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

/** Firecracker denies unknown fields: a typo must not be silently ignored. */
export function rejectUnknownFields(obj: JsonObject, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${where}: unknown field \`${key}\`, expected one of ${known.map((k) => `\`${k}\``).join(', ')}.`);
    }
  }
}

function present(obj: JsonObject, key: string): boolean {
  return obj[key] !== undefined && obj[key] !== null;
}

export function requiredString(obj: JsonObject, key: string, where: string): string {
  if (!present(obj, key)) throw new ConfigError(`${where}: missing field \`${key}\`.`);
  return stringField(obj[key], key, where);
}

export function optionalString(obj: JsonObject, key: string, where: string): string | undefined {
  return present(obj, key) ? stringField(obj[key], key, where) : undefined;
}

function stringField(value: unknown, key: string, where: string): string {
  if (typeof value !== 'string') throw new ConfigError(`${where}: field \`${key}\` must be a string.`);
  return value;
}

export function requiredInteger(obj: JsonObject, key: string, where: string, min: number, max: number): number {
  if (!present(obj, key)) throw new ConfigError(`${where}: missing field \`${key}\`.`);
  return integerField(obj[key], key, where, min, max);
}

export function optionalInteger(obj: JsonObject, key: string, where: string, min: number, max: number): number | undefined {
  return present(obj, key) ? integerField(obj[key], key, where, min, max) : undefined;
}

function integerField(value: unknown, key: string, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ConfigError(`${where}: field \`${key}\` must be an integer.`);
  }
  if (value < min || value > max) {
    throw new ConfigError(`${where}: field \`${key}\` is ${value}, but must be between ${min} and ${max}.`);
  }
  return value;
}

export function optionalBoolean(obj: JsonObject, key: string, where: string): boolean | undefined {
  if (!present(obj, key)) return undefined;
  if (typeof obj[key] !== 'boolean') throw new ConfigError(`${where}: field \`${key}\` must be true or false.`);
  return obj[key] as boolean;
}

export function optionalEnum<T extends string>(obj: JsonObject, key: string, where: string, values: readonly T[]): T | undefined {
  if (!present(obj, key)) return undefined;
  const value = obj[key];
  if (typeof value !== 'string' || !values.includes(value as T)) {
    throw new ConfigError(`${where}: field \`${key}\` must be one of ${values.map((v) => `"${v}"`).join(', ')}.`);
  }
  return value as T;
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

/** A required ID field, checked as the API checks IDs in paths. */
export function requiredId(obj: JsonObject, key: string, where: string): string {
  const id = requiredString(obj, key, where);
  const problem = resourceIdProblem(id);
  if (problem) throw new ConfigError(`${where}: field \`${key}\` is invalid: ${problem}`);
  return id;
}

export function requiredBoolean(obj: JsonObject, key: string, where: string): boolean {
  if (!present(obj, key)) throw new ConfigError(`${where}: missing field \`${key}\`.`);
  return optionalBoolean(obj, key, where) as boolean;
}

export function requiredEnum<T extends string>(obj: JsonObject, key: string, where: string, values: readonly T[]): T {
  if (!present(obj, key)) throw new ConfigError(`${where}: missing field \`${key}\`.`);
  return optionalEnum(obj, key, where, values) as T;
}

/** An optional array field; each item is parsed by `item` with its index in `where`. */
export function optionalArray<T>(obj: JsonObject, key: string, where: string, item: (value: unknown, where: string) => T): T[] | undefined {
  if (!present(obj, key)) return undefined;
  const value = obj[key];
  if (!Array.isArray(value)) throw new ConfigError(`${where}: field \`${key}\` must be an array.`);
  return value.map((v, i) => item(v, `${where}.${key}[${i}]`));
}

export function requiredArray<T>(obj: JsonObject, key: string, where: string, item: (value: unknown, where: string) => T): T[] {
  if (!present(obj, key)) throw new ConfigError(`${where}: missing field \`${key}\`.`);
  return optionalArray(obj, key, where, item) as T[];
}

/** Parses a whole JSON body, naming the resource when it is not an object. */
export function parseObject(value: unknown, fields: readonly string[], where: string): JsonObject {
  const obj = expectObject(value, where);
  rejectUnknownFields(obj, fields, where);
  return obj;
}
