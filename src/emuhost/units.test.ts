// Unit tests of the emulated host's pure parts: no QEMU needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeCpio } from './cpio';
import { loadOrder, moduleDepends } from './kmod';
import { commandScript, mountsFile, shQuote, writableShares } from './script';
import { bzImagePayload, hasPvhEntry } from './kernel';
import { parseArgs } from './cli';
import { qemuArgs } from './qemu';
import { consoleShowsWedge, guestFaultsIn } from './run';
import { askMonitor, summarizeRegisters } from './monitor';
import { tempDir } from '../testing/temp-dir';

test('cpio: newc headers, 4-byte alignment, symlinks, device nodes and the trailer', () => {
  const buf = writeCpio([
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: '/init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
  ]);
  const entries: { name: string; mode: number; data: string; rdev: [number, number] }[] = [];
  let off = 0;
  for (;;) {
    assert.equal(buf.toString('ascii', off, off + 6), '070701');
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const size = field(6);
    const nameLen = field(11);
    const name = buf.toString('ascii', off + 110, off + 110 + nameLen - 1);
    let p = off + 110 + nameLen;
    p += (4 - (p % 4)) % 4;
    entries.push({ name, mode: field(1), data: buf.toString('latin1', p, p + size), rdev: [field(9), field(10)] });
    p += size;
    p += (4 - (p % 4)) % 4;
    off = p;
    if (name === 'TRAILER!!!') break;
  }
  assert.equal(off, buf.length);
  assert.deepEqual(entries.map((e) => e.name), ['bin', 'init', 'bin/sh', 'dev/console', 'TRAILER!!!']);
  assert.equal(entries[1]?.mode, 0o100755);
  assert.equal(entries[1]?.data, '#!/bin/sh\n');
  assert.equal(entries[2]?.mode, 0o120777);
  assert.equal(entries[2]?.data, 'busybox');
  assert.equal(entries[3]?.mode, 0o020600);
  assert.deepEqual(entries[3]?.rdev, [5, 1]);
});

test('kmod: depends from modinfo, load order puts dependencies first, missing ones are named', () => {
  const ko = Buffer.from('\x7fELF....\0license=GPL\0depends=kvm,ccp\0name=kvm_amd\0');
  assert.deepEqual(moduleDepends(ko), ['kvm', 'ccp']);
  assert.deepEqual(moduleDepends(Buffer.from('\0depends=\0name=x\0')), []);
  const deps = new Map([['kvm_amd', ['kvm', 'ccp']], ['kvm', ['irqbypass']], ['irqbypass', []], ['ccp', []]]);
  assert.deepEqual(loadOrder(['kvm-amd'], deps), ['irqbypass', 'kvm', 'ccp', 'kvm_amd']);
  assert.throws(() => loadOrder(['x'], new Map([['x', ['y']]])), /y \(needed by x\)/);
});

