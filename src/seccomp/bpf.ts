/**
 * A seccomp filter compiled to classic BPF (Linux Documentation/userspace-api/seccomp_filter.rst):
 * check the architecture, refuse x32 numbers, then per allowed system call an OR of rules, each an
 * AND of argument conditions; anything else gets the default action. The program is the bytes
 * of struct sock_filter entries that native/isolation.c hands to seccomp(2).
 */
import { SparklerError } from '../errors';

export class SeccompError extends SparklerError {
  constructor(message: string) {
    super('ESECCOMP', message);
    this.name = 'SeccompError';
  }
}

/** seccomp return values (linux/seccomp.h). */
export type SeccompAction =
  | { kind: 'allow' }
  | { kind: 'trap' }
  | { kind: 'kill_process' }
  | { kind: 'kill_thread' }
  | { kind: 'log' }
  | { kind: 'errno'; errno: number }
  | { kind: 'trace'; data: number };

export function actionValue(a: SeccompAction): number {
  switch (a.kind) {
    case 'allow': return 0x7fff0000;
    case 'trap': return 0x00030000;
    case 'kill_process': return 0x80000000;
    case 'kill_thread': return 0;
    case 'log': return 0x7ffc0000;
    case 'errno': return 0x00050000 | (a.errno & 0xffff);
    case 'trace': return 0x7ff00000 | (a.data & 0xffff);
  }
}

export type ConditionOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | { masked_eq: bigint };

/** One argument check: `args[index] <op> value`, on the low 32 bits (dword) or all 64 (qword). */
export interface ArgCondition {
  index: number;
  type: 'dword' | 'qword';
  op: ConditionOp;
  value: bigint;
}

/** A system call and the rules under which it is allowed (none: always). */
export interface SyscallRule {
  nr: number;
  /** Allowed when ANY rule holds; a rule holds when ALL its conditions do. Empty: unconditional. */
  rules: ArgCondition[][];
}

export interface FilterSpec {
  defaultAction: SeccompAction;
  /** What a matching call gets (allow, or log for an audit run). */
  matchAction: SeccompAction;
  syscalls: SyscallRule[];
}

// Classic BPF opcodes (linux/bpf_common.h).
const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JA = 0x05;
const BPF_JEQ_K = 0x15;
const BPF_JGT_K = 0x25;
const BPF_JGE_K = 0x35;
const BPF_ALU_AND_K = 0x54;
const BPF_RET_K = 0x06;

/** AUDIT_ARCH_X86_64: what seccomp_data.arch holds for a 64-bit x86 call. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argOffset = (index: number, high: boolean): number => 16 + 8 * index + (high ? 4 : 0);

/** The kernel's cap on a filter's length (BPF_MAXINSNS). */
export const MAX_INSTRUCTIONS = 4096;

export interface Insn { code: number; jt: number; jf: number; k: number }

const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): Insn => {
  if (jt > 255 || jf > 255) throw new SeccompError('A seccomp rule is too long: a conditional jump spans more than 255 instructions.');
  return { code, jt, jf, k: k >>> 0 };
};

/** The checks of one condition; `fail` is how far past the end of these checks a failure jumps. */
function conditionChecks(c: ArgCondition, fail: number): Insn[] {
  if (c.index < 0 || c.index > 5) throw new SeccompError(`Invalid argument index ${c.index}: a system call has arguments 0 to 5.`);
  const lo = Number(c.value & 0xffffffffn);
  const hi = Number((c.value >> 32n) & 0xffffffffn);
  if (c.type === 'dword' || typeof c.op === 'object') {
    const out: Insn[] = [];
    if (c.type === 'qword' && typeof c.op === 'object') {
      // masked_eq over 64 bits: both halves must match under the mask.
      const mask = c.op.masked_eq;
      const mlo = Number(mask & 0xffffffffn);
      const mhi = Number((mask >> 32n) & 0xffffffffn);
      out.push(stmt(BPF_LD_W_ABS, argOffset(c.index, true)), stmt(BPF_ALU_AND_K, mhi));
      out.push(jump(BPF_JEQ_K, hi & mhi, 0, fail + 3));
      out.push(stmt(BPF_LD_W_ABS, argOffset(c.index, false)), stmt(BPF_ALU_AND_K, mlo));
      out.push(jump(BPF_JEQ_K, lo & mlo, 0, fail));
      return out;
    }
    if (c.type === 'dword' && c.value > 0xffffffffn) throw new SeccompError(`Invalid dword value ${c.value}: it needs more than 32 bits.`);
    out.push(stmt(BPF_LD_W_ABS, argOffset(c.index, false)));
    if (typeof c.op === 'object') {
      const m = Number(c.op.masked_eq & 0xffffffffn);
      out.push(stmt(BPF_ALU_AND_K, m), jump(BPF_JEQ_K, lo & m, 0, fail));
      return out;
    }
    switch (c.op) {
      case 'eq': out.push(jump(BPF_JEQ_K, lo, 0, fail)); break;
      case 'ne': out.push(jump(BPF_JEQ_K, lo, fail, 0)); break;
      case 'gt': out.push(jump(BPF_JGT_K, lo, 0, fail)); break;
      case 'ge': out.push(jump(BPF_JGE_K, lo, 0, fail)); break;
      case 'lt': out.push(jump(BPF_JGE_K, lo, fail, 0)); break;
      case 'le': out.push(jump(BPF_JGT_K, lo, fail, 0)); break;
    }
    return out;
  }
  // qword eq / ne on both halves; ordered comparisons over 64 bits are not offered.
  if (c.op === 'eq') {
    return [stmt(BPF_LD_W_ABS, argOffset(c.index, true)), jump(BPF_JEQ_K, hi, 0, fail + 2), stmt(BPF_LD_W_ABS, argOffset(c.index, false)), jump(BPF_JEQ_K, lo, 0, fail)];
  }
  if (c.op === 'ne') {
    // Differs if the high half differs (pass: skip the low check) or the low half does.
    return [stmt(BPF_LD_W_ABS, argOffset(c.index, true)), jump(BPF_JEQ_K, hi, 0, 2), stmt(BPF_LD_W_ABS, argOffset(c.index, false)), jump(BPF_JEQ_K, lo, fail, 0)];
  }
  throw new SeccompError(`Invalid condition: ${c.op} on a qword argument; use a dword, eq, ne or masked_eq.`);
}

