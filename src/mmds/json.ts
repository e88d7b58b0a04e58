/**
 * JSON as Firecracker's serde_json writes it: compact, object keys in sorted order (its maps are
 * ordered by key), strings escaped the same way JSON.stringify does for these characters. The
 * data store's size limit is measured on this text, so it must be the same text.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function isJsonObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Byte order of UTF-8, which is the order of Rust's String keys. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function sortedKeys(object: { [key: string]: JsonValue }): string[] {
  return Object.keys(object).sort(compareKeys);
}

export function toCompactJson(value: JsonValue): string {
  if (Array.isArray(value)) return `[${value.map(toCompactJson).join(',')}]`;
  if (isJsonObject(value)) {
    return `{${sortedKeys(value).map((k) => `${JSON.stringify(k)}:${toCompactJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Size in bytes of the compact serialisation, what the store limit is compared against. */
export function jsonByteLength(value: JsonValue): number {
  return Buffer.byteLength(toCompactJson(value), 'utf8');
}

/**
 * RFC 7396 JSON Merge Patch: an object patch merges key by key, a null member deletes, anything
 * else replaces. Returns a new value; neither argument is modified.
 */
export function mergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return clone(patch);
  const result: { [key: string]: JsonValue } = isJsonObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const member = patch[key];
    if (member === null) delete result[key];
    else result[key] = mergePatch(Object.prototype.hasOwnProperty.call(result, key) ? result[key] : null, member);
  }
  return result;
}

function clone(value: JsonValue): JsonValue {
  return value !== null && typeof value === 'object' ? (JSON.parse(JSON.stringify(value)) as JsonValue) : value;
}

/**
 * RFC 6901 JSON Pointer lookup ("" is the whole document). Array indexes are decimal without
 * leading zeros, as serde_json reads them; undefined when nothing is there.
 */
export function resolvePointer(document: JsonValue, pointer: string): JsonValue | undefined {
  if (pointer === '') return document;
  if (!pointer.startsWith('/')) return undefined;
  let current: JsonValue | undefined = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(current)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      current = current[Number(token)];
    } else if (isJsonObject(current)) {
      current = Object.prototype.hasOwnProperty.call(current, token) ? current[token] : undefined;
    } else {
      return undefined;
    }
    if (current === undefined) return undefined;
  }
  return current;
}