test('script: quoting, environment, cwd and command', () => {
  assert.equal(shQuote(`it's $HOME`), `'it'\\''s $HOME'`);
  const s = commandScript({
    argv: ['sh', '-c', 'echo "$A"'], cwd: '/work/a b',
    env: { A: `x'y`, PWD: '/nope', 'BAD-NAME': 'v', U: undefined }, umask: 0o22,
  });
  assert.match(s, /^exec 9<&-$/m);
  assert.match(s, /^umask 022$/m);
  assert.match(s, /^export A='x'\\''y'$/m);
  assert.doesNotMatch(s, /PWD|BAD-NAME|export U=/);
  assert.match(s, /^cd '\/work\/a b' \|\| exit 126$/m);
  assert.match(s, /^exec 'sh' '-c' 'echo "\$A"'$/m);
});

test('script: writable shares drop nested paths and the root', () => {
  const shares = writableShares(['/tmp', '/var/tmp', '/tmp/x/', '/work/main', '/', '/work/main/sub'], (p) => (p === '/tmp' ? 'mapped-xattr' : 'none'));
  assert.deepEqual(shares, [
    { tag: 'rw0', path: '/tmp', model: 'mapped-xattr' },
    { tag: 'rw1', path: '/var/tmp', model: 'none' },
    { tag: 'rw2', path: '/work/main', model: 'none' },
  ]);
  assert.equal(mountsFile(shares), 'rw0 /tmp\nrw1 /var/tmp\nrw2 /work/main\n');
});

test('kernel: bzImage payload location and the PVH note check', () => {
  const bz = Buffer.alloc(4096);
  bz[0x1f1] = 1; // one setup sector: protected-mode code at 1024
  bz.write('HdrS', 0x202, 'latin1');
  bz.writeUInt16LE(0x20f, 0x206);
  bz.writeUInt32LE(100, 0x248);
  bz.writeUInt32LE(16, 0x24c);
  assert.equal(bzImagePayload(bz)?.byteOffset, 1124);
  assert.equal(bzImagePayload(bz)?.length, 16);
  assert.equal(bzImagePayload(Buffer.alloc(4096)), undefined);
  // A minimal ELF64 with one PT_NOTE holding a Xen note of type 18.
  const elf = Buffer.alloc(256);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2;
  elf.writeBigUInt64LE(64n, 32);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt32LE(4, 64);
  elf.writeBigUInt64LE(128n, 64 + 8);
  elf.writeBigUInt64LE(24n, 64 + 32);
  elf.writeUInt32LE(4, 128);
  elf.writeUInt32LE(8, 132);
  elf.writeUInt32LE(18, 136);
  elf.write('Xen\0', 140, 'latin1');
  assert.equal(hasPvhEntry(elf), true);
  elf.writeUInt32LE(17, 136);
  assert.equal(hasPvhEntry(elf), false);
});

test('cli: options before -- and the command after it', () => {
  assert.deepEqual(parseArgs(['--memory', '1024', '--cpus', '1', '--timeout', '2.5', '--', 'sh', '-c', 'exit 7']), {
    mode: 'run', memoryMiB: 1024, cpus: 1, timeoutMs: 2500, writable: [], command: ['sh', '-c', 'exit 7'],
  });
  assert.deepEqual(parseArgs(['true', '--memory']).command, ['true', '--memory']);
  assert.equal(parseArgs(['--check']).mode, 'check');
  assert.throws(() => parseArgs(['--cpus', 'x']), /--cpus needs a number/);
});

test('qemu: TCG with SVM and NPT, shares read-only root and writable paths', () => {
  const a = qemuArgs({
    kernel: '/k', initrd: '/i', runDir: '/tmp/r,1', consoleLog: '/tmp/r,1/console.log', memoryMiB: 2048, cpus: 2,
    shares: [{ tag: 'rw0', path: '/tmp', model: 'mapped-xattr' }],
  });
  const j = a.join(' ');
  assert.match(j, /-accel tcg,thread=multi -cpu EPYC-Rome,\+svm,\+npt -m 2048 -smp 2/);
  assert.match(j, /-no-reboot/);
  assert.match(j, /local,path=\/,mount_tag=root,security_model=none,multidevs=remap,readonly=on/);
  assert.match(j, /local,path=\/tmp\/r,,1,mount_tag=run,/);
  assert.match(j, /local,path=\/tmp,mount_tag=rw0,security_model=mapped-xattr,multidevs=remap( |$)/);
  assert.match(j, /sparkler\.emuhost=1/);
  assert.match(j, /-monitor unix:\/tmp\/r,,1\/monitor\.sock,server=on,wait=off/);
});

test('a wedged emulated host is recognised from its console (RCU stall, soft lockup), a healthy one is not', () => {
  const stalled = [
    '[   12.001] virtio_blk virtio0: [vda] 8 512-byte logical blocks',
    '[   24.168244] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:',
    '[   24.176207] rcu: rcu_preempt kthread starved for 5252 jiffies! g-519 f0x2 RCU_GP_WAIT_FQS(5) ->state=0x0 ->cpu=1',
  ].join('\n');
  assert.equal(consoleShowsWedge(stalled), true);
  assert.equal(consoleShowsWedge('[   30.1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [qemu:812]'), true);
  assert.equal(consoleShowsWedge('[    0.000000] Linux version 6.1.0\n[    1.2] Run /init as init process\n'), false);
});

test('the monitor: commands answered one by one between prompts; the registers summed up per CPU', async () => {
  const dir = tempDir('sparkler-monitor-');
  const socket = path.join(dir, 'monitor.sock');
  const regs = 'CPU#0\nRAX=0000000000000000 RBX=0000000000000001\nRIP=ffffffff81a0c2f4 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\nES =0000 0000000000000000 00000000 00000000\nCS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]\nCR0=80050033 CR2=00007f0000000000 CR3=0000000001c0a000 CR4=00350ef0\nEFER=0000000000001d01\nCPU#1\nRIP=ffffffff81000000 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0\n';
  const server = net.createServer((c) => {
    c.write('QEMU 7.2.22 monitor - type \'help\' for more information\r\n(qemu) ');
    c.on('data', (d) => {
      const cmd = d.toString().trim();
      c.write(`${cmd}\r\n${cmd === 'info registers -a' ? regs.replace(/\n/g, '\r\n') : 'unknown\r\n'}(qemu) `);
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const [answer, other] = await askMonitor(socket, ['info registers -a', 'info nothing']);
    assert.equal(other, 'unknown');
    assert.equal(summarizeRegisters(answer), [
      'CPU#0', 'RIP=ffffffff81a0c2f4 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1',
      'ES =0000 0000000000000000 00000000 00000000', 'CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]',
      'CR0=80050033 CR2=00007f0000000000 CR3=0000000001c0a000 CR4=00350ef0', 'EFER=0000000000001d01',
      'CPU#1', 'RIP=ffffffff81000000 RFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0',
    ].join('\n'));
    await assert.rejects(askMonitor(path.join(dir, 'none.sock'), ['info cpus']), /ENOENT/);
  } finally {
    server.close();
  }
});

test('run: guest triple faults are counted from the trace lines the init streams, none when the file is missing', () => {
  const dir = tempDir('sparkler-emuhost-faults-');
  const file = path.join(dir, 'guest-faults');
  assert.equal(guestFaultsIn(file), 0);
  fs.writeFileSync(file, [
    '            node-311     [001] .....    41.107633: kvm_userspace_exit: reason KVM_EXIT_SHUTDOWN (8)',
    '            node-402     [000] .....    52.900120: kvm_userspace_exit: reason KVM_EXIT_SHUTDOWN (8)',
    '',
  ].join('\n'));
  assert.equal(guestFaultsIn(file), 2);
});
