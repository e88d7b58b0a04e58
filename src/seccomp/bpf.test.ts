import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIT_ARCH_X86_64, FilterSpec, Insn, actionValue, compileFilter, encodeProgram, evaluate } from './bpf';
import { ALLOWLISTS, allowlistFor, defaultFilter, nodeMajor } from './allowlist';
import { parseFilterFile } from './filter-json';
import { X86_64_SYSCALLS } from './syscalls-x86_64';

const ALLOW = actionValue({ kind: 'allow' });
const TRAP = actionValue({ kind: 'trap' });
const KILL = actionValue({ kind: 'kill_process' });
const call = (nr: number, ...args: bigint[]) => ({ nr, arch: AUDIT_ARCH_X86_64, args });

const spec: FilterSpec = {
  defaultAction: { kind: 'trap' },
  matchAction: { kind: 'allow' },
  syscalls: [
    { nr: 0, rules: [] },
    // ioctl: (arg1 == 0xae01) OR (arg1 & 0xff00 == 0x5400 AND arg0 <= 2)
    { nr: 16, rules: [[{ index: 1, type: 'dword', op: 'eq', value: 0xae01n }], [{ index: 1, type: 'dword', op: { masked_eq: 0xff00n }, value: 0x5400n }, { index: 0, type: 'dword', op: 'le', value: 2n }]] },
    { nr: 9, rules: [[{ index: 2, type: 'qword', op: 'eq', value: 0x1_0000_0003n }], [{ index: 2, type: 'qword', op: 'ne', value: 7n }, { index: 3, type: 'dword', op: 'gt', value: 10n }]] },
    { nr: 41, rules: [[{ index: 0, type: 'dword', op: 'ge', value: 1n }, { index: 0, type: 'dword', op: 'lt', value: 2n }]] },
  ],
};

test('the compiled program: architecture check, x32 refused, unconditional and conditional calls', () => {
  const p = compileFilter(spec);
  assert.equal(evaluate(p, call(0)), ALLOW);
  assert.equal(evaluate(p, call(1)), TRAP, 'not listed');
  assert.equal(evaluate(p, { nr: 0, arch: 0x40000003, args: [] }), KILL, 'i386 calls are killed');
  assert.equal(evaluate(p, call(0x40000000)), TRAP, 'x32 numbers get the default');
  assert.equal(evaluate(p, call(16, 3n, 0xae01n)), ALLOW);
  assert.equal(evaluate(p, call(16, 3n, 0xffffffff_0000ae01n)), ALLOW, 'dword compares the low half only');
  assert.equal(evaluate(p, call(16, 3n, 0xae02n)), TRAP);
  assert.equal(evaluate(p, call(16, 2n, 0x5401n)), ALLOW);
  assert.equal(evaluate(p, call(16, 3n, 0x5401n)), TRAP, 'second rule: arg0 <= 2 fails');
  assert.equal(evaluate(p, call(16, 0n, 0x6401n)), TRAP);
  assert.equal(evaluate(p, call(9, 0n, 0n, 0x1_0000_0003n)), ALLOW, 'qword eq');
  assert.equal(evaluate(p, call(9, 0n, 0n, 0x3n)), TRAP, 'qword eq: the high half differs; rule 2 needs arg3 > 10');
  assert.equal(evaluate(p, call(9, 0n, 0n, 0x3n, 11n)), ALLOW, 'qword ne and dword gt');
  assert.equal(evaluate(p, call(9, 0n, 0n, 7n, 11n)), TRAP, 'qword ne fails');
  assert.equal(evaluate(p, call(9, 0n, 0n, 0x1_0000_0007n, 11n)), ALLOW, 'qword ne: high half differs');
  assert.equal(evaluate(p, call(41, 1n)), ALLOW);
  assert.equal(evaluate(p, call(41, 0n)), TRAP);
  assert.equal(evaluate(p, call(41, 2n)), TRAP);
});

test('encoding: 8 bytes per instruction, little-endian code/jt/jf/k', () => {
  const insns: Insn[] = [{ code: 0x15, jt: 1, jf: 2, k: 0xc000003e }, { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 }];
  assert.deepEqual([...encodeProgram(insns)], [0x15, 0, 1, 2, 0x3e, 0, 0, 0xc0, 0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]);
});

test('a duplicate call, an argument index past 5 and a 64-bit dword are refused', () => {
  assert.throws(() => compileFilter({ ...spec, syscalls: [{ nr: 1, rules: [] }, { nr: 1, rules: [] }] }), { code: 'ESECCOMP' });
  assert.throws(() => compileFilter({ ...spec, syscalls: [{ nr: 1, rules: [[{ index: 6, type: 'dword', op: 'eq', value: 0n }]] }] }), { code: 'ESECCOMP' });
  assert.throws(() => compileFilter({ ...spec, syscalls: [{ nr: 1, rules: [[{ index: 0, type: 'dword', op: 'eq', value: 1n << 33n }]] }] }), { code: 'ESECCOMP' });
  assert.throws(() => compileFilter({ ...spec, syscalls: [{ nr: 1, rules: [[{ index: 0, type: 'qword', op: 'lt', value: 1n }]] }] }), { code: 'ESECCOMP' });
});

