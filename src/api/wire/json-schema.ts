/**
 * Schema values -> OpenAPI 2.0 (Swagger) schema objects, as Firecracker's document is written:
 * named objects (and named enums) become `definitions` referenced with `$ref`.
 */
import type { ObjectSchema, Schema } from './schema';

export type JsonSchema = { [key: string]: unknown };

const ref = (name: string): JsonSchema => ({ $ref: `#/definitions/${name}` });

/** The schema of a property or body: a `$ref` for named shapes, inline otherwise. */
export function schemaRef(s: Schema): JsonSchema {
  if (s.kind === 'object' || ((s.kind === 'free-object' || s.kind === 'string') && s.name !== undefined)) return ref(s.name!);
  return inline(s);
}

function withCommon(s: Schema, out: JsonSchema): JsonSchema {
  if (s.description !== undefined) out.description = s.description;
  return out;
}

function inline(s: Schema): JsonSchema {
  switch (s.kind) {
    case 'string': {
      const out: JsonSchema = { type: 'string' };
      if (s.enum) out.enum = [...s.enum];
      if (s.default !== undefined) out.default = s.default;
      return withCommon(s, out);
    }
    case 'integer': {
      const out: JsonSchema = { type: 'integer' };
      if (s.format) out.format = s.format;
      if (s.minimum !== undefined) out.minimum = s.minimum;
      if (s.maximum !== undefined) out.maximum = s.maximum;
      if (s.default !== undefined) out.default = s.default;
      return withCommon(s, out);
    }
    case 'boolean':
      return withCommon(s, s.default !== undefined ? { type: 'boolean', default: s.default } : { type: 'boolean' });
    case 'array':
      return withCommon(s, { type: 'array', items: schemaRef(s.items) });
    case 'free-object':
      return withCommon(s, { type: 'object', additionalProperties: true });
    case 'object': {
      const out: JsonSchema = { type: 'object' };
      if (s.required.length > 0) out.required = [...s.required];
      out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, schemaRef(v)]));
      return withCommon(s, out);
    }
  }
}

/** Adds `s` and every named shape inside it to `definitions`. */
export function collectDefinitions(s: Schema, definitions: Record<string, JsonSchema>): void {
  if (s.kind === 'array') return collectDefinitions(s.items, definitions);
  const named = s.kind === 'object' || ((s.kind === 'free-object' || s.kind === 'string') && s.name !== undefined);
  if (!named) return;
  const name = s.name!;
  if (definitions[name]) return;
  definitions[name] = inline(s);
  if (s.kind === 'object') for (const p of Object.values((s as ObjectSchema).properties)) collectDefinitions(p, definitions);
}
