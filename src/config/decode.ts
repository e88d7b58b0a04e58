/**
 * Decodes a JSON value against a wire schema (src/api/wire): the structural checks every body
 * needs (object, known fields, required fields, types, enums, integer ranges), with the result
 * typed as the schema's `Infer` type. The resource parsers then add their own rules and map the
 * wire shape to their config types. Errors carry two texts: a sentence naming the resource and
 * field (config files, logs) and serde's wording (`missing field \`x\``, `invalid type: ...`,
 * `unknown variant ...`), which the API puts in Firecracker's deserialization message.
 */
import type { ArraySchema, Infer, ObjectSchema, Schema } from '../api/wire/schema';
import { MAX_EXACT_INTEGER } from '../api/wire/schema';
import { ConfigError } from './validate';

export type FieldPath = readonly (string | number)[];

export class DecodeError extends ConfigError {
  constructor(
    message: string,
    /** What serde would say (no location, no final period). */
    readonly serdeText: string,
    /** Where in the body, from its root (`['rate_limiter', 'bandwidth']`); empty for the body itself. */
    readonly path: FieldPath,
    /** A required field is missing from the body's top-level object. */
    readonly missingAtTop = false,
  ) {
    super(message, 'EBODY');
    this.name = 'DecodeError';
  }
}

/** serde's list of expected names: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
export function serdeOneOf(names: readonly string[]): string {
  const q = names.map((n) => `\`${n}\``);
  if (q.length === 1) return q[0];
  if (q.length === 2) return `${q[0]} or ${q[1]}`;
  return `one of ${q.join(', ')}`;
}

/** serde's description of the value it found. */
function unexpected(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'sequence';
  switch (typeof v) {
    case 'string': return `string ${JSON.stringify(v)}`;
    case 'boolean': return `boolean \`${v}\``;
    case 'number': return Number.isSafeInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
    case 'object': return 'map';
    default: return typeof v;
  }
}

const EXPECTED: Record<Schema['kind'], string> = {
  string: 'a string', integer: 'an integer', boolean: 'a boolean', array: 'a sequence', object: 'a JSON object', 'free-object': 'a JSON object',
};
const HUMAN: Record<Schema['kind'], string> = {
  string: 'must be a string', integer: 'must be an integer', boolean: 'must be true or false', array: 'must be an array',
  object: 'expected a JSON object', 'free-object': 'expected a JSON object',
};

interface Here {
  /** The sentence prefix: resource and nesting (`drives[0].rate_limiter`). */
  where: string;
  /** The field's key in its parent object, when it has one. */
  key?: string;
  path: FieldPath;
}

const absent = (v: unknown) => v === undefined || v === null;

function typeError(schema: Schema, value: unknown, here: Here): DecodeError {
  const human = schema.kind === 'object' || schema.kind === 'free-object'
    ? `${here.key === undefined ? here.where : `${here.where}.${here.key}`}: expected a JSON object.`
    : `${here.where}: ${here.key === undefined ? '' : `field \`${here.key}\` `}${HUMAN[schema.kind]}.`;
  return new DecodeError(human, `invalid type: ${unexpected(value)}, expected ${EXPECTED[schema.kind]}`, here.path);
}

function decodeValue(schema: Schema, value: unknown, here: Here): unknown {
  switch (schema.kind) {
    case 'string': {
      if (typeof value !== 'string') throw typeError(schema, value, here);
      if (!schema.enum) return value;
      const spelling = schema.caseInsensitive ? value.toLowerCase() : value;
      const match = schema.enum.find((e) => (schema.caseInsensitive ? e.toLowerCase() === spelling : e === value))
        ?? (schema.aliases && Object.hasOwn(schema.aliases, spelling) ? schema.aliases[spelling] : undefined);
      if (match === undefined) {
        const field = here.key === undefined ? '' : `field \`${here.key}\` `;
        throw new DecodeError(`${here.where}: ${field}must be one of ${schema.enum.map((e) => `"${e}"`).join(', ')}.`,
          `unknown variant \`${value}\`, expected ${serdeOneOf(schema.enum)}`, here.path);
      }
      return match;
    }
    case 'integer': {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw typeError(schema, value, here);
      const min = schema.minimum ?? -MAX_EXACT_INTEGER;
      const max = schema.maximum ?? MAX_EXACT_INTEGER;
      if (value < min || value > max) {
        // A value of the right type outside the accepted range is a rule of the resource, not a parse error.
        throw new ConfigError(`${here.where}: field \`${here.key ?? '?'}\` is ${value}, but must be between ${min} and ${max}.`);
      }
      return value;
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw typeError(schema, value, here);
      return value;
    case 'array':
      return decodeArray(schema, value, here);
    case 'free-object':
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError(schema, value, here);
      return value;
    case 'object':
      return decodeObject(schema, value, here.key === undefined ? here.where : `${here.where}.${here.key}`, here.path);
  }
}

function decodeArray(schema: ArraySchema, value: unknown, here: Here): unknown[] {
  if (!Array.isArray(value)) throw typeError(schema, value, here);
  const base = here.key === undefined ? here.where : `${here.where}.${here.key}`;
  return value.map((item, i) => {
    const where = `${base}[${i}]`;
    if (absent(item)) throw typeError(schema.items, item, { where, path: [...here.path, i] });
    return decodeValue(schema.items, item, { where, path: [...here.path, i] });
  });
}

function decodeObject(schema: ObjectSchema, value: unknown, where: string, path: FieldPath): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DecodeError(`${where}: expected a JSON object.`, `invalid type: ${unexpected(value)}, expected a JSON object`, path);
  }
  const obj = value as Record<string, unknown>;
  const known = Object.keys(schema.properties);
  const out: Record<string, unknown> = {};
  // In the body's order, as serde reads it: unknown fields and wrong types first, missing fields at the end.
  for (const [key, v] of Object.entries(obj)) {
    // Own properties only: `toString` or `__proto__` in a body must not find Object.prototype's.
    const field = Object.hasOwn(schema.properties, key) ? schema.properties[key] : undefined;
    if (!field) {
      throw new DecodeError(`${where}: unknown field \`${key}\`, expected one of ${known.map((k) => `\`${k}\``).join(', ')}.`,
        `unknown field \`${key}\`, expected ${serdeOneOf(known)}`, path);
    }
    if (!absent(v)) out[key] = decodeValue(field, v, { where, key, path: [...path, key] });
  }
  for (const key of schema.required) {
    if (absent(obj[key])) throw new DecodeError(`${where}: missing field \`${key}\`.`, `missing field \`${key}\``, path, path.length === 0);
  }
  return out;
}

/** Checks `value` against `schema`; `where` names the resource in error sentences. Absent and null optional fields are left out. */
export function decode<S extends ObjectSchema>(schema: S, value: unknown, where: string): Infer<S> {
  return decodeObject(schema, value, where, []) as Infer<S>;
}

/** The sentence the API answers a DecodeError with: Firecracker's deserialization message, with the location. */
export function deserializationMessage(err: DecodeError, body: string): string {
  let where = '';
  if (err.missingAtTop) {
    // serde reports a missing field at the object's closing brace.
    const end = body.lastIndexOf('}');
    if (end !== -1) {
      const before = body.slice(0, end);
      const line = before.split('\n').length;
      where = ` at line ${line} column ${end - before.lastIndexOf('\n')}`;
    }
  } else if (err.path.length > 0) {
    where = ` (at \`${err.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('')}\`)`;
  }
  return `An error occurred when deserializing the json body of a request: ${err.serdeText}${where}.`;
}