test('the default allow-list exists for this Node, names real calls, and compiles within the kernel limit', () => {
  const list = allowlistFor(nodeMajor());
  const names = list.map((e) => e.syscall);
  assert.equal(new Set(names).size, names.length, 'each call once');
  for (const e of list) assert.ok(e.why.length > 3, `${e.syscall} says why`);
  const p = compileFilter(defaultFilter(list));
  assert.ok(p.length < 1000, `${p.length} instructions`);
  const nr = (n: string): number => X86_64_SYSCALLS[n];
  assert.equal(evaluate(p, call(nr('read'))), ALLOW);
  assert.equal(evaluate(p, call(nr('ioctl'), 9n, 0xae80n)), ALLOW, 'KVM_RUN');
  assert.equal(evaluate(p, call(nr('ioctl'), 9n, 0x5401n)), ALLOW, 'TCGETS');
  assert.equal(evaluate(p, call(nr('ioctl'), 9n, 0x1234n)), TRAP, 'another ioctl type');
  assert.equal(evaluate(p, call(nr('socket'), 1n, 1n)), ALLOW, 'AF_UNIX');
  assert.equal(evaluate(p, call(nr('socket'), 2n, 1n)), TRAP, 'AF_INET');
  assert.equal(evaluate(p, call(nr('clone'), 0x3d0f00n)), ALLOW, 'a thread');
  assert.equal(evaluate(p, call(nr('clone'), 0x1200011n)), TRAP, 'fork');
  for (const denied of ['execve', 'execveat', 'fork', 'vfork', 'ptrace', 'mount', 'pivot_root', 'chroot', 'setns', 'unshare', 'kill', 'init_module', 'bpf', 'process_vm_writev']) {
    assert.equal(evaluate(p, call(nr(denied))), TRAP, denied);
  }
  assert.throws(() => allowlistFor(99), { code: 'ESECCOMP', message: /no seccomp allow-list for Node 99/ });
  assert.ok(ALLOWLISTS[20]);
});

test("custom filters in seccompiler's JSON form: entries for one call are alternatives, args all hold", () => {
  const f = parseFilterFile(JSON.stringify({
    Vmm: {
      default_action: 'trap',
      filter_action: 'allow',
      filter: [
        { syscall: 'read' },
        { syscall: 'ioctl', args: [{ index: 1, type: 'dword', op: 'eq', val: 44547, comment: 'KVM_CHECK_EXTENSION' }] },
        { syscall: 'ioctl', args: [{ index: 1, type: 'dword', op: { masked_eq: 0xff00 }, val: 0x5400 }] },
        { syscall: 'write', args: [{ index: 0, type: 'dword', op: 'eq', val: 1 }] },
        { syscall: 'write' },
      ],
    },
    api: { default_action: { errno: 1 }, filter_action: 'allow', filter: [] },
  }));
  const p = compileFilter(f);
  assert.equal(evaluate(p, call(0)), ALLOW);
  assert.equal(evaluate(p, call(16, 0n, 44547n)), ALLOW);
  assert.equal(evaluate(p, call(16, 0n, 0x5413n)), ALLOW);
  assert.equal(evaluate(p, call(16, 0n, 44548n)), TRAP);
  assert.equal(evaluate(p, call(1, 7n)), ALLOW, 'an unconditional entry wins');
  const errno = parseFilterFile(JSON.stringify({ vmm: { default_action: { errno: 38 }, filter_action: 'log', filter: [] } }));
  assert.equal(evaluate(compileFilter(errno), call(0)), 0x00050000 | 38);
});

test('bad filter files: Firecracker\'s "Filter deserialization failed" and a sentence naming the field', () => {
  assert.throws(() => parseFilterFile('garbage'), { code: 'ESECCOMP', message: /^Filter deserialization failed/ });
  assert.throws(() => parseFilterFile('{"api": {}}'), { message: /no "vmm" filter/ });
  assert.throws(() => parseFilterFile('{"vmm": {}, "gpu": {}}'), { message: /unknown thread category "gpu"/ });
  const vmm = (filter: unknown[], extra = {}) => JSON.stringify({ vmm: { default_action: 'trap', filter_action: 'allow', filter, ...extra } });
  assert.throws(() => parseFilterFile(vmm([{ syscall: 'nope' }])), { message: /vmm\.filter\[0\]\.syscall: nope is not an x86_64 system call/ });
  assert.throws(() => parseFilterFile(vmm([{ syscall: 'read', args: [{ index: 7, type: 'dword', op: 'eq', val: 1 }] }])), { message: /args\[0\]\.index/ });
  assert.throws(() => parseFilterFile(vmm([{ syscall: 'read', args: [{ index: 0, type: 'word', op: 'eq', val: 1 }] }])), { message: /args\[0\]\.type/ });
  assert.throws(() => parseFilterFile(vmm([{ syscall: 'read', args: [{ index: 0, type: 'dword', op: 'approx', val: 1 }] }])), { message: /args\[0\]\.op/ });
  assert.throws(() => parseFilterFile(vmm([{ syscall: 'read', args: [{ index: 0, type: 'dword', op: 'eq', val: -1 }] }])), { message: /args\[0\]\.val/ });
  assert.throws(() => parseFilterFile(vmm([], { default_action: 'explode' })), { message: /vmm\.default_action/ });
});
