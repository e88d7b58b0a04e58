/** Unit tests for the benchmark harness's pure parts: statistics, smaps accounting, guests, results, chart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarize, ratio } from './stats';
import { memoryUse, parseSmaps } from './proc';
import { exitLoopCode, pvhElf, QEMU_EXIT_LOOP, QEMU_POLLED_TX, SPARKLER_POLLED_TX, UART_THR } from './guests';
import { makeEntry, markdownReport, orderEntries } from './results';
import { chartSvg } from './chart';
import { microvmArgs, QEMU_INIT_LINE } from './qemu';
import { bootKey, bootOrder, BootSample, cmdlineFor } from './boot';
import { bootEntries } from './boot-suite';
import { DEFAULT_BOOT_ARGS } from '../config/boot-source';

test('summaries are medians with min, max and the number of runs; failed runs are left out', () => {
  assert.deepEqual(summarize([3, 1, 2]), { median: 2, min: 1, max: 3, runs: 3 });
  assert.deepEqual(summarize([4, 1, 2, 3]), { median: 2.5, min: 1, max: 4, runs: 4 });
  assert.deepEqual(summarize([5, NaN]), { median: 5, min: 5, max: 5, runs: 1 });
  assert.equal(summarize([]), null);
  assert.equal(ratio(summarize([2]), summarize([4])), 0.5);
  assert.equal(ratio(summarize([2]), null), null);
});

const SMAPS = `55d0c0000000-55d0c0100000 r--p 00000000 08:01 123 /usr/bin/node
Rss:                1024 kB
Pss:                 512 kB
Private_Clean:       100 kB
Private_Dirty:         0 kB
7f0000000000-7f0008000000 rw-p 00000000 00:00 0 
Rss:                 300 kB
Pss:                 300 kB
Private_Clean:         0 kB
Private_Dirty:       300 kB
7f0010000000-7f0010200000 rw-p 00000000 00:00 0 
Rss:                2048 kB
Pss:                2048 kB
Private_Clean:         0 kB
Private_Dirty:      2048 kB
`;

test('smaps: guest RAM (an anonymous mapping of the guest size) is told apart from the VMM', () => {
  const maps = parseSmaps(SMAPS);
  assert.equal(maps.length, 3);
  assert.equal(maps[1].sizeKiB, 128 * 1024);
  assert.equal(maps[0].path, '/usr/bin/node');
  const use = memoryUse(maps, 128);
  assert.deepEqual(use.guest, { privateKiB: 300, privateDirtyKiB: 300, pssKiB: 300, rssKiB: 300 });
  assert.equal(use.privateKiB - use.guest.privateKiB, 100 + 2048);
  assert.equal(use.privateDirtyKiB - use.guest.privateDirtyKiB, 2048, 'the clean binary page is not dirty');
  assert.equal(use.pssKiB - use.guest.pssKiB, 512 + 2048);
});

test('the exit loop: the port, the count and a backward branch onto the OUT', () => {
  const code = exitLoopCode(1000, UART_THR);
  const loop = code.indexOf(Buffer.from('b9e8030000', 'hex')); // mov $1000,%ecx
  assert.ok(loop > 0);
  assert.deepEqual([...code.subarray(loop + 5, loop + 9)], [0x66, 0xba, 0xf8, 0x03]); // mov $0x3f8,%dx
  assert.deepEqual([...code.subarray(loop + 11, loop + 16)], [0xee, 0xff, 0xc9, 0x75, 0xfb]);
  assert.throws(() => exitLoopCode(0), RangeError);
});

test('the polled console loop: LSR read, THR write, and a branch back onto the IN, in both guests', () => {
  for (const image of [SPARKLER_POLLED_TX(1000), QEMU_POLLED_TX(1000)]) {
    const loop = image.indexOf(Buffer.from('b9e803000066bafd03', 'hex')); // mov $1000,%ecx; mov $0x3fd,%dx
    assert.ok(loop > 0);
    const body = image.subarray(loop + 9, loop + 21);
    assert.deepEqual([...body], [0xec, 0xb2, 0xf8, 0xb0, 0x5a, 0xee, 0xb2, 0xfd, 0xff, 0xc9, 0x75, 0xf4]);
    assert.equal(loop + 21 + (body[11] - 0x100), loop + 9, 'jnz lands on the in');
  }
  assert.throws(() => SPARKLER_POLLED_TX(0), RangeError);
});

test('PVH ELF: a PT_NOTE with the Xen PHYS32_ENTRY note pointing at the code', () => {
  const elf = QEMU_EXIT_LOOP(5);
  assert.equal(elf.readUInt32LE(0), 0x464c457f);
  const phoff = Number(elf.readBigUInt64LE(32));
  const note = phoff + 56;
  assert.equal(elf.readUInt32LE(note), 4); // PT_NOTE
  const at = Number(elf.readBigUInt64LE(note + 8));
  assert.equal(elf.readUInt32LE(at + 8), 18);
  assert.equal(elf.toString('latin1', at + 12, at + 15), 'Xen');
  assert.equal(elf.readUInt32LE(at + 16), 0x100000);
  assert.equal(pvhElf(Buffer.of(0xf4)).readBigUInt64LE(24), 0x100000n);
});

test('QEMU: microvm arguments and the guest_errors line that marks init', () => {
  const args = microvmArgs({ kernel: 'k', vcpus: 2, memMiB: 128, log: '/l', qmp: '/q', debugExit: true });
  assert.deepEqual(args.slice(args.indexOf('-smp'), args.indexOf('-smp') + 2), ['-smp', '2']);
  assert.ok(args.includes('-S'));
  assert.ok(args.join(' ').includes('-d guest_errors -D /l'));
  assert.ok(args.join(' ').includes('isa-debug-exit,iobase=0xf4'));
  assert.match("Invalid write at addr 0xC0000000, size 1, region '(null)', reason: rejected", QEMU_INIT_LINE);
  assert.doesNotMatch('Invalid read at addr 0xFED00000, size 4', QEMU_INIT_LINE);
});

test('results: headlines first and once, ratios of medians, a report and a chart', () => {
  const where = 'here';
  const entries = orderEntries([
    makeEntry({ name: 'boot_to_init_ms/x', unit: 'ms', where, variant: 'v', sparkler: [1], qemu: [2] }),
    makeEntry({ name: 'exit_roundtrip_us', unit: 'us', where, variant: 'v', sparkler: [30, 20, 40], floor: [10] }),
    makeEntry({ name: 'boot_to_init_ms', unit: 'ms', where, variant: 'v', sparkler: [100, 300, 200], qemu: [100] }),
  ]);
  assert.deepEqual(entries.map((e) => e.name), ['boot_to_init_ms', 'exit_roundtrip_us', 'boot_to_init_ms/x']);
  assert.equal(entries[0].ratio, 2);
  assert.equal(entries[0].headline, true);
  assert.equal(entries[1].against, 'c_floor');
  assert.equal(entries[1].qemu, null);
  assert.equal(entries[1].ratio, 3);
  const md = markdownReport(entries, {
    date: 'd', mode: 'quick', durationS: 1, host: 'h', kvm: 'k', cpus: 2, loadBefore: [1, 1, 1], loadAfter: [1, 1, 1],
    node: 'v20', qemu: null, kernel: 'k', problems: ['p'],
  }, 'chart.svg');
  assert.match(md, /\| boot_to_init_ms \| ms \| \*\*200\*\* \(100–300, n=3\)/);
  assert.match(md, /## Problems in this run/);
  const svg = chartSvg(entries, 'title <&>');
  assert.match(svg, /^<svg /);
  assert.match(svg, /title &lt;&amp;&gt;/);
  assert.equal((svg.match(/<rect x="250"/g) ?? []).length, 6);
});

test("boots use Firecracker's default command line; with the console on, one UART is left", () => {
  assert.equal(cmdlineFor(false), DEFAULT_BOOT_ARGS);
  assert.match(cmdlineFor(false), /8250\.nr_uarts=0/);
  const on = cmdlineFor(true);
  assert.ok(on.startsWith('console=ttyS0 '));
  assert.doesNotMatch(on, /nr_uarts/, 'console=ttyS0 needs the 8250 driver to register its ports');
  assert.equal(on.replace('console=ttyS0 ', ''), DEFAULT_BOOT_ARGS.replace(' 8250.nr_uarts=0', ''));
});

test('boot entries: the vmlinux row compares both VMMs on the vmlinux when QEMU booted it, else on QEMU\'s bzImage', () => {
  const ctx = { quick: true, bin: 'bin/sparkler', qemu: 'qemu-system-x86_64', work: '/tmp', localKvm: '', progress: () => {}, problems: [], experiments: [] };
  const sample = (vmm: BootSample['vmm'], ms: number): BootSample => ({ vmm, console: false, vcpus: 1, mode: 'process', run: 0, ms });
  const base = [sample('sparkler', 3000), sample('qemu', 4000), sample('sparkler-vmlinux', 2000)];
  const row = (samples: BootSample[]) => bootEntries(ctx, samples, 'here').find((e) => e.name === 'boot_to_init_ms/vmlinux/process_start/console_off/1vcpu')!;
  const same = row([...base, sample('qemu-vmlinux', 2500)]);
  assert.equal(same.ratio, 0.8);
  assert.match(same.variant, /both VMMs boot the same uncompressed ELF vmlinux/);
  const mixed = row(base);
  assert.equal(mixed.ratio, 0.5);
  assert.match(mixed.variant, /QEMU the bzImage/);
  assert.equal(bootEntries(ctx, base, 'here').find((e) => e.name === 'boot_to_init_ms')!.ratio, 0.75, 'the headline stays on the bzImage');
});

test('boot order: every configuration once, then the headline, VMMs alternating; boots already done are left out', () => {
  const plan = {
    qemu: 'qemu-system-x86_64',
    configs: [
      { console: false, vcpus: 1, modes: ['process' as const], extras: ['qemu-vmlinux' as const], runs: 2 },
      { console: true, vcpus: 1, modes: ['process' as const], runs: 1 },
    ],
  };
  const names = (tasks: ReturnType<typeof bootOrder>) => tasks.map((t) => `${t.vmm}:${t.c.console ? 'on' : 'off'}:${t.run}`);
  const all = bootOrder(plan);
  assert.deepEqual(names(all), ['sparkler:off:0', 'qemu:off:0', 'qemu-vmlinux:off:0', 'sparkler:on:0', 'qemu:on:0', 'qemu:off:1', 'sparkler:off:1', 'qemu-vmlinux:off:1']);
  // What an emulated host measured before it stalled is not booted again by the next one.
  const done = all.slice(0, 4).map((t) => bootKey({ vmm: t.vmm, mode: t.mode, console: t.c.console, vcpus: t.c.vcpus, run: t.run }));
  assert.deepEqual(names(bootOrder({ ...plan, done })), names(all.slice(4)));
  // Without QEMU only Sparkler's boots remain (and extras that need QEMU are dropped).
  assert.deepEqual(names(bootOrder({ configs: plan.configs })), ['sparkler:off:0', 'sparkler:on:0', 'sparkler:off:1']);
});
