/**
 * JSON for snapshot state: plain values, with bytes as `{"$bytes": base64}` and 64-bit integers
 * as `{"$u64": "decimal"}` so that nothing is lost to JSON's doubles.
 */
export type Plain = null | boolean | number | string | bigint | Buffer | Plain[] | { [key: string]: Plain | undefined };

export function toJsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return { $bytes: value.toString('base64') };
  if (typeof value === 'bigint') return { $u64: value.toString() };
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonValue(v);
    return out;
  }
  return value;
}

export function fromJsonValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonValue);
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1 && typeof obj.$bytes === 'string') return Buffer.from(obj.$bytes, 'base64');
    if (keys.length === 1 && typeof obj.$u64 === 'string') return BigInt(obj.$u64);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = fromJsonValue(obj[k]);
    return out;
  }
  return value;
}
