/**
 * A small schema language for the API's JSON bodies. Each body shape is written once as a schema
 * value; its TypeScript type is derived from it (`Infer`), the request parsers decode bodies with
 * it (`decode`), and the OpenAPI document is generated from it (`toOpenApi`), so the three cannot
 * drift. This folder imports nothing outside itself: the SDK can use it without the VMM.
 */

interface Common {
  description?: string;
}

export interface StringSchema<E extends string = string> extends Common {
  readonly kind: 'string';
  readonly enum?: readonly E[];
  /** The enum matches in any case and decodes to its canonical spelling (Firecracker's log levels). */
  readonly caseInsensitive?: boolean;
  /** Other accepted spellings (lower case) and the value each stands for. */
  readonly aliases?: { readonly [spelling: string]: E };
  readonly default?: E;
  /** Documented as a named definition of its own (Firecracker's CpuTemplate). */
  readonly name?: string;
}

export interface IntegerSchema extends Common {
  readonly kind: 'integer';
  readonly minimum?: number;
  readonly maximum?: number;
  readonly format?: 'int32' | 'int64';
  readonly default?: number;
}

export interface BooleanSchema extends Common {
  readonly kind: 'boolean';
  readonly default?: boolean;
}

export interface ArraySchema<I extends Schema = Schema> extends Common {
  readonly kind: 'array';
  readonly items: I;
}

export type Properties = { readonly [key: string]: Schema };

export interface ObjectSchema<P extends Properties = Properties, R extends keyof P & string = keyof P & string> extends Common {
  readonly kind: 'object';
  /** The definition's name in the OpenAPI document; nested uses become `$ref`s. */
  readonly name: string;
  readonly properties: P;
  readonly required: readonly R[];
}

/** Any JSON object (the MMDS data store). */
export interface FreeObjectSchema extends Common {
  readonly kind: 'free-object';
  /** Absent: written inline. */
  readonly name?: string;
}

export type Schema = StringSchema | IntegerSchema | BooleanSchema | ArraySchema | ObjectSchema | FreeObjectSchema;

/** Optional fields may be absent or null on the wire (serde reads a null Option as absent). */
type InferObject<P extends Properties, R extends keyof P & string> =
  { -readonly [K in R]: Infer<P[K]> } & { -readonly [K in Exclude<keyof P & string, R>]?: Infer<P[K]> | null };

type Flatten<T> = { [K in keyof T]: T[K] };

export type Infer<S> =
  S extends StringSchema<infer E> ? E :
  S extends IntegerSchema ? number :
  S extends BooleanSchema ? boolean :
  S extends ArraySchema<infer I> ? Infer<I>[] :
  S extends ObjectSchema<infer P, infer R> ? Flatten<InferObject<P, R>> :
  S extends FreeObjectSchema ? { [key: string]: unknown } :
  never;

export const str = <const E extends string = string>(opts: Omit<StringSchema<E>, 'kind'> = {}): StringSchema<E> => ({ kind: 'string', ...opts });
export const int = (opts: Omit<IntegerSchema, 'kind'> = {}): IntegerSchema => ({ kind: 'integer', ...opts });
export const bool = (opts: Omit<BooleanSchema, 'kind'> = {}): BooleanSchema => ({ kind: 'boolean', ...opts });
export const array = <I extends Schema>(items: I, opts: Common = {}): ArraySchema<I> => ({ kind: 'array', items, ...opts });
export const object = <const P extends Properties, const R extends keyof P & string = never>(
  name: string, properties: P, required: readonly R[] = [], opts: Common = {},
): ObjectSchema<P, R> => ({ kind: 'object', name, properties, required, ...opts });
export const freeObject = (name?: string, opts: Common = {}): FreeObjectSchema => ({ kind: 'free-object', name, ...opts });

/** The largest integer JSON numbers carry exactly here (the schema says int64; JS numbers stop at 2^53 - 1). */
export const MAX_EXACT_INTEGER = Number.MAX_SAFE_INTEGER;

/** The same shape with every field optional (PATCH bodies that reuse a PUT's definition). */
export const partial = <P extends Properties, R extends keyof P & string>(s: ObjectSchema<P, R>): ObjectSchema<P, never> => ({ ...s, required: [] });
