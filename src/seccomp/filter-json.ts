/**
 * Custom filters for --seccomp-filter, in the JSON form of Firecracker's seccompiler (docs/seccomp.md):
 *   { "vmm": { "default_action": "trap", "filter_action": "allow",
 *              "filter": [ { "syscall": "read" },
 *                          { "syscall": "ioctl", "args": [ { "index": 1, "type": "dword", "op": "eq", "val": 44547 } ] } ] },
 *     "api": {...}, "vcpu": {...} }
 * Entries naming the same call are alternatives (OR); the args of one entry all hold (AND).
 * Sparkler installs one filter on every thread of the process, so it takes the "vmm" one; the
 * "api" and "vcpu" keys are accepted for compatibility and must, if present, be valid.
 */
import { ArgCondition, ConditionOp, FilterSpec, SeccompAction, SeccompError, SyscallRule } from './bpf';
import { X86_64_SYSCALLS } from './syscalls-x86_64';

const THREAD_KEYS = ['vmm', 'api', 'vcpu'];
const OPS = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseAction(v: unknown, where: string): SeccompAction {
  if (v === 'allow' || v === 'trap' || v === 'kill_process' || v === 'kill_thread' || v === 'log') return { kind: v };
  if (v === 'kill') return { kind: 'kill_thread' };
  if (isObject(v) && typeof v.errno === 'number' && Number.isInteger(v.errno)) return { kind: 'errno', errno: v.errno };
  if (isObject(v) && typeof v.trace === 'number' && Number.isInteger(v.trace)) return { kind: 'trace', data: v.trace };
  throw new SeccompError(`Invalid ${where}: ${JSON.stringify(v)}; use allow, trap, kill_process, kill_thread, log, {"errno": N} or {"trace": N}.`);
}

function parseValue(v: unknown, where: string): bigint {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|\d+)$/.test(v)) return BigInt(v);
  throw new SeccompError(`Invalid ${where}: ${JSON.stringify(v)}; expected a whole number from 0 to 2^64-1.`);
}

function parseCondition(v: unknown, where: string): ArgCondition {
  if (!isObject(v)) throw new SeccompError(`Invalid ${where}: expected an object with index, type, op and val.`);
  const index = v.index;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) throw new SeccompError(`Invalid ${where}.index: ${JSON.stringify(index)}; use 0 to 5.`);
  if (v.type !== 'dword' && v.type !== 'qword') throw new SeccompError(`Invalid ${where}.type: ${JSON.stringify(v.type)}; use dword or qword.`);
  let op: ConditionOp;
  if (typeof v.op === 'string' && OPS.includes(v.op)) op = v.op as ConditionOp;
  else if (isObject(v.op) && v.op.masked_eq !== undefined) op = { masked_eq: parseValue(v.op.masked_eq, `${where}.op.masked_eq`) };
  else throw new SeccompError(`Invalid ${where}.op: ${JSON.stringify(v.op)}; use eq, ne, lt, le, gt, ge or {"masked_eq": MASK}.`);
  return { index, type: v.type, op, value: parseValue(v.val, `${where}.val`) };
}

/** One thread category's filter ("vmm", "api" or "vcpu"). */
export function parseThreadFilter(v: unknown, where: string): FilterSpec {
  if (!isObject(v)) throw new SeccompError(`Invalid ${where}: expected an object with default_action, filter_action and filter.`);
  const defaultAction = parseAction(v.default_action, `${where}.default_action`);
  const matchAction = parseAction(v.filter_action, `${where}.filter_action`);
  if (!Array.isArray(v.filter)) throw new SeccompError(`Invalid ${where}.filter: expected a list of rules.`);
  const byNr = new Map<number, SyscallRule>();
  v.filter.forEach((entry: unknown, i: number) => {
    const at = `${where}.filter[${i}]`;
    if (!isObject(entry) || typeof entry.syscall !== 'string') throw new SeccompError(`Invalid ${at}: expected {"syscall": NAME, "args"?: [...]}.`);
    const nr = X86_64_SYSCALLS[entry.syscall];
    if (nr === undefined) throw new SeccompError(`Invalid ${at}.syscall: ${entry.syscall} is not an x86_64 system call.`);
    const args = entry.args === undefined ? [] : entry.args;
    if (!Array.isArray(args)) throw new SeccompError(`Invalid ${at}.args: expected a list of conditions.`);
    const rule = args.map((c: unknown, j: number) => parseCondition(c, `${at}.args[${j}]`));
    const existing = byNr.get(nr) ?? { nr, rules: [] };
    // An unconditional entry allows the call outright: the alternatives no longer matter.
    if (rule.length === 0 || (existing.rules.length === 0 && byNr.has(nr))) existing.rules = [];
    else existing.rules.push(rule);
    byNr.set(nr, existing);
  });
  return { defaultAction, matchAction, syscalls: [...byNr.values()] };
}

/** A whole --seccomp-filter file: the "vmm" filter, the others checked. */
export function parseFilterFile(text: string): FilterSpec {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SeccompError(`Filter deserialization failed: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new SeccompError('Filter deserialization failed: expected an object with "vmm", "api" and "vcpu" filters.');
  for (const key of Object.keys(doc)) {
    if (!THREAD_KEYS.includes(key.toLowerCase())) throw new SeccompError(`Filter deserialization failed: unknown thread category "${key}"; use vmm, api or vcpu.`);
  }
  const keys = Object.fromEntries(Object.entries(doc).map(([k, v]) => [k.toLowerCase(), v]));
  if (keys.vmm === undefined) throw new SeccompError('Filter deserialization failed: the file has no "vmm" filter.');
  for (const k of ['api', 'vcpu']) if (keys[k] !== undefined) parseThreadFilter(keys[k], k);
  return parseThreadFilter(keys.vmm, 'vmm');
}