/** The instructions for one system call's rules: each rule returns match on success, then default. */
function ruleBlock(rules: ArgCondition[][], match: number, dflt: number): Insn[] {
  if (rules.length === 0) return [stmt(BPF_RET_K, match)];
  const out: Insn[] = [];
  for (const rule of rules) {
    // Built back to front so each condition knows how far the rule's end is.
    let tail: Insn[] = [stmt(BPF_RET_K, match)];
    for (const c of [...rule].reverse()) tail = [...conditionChecks(c, tail.length), ...tail];
    out.push(...tail);
  }
  out.push(stmt(BPF_RET_K, dflt));
  return out;
}

export function compileFilter(spec: FilterSpec): Insn[] {
  const dflt = actionValue(spec.defaultAction);
  const match = actionValue(spec.matchAction);
  const seen = new Set<number>();
  for (const s of spec.syscalls) {
    if (seen.has(s.nr)) throw new SeccompError(`System call ${s.nr} appears twice in the filter; merge its rules.`);
    seen.add(s.nr);
  }
  const blocks = spec.syscalls.map((s) => ({ nr: s.nr, insns: ruleBlock(s.rules, match, dflt) }));
  const head: Insn[] = [
    stmt(BPF_LD_W_ABS, OFFSET_ARCH),
    jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
    stmt(BPF_RET_K, actionValue({ kind: 'kill_process' })),
    stmt(BPF_LD_W_ABS, OFFSET_NR),
    jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
    stmt(BPF_RET_K, dflt),
  ];
  // Dispatch: per call `jeq nr ? next : skip; ja block`, then the default; blocks after it.
  const dispatch: Insn[] = [];
  const dispatchLen = blocks.length * 2 + 1;
  let blockStart = 0;
  blocks.forEach((b, i) => {
    const jaAt = i * 2 + 1;
    dispatch.push(jump(BPF_JEQ_K, b.nr, 0, 1));
    dispatch.push(stmt(BPF_JMP_JA, dispatchLen - (jaAt + 1) + blockStart));
    blockStart += b.insns.length;
  });
  dispatch.push(stmt(BPF_RET_K, dflt));
  const program = [...head, ...dispatch, ...blocks.flatMap((b) => b.insns)];
  if (program.length > MAX_INSTRUCTIONS) throw new SeccompError(`The seccomp filter has ${program.length} instructions; the kernel takes at most ${MAX_INSTRUCTIONS}.`);
  return program;
}

/** struct sock_filter entries as bytes, for seccompSetFilter. */
export function encodeProgram(insns: readonly Insn[]): Uint8Array {
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach((n, i) => {
    buf.writeUInt16LE(n.code, i * 8);
    buf.writeUInt8(n.jt, i * 8 + 2);
    buf.writeUInt8(n.jf, i * 8 + 3);
    buf.writeUInt32LE(n.k >>> 0, i * 8 + 4);
  });
  return buf;
}

/** seccomp_data as the kernel fills it, for evaluating a program in tests. */
export interface SeccompData { nr: number; arch: number; args: bigint[] }

/** Runs a program over `data` as the kernel would (the subset of classic BPF the compiler emits). */
export function evaluate(insns: readonly Insn[], data: SeccompData): number {
  const word = (off: number): number => {
    if (off === OFFSET_NR) return data.nr >>> 0;
    if (off === OFFSET_ARCH) return data.arch >>> 0;
    const i = Math.floor((off - 16) / 8);
    const v = data.args[i] ?? 0n;
    return Number(((off - 16) % 8 === 4 ? v >> 32n : v) & 0xffffffffn);
  };
  let a = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const n = insns[pc];
    switch (n.code) {
      case BPF_LD_W_ABS: a = word(n.k); break;
      case BPF_ALU_AND_K: a = (a & n.k) >>> 0; break;
      case BPF_JMP_JA: pc += n.k; break;
      case BPF_JEQ_K: pc += a === n.k ? n.jt : n.jf; break;
      case BPF_JGT_K: pc += a > n.k ? n.jt : n.jf; break;
      case BPF_JGE_K: pc += a >= n.k ? n.jt : n.jf; break;
      case BPF_RET_K: return n.k;
      default: throw new Error(`unexpected opcode ${n.code}`);
    }
  }
  throw new Error('the program fell off its end');
}
