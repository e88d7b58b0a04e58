/**
 * Shapes a metrics line to Firecracker's schema (fc-schema.ts): every group and field present,
 * zeros where Sparkler has no source, per-device groups (`block_<id>`...) kept with their
 * aggregate recomputed as their sum, and nothing outside the schema.
 */
import { FIXED_GROUPS, GroupSchema, PER_DEVICE_GROUPS, RENAMED_FIELDS } from './fc-schema';

type Line = Record<string, unknown>;
type Group = Record<string, unknown>;
interface LatencyAggregate { min_us: number; max_us: number; sum_us: number }

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

function aggregateOf(v: unknown): LatencyAggregate {
  const a = (v ?? {}) as Partial<Record<keyof LatencyAggregate, unknown>>;
  return { min_us: num(a.min_us), max_us: num(a.max_us), sum_us: num(a.sum_us) };
}

function shape(raw: unknown, schema: GroupSchema): Group {
  const src = (raw !== null && typeof raw === 'object' ? raw : {}) as Group;
  const out: Group = {};
  for (const f of schema.counters) out[f] = num(src[f]);
  for (const f of schema.aggregates ?? []) out[f] = aggregateOf(src[f]);
  return out;
}

/** Firecracker's aggregate: counters summed; latency aggregates {0, 0, sum of sum_us}. */
function sumOf(groups: Group[], schema: GroupSchema): Group {
  const out: Group = {};
  for (const f of schema.counters) out[f] = groups.reduce((s, g) => s + (g[f] as number), 0);
  for (const f of schema.aggregates ?? []) {
    out[f] = { min_us: 0, max_us: 0, sum_us: groups.reduce((s, g) => s + (g[f] as LatencyAggregate).sum_us, 0) };
  }
  return out;
}

export function conformLine(raw: Line): Line {
  const source: Line = { ...raw };
  for (const [group, field, fromGroup, fromField] of RENAMED_FIELDS) {
    const from = source[fromGroup] as Group | undefined;
    if (from?.[fromField] === undefined) continue;
    source[group] = { ...(source[group] as Group | undefined), [field]: from[fromField] };
  }
  const line: Line = { utc_timestamp_ms: num(raw.utc_timestamp_ms) };
  for (const [group, schema] of Object.entries(FIXED_GROUPS)) line[group] = shape(source[group], schema);
  for (const [kind, schema] of Object.entries(PER_DEVICE_GROUPS)) {
    const devices = Object.keys(source).filter((k) => k.startsWith(`${kind}_`)).sort();
    const shaped = devices.map((k) => shape(source[k], schema));
    devices.forEach((k, i) => { line[k] = shaped[i]; });
    line[kind] = sumOf(shaped, schema);
  }
  return line;
}
