/** VcpuRunner's exit dispatch and state machine against a fake native shim (no KVM). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VcpuFd } from '../kvm/vcpu';
import { KVM_EXIT } from '../kvm/run';
import { Bus } from '../devices/bus';
import { FakeNative } from '../testing/fake-native';
import { DEFAULT_VCPU_SPIN_NS, describeVcpuState, FAST_PATH_MAX_EXITS, SPIN_BACKOFF_MAX, VcpuRunner, VmStopReason, vcpuSpinNsFrom } from './vcpu-runner';

function setup(vcpuCount = 1, spinNs = 50_000) {
  const shim = new FakeNative();
  const vcpus = Array.from({ length: vcpuCount }, (_, i) => VcpuFd.fromFd(10 + i, i, 4096, shim));
  const pio = new Bus();
  const mmio = new Bus();
  const stops: VmStopReason[] = [];
  const unhandled: string[] = [];
  const deviceErrors: string[] = [];
  const runner = new VcpuRunner(vcpus, {
    pio, mmio, shim, spinNs, onStop: (r) => stops.push(r),
    onUnhandledAccess: (kind, addr) => unhandled.push(`${kind}:${addr.toString(16)}`),
    onDeviceError: (m) => deviceErrors.push(m),
  });
  runner.start();
  return { shim, vcpus, pio, mmio, stops, unhandled, deviceErrors, runner };
}

/** Writes a KVM_EXIT_IO into kvm_run: data at offset 0x100. */
function ioExit(vcpu: VcpuFd, port: number, out: boolean, size: number, count: number, data?: Buffer): void {
  const b = vcpu.run.bytes;
  b.writeUInt32LE(KVM_EXIT.IO, 8);
  b[32] = out ? 1 : 0;
  b[33] = size;
  b.writeUInt16LE(port, 34);
  b.writeUInt32LE(count, 36);
  b.writeBigUInt64LE(0x100n, 40);
  if (data) data.copy(b, 0x100);
}

test('port writes, string I/O and reads reach the bus and the vCPU is resumed', () => {
  const { shim, vcpus, pio } = setup();
  const seen: number[] = [];
  pio.insert({ read: (_o, d) => d.fill(0x5a), write: (_o, d) => seen.push(d[0]) }, 0x3f8, 8, 'x');
  ioExit(vcpus[0], 0x3f8, true, 1, 3, Buffer.from('abc'));
  shim.deliverExit(0);
  assert.deepEqual(seen, [0x61, 0x62, 0x63]);
  ioExit(vcpus[0], 0x3f9, false, 1, 1);
  shim.deliverExit(0);
  assert.equal(vcpus[0].run.bytes[0x100], 0x5a);
  assert.equal(shim.vcpus[0].resumed, 2);
});

test('an unclaimed port read floats to 0xff and is reported', () => {
  const { shim, vcpus, unhandled } = setup();
  ioExit(vcpus[0], 0x2f8, false, 2, 1);
  shim.deliverExit(0);
  assert.deepEqual([...vcpus[0].run.bytes.subarray(0x100, 0x102)], [0xff, 0xff]);
  assert.deepEqual(unhandled, ['pio:2f8']);
});

test('MMIO reads and writes reach the MMIO bus', () => {
  const { shim, vcpus, mmio } = setup();
  const writes: string[] = [];
  mmio.insert({ read: (o, d) => d.writeUInt32LE(0x74726976 + o), write: (o, d) => writes.push(`${o}:${d.toString('hex')}`) }, 0xc000_1000, 0x1000, 'v');
  const b = vcpus[0].run.bytes;
  b.writeUInt32LE(KVM_EXIT.MMIO, 8);
  b.writeBigUInt64LE(0xc000_1000n, 32);
  b.writeUInt32LE(4, 48);
  b[52] = 0;
  shim.deliverExit(0);
  assert.equal(b.readUInt32LE(40), 0x74726976);
  b.writeBigUInt64LE(0xc000_1070n, 32);
  b[52] = 1;
  b.writeUInt32LE(0x0f, 40);
  shim.deliverExit(0);
  assert.deepEqual(writes, ['112:0f000000']);
});

test('a device that throws loses the access, not the VMM', () => {
  const { shim, vcpus, pio, stops, deviceErrors } = setup();
  pio.insert({ read: () => { throw new Error('boom'); }, write: () => {} }, 0x60, 1, 'bad');
  ioExit(vcpus[0], 0x60, false, 1, 1);
  shim.deliverExit(0);
  assert.equal(stops.length, 0);
  assert.equal(shim.vcpus[0].resumed, 1);
  assert.deepEqual(deviceErrors, ['vCPU 0: a device failed on the guest\'s access, which is lost: boom']);
});

test('shutdown, system events and a failed KVM_RUN stop every vCPU once', () => {
  const { shim, vcpus, stops, runner } = setup(2);
  vcpus[1].run.bytes.writeUInt32LE(KVM_EXIT.SHUTDOWN, 8);
  shim.deliverExit(1);
  assert.equal(stops.length, 1);
  assert.equal(stops[0].kind, 'triple-fault');
  assert.equal(stops[0].kind === 'triple-fault' && stops[0].vcpu, 1, 'the stop names the vCPU that shut down');
  assert.equal(shim.vcpus[1].stopped, true);
  assert.equal(shim.vcpus[0].kicked, 1, 'the other, running vCPU is kicked');
  assert.equal(vcpus[0].run.immediateExit, true);
  shim.deliverExit(0, -4); // its KVM_RUN returns EINTR
  assert.equal(shim.vcpus[0].stopped, true);
  runner.stop({ kind: 'requested' });
  assert.equal(stops.length, 1, 'the first reason wins');
});

test('an unexpected exit and KVM_RUN errors stop with an error naming them', () => {
  const a = setup();
  a.vcpus[0].run.bytes.writeUInt32LE(KVM_EXIT.DEBUG, 8);
  a.shim.deliverExit(0);
  assert.equal(a.stops[0].kind, 'error');
  assert.match((a.stops[0] as { error: Error }).error.message, /unexpected exit: DEBUG/);
  const b = setup();
  b.shim.deliverExit(0, -14);
  assert.match((b.stops[0] as { error: Error }).error.message, /KVM_RUN failed on vCPU 0 \(errno 14\)/);
});

test('pause parks vCPUs as they exit; resume releases exactly the parked ones', async () => {
  const { shim, vcpus, runner } = setup(2);
  const paused = runner.pause();
  assert.equal(shim.vcpus[0].kicked, 1);
  assert.equal(shim.vcpus[1].kicked, 1);
  let done = false;
  void paused.then(() => { done = true; });
  shim.deliverExit(0, -4);
  await Promise.resolve();
  assert.equal(done, false, 'one vCPU still running');
  shim.deliverExit(1, -4);
  await paused;
  assert.equal(runner.paused, true);
  assert.equal(shim.vcpus[0].resumed + shim.vcpus[1].resumed, 0);
  runner.resume();
  assert.equal(shim.vcpus[0].resumed, 1);
  assert.equal(shim.vcpus[1].resumed, 1);
  assert.equal(vcpus[0].run.immediateExit, false);
});

// --- The spinning hand-over (vcpuResumeAndWait) ---

/** A port write of `byte` to 0x3f8, as a spun exit. */
const spunOut = (vcpu: VcpuFd, byte: number) => ({ write: () => ioExit(vcpu, 0x3f8, true, 1, 1, Buffer.from([byte])) });

function recorder(pio: Bus): number[] {
  const seen: number[] = [];
  pio.insert({ read: (_o, d) => d.fill(0), write: (_o, d) => seen.push(d[0]) }, 0x3f8, 8, 'rec');
  return seen;
}

test('while exits keep coming, one onExit handles them all in the same turn', () => {
  const { shim, vcpus, pio, runner } = setup();
  const seen = recorder(pio);
  shim.queueSpunExit(0, spunOut(vcpus[0], 2), spunOut(vcpus[0], 3), spunOut(vcpus[0], 4));
  ioExit(vcpus[0], 0x3f8, true, 1, 1, Buffer.from([1]));
  shim.deliverExit(0);
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.deepEqual(shim.vcpus[0].waits, [50_000, 50_000, 50_000, 50_000], 'the fourth spin saw no exit');
  assert.equal(shim.vcpus[0].state, 'running', 'the vCPU runs; its next exit comes through onExit');
  assert.deepEqual(runner.handovers, { posted: 1, spun: 3, missed: 1, declined: 0, yielded: 0 });
  assert.equal(runner.exits.io, 4);
  assert.equal(shim.vcpus[0].spinNs, 50_000, 'the vCPU thread spins as long');
});

test('after a spin that saw no exit, the next exits go the slow way, backing off', () => {
  const { shim, runner } = setup();
  const waits = () => shim.vcpus[0].waits.length;
  shim.deliverExit(0, -4); // spins, misses: the next exit goes the slow way
  assert.equal(waits(), 1);
  shim.deliverExit(0, -4);
  assert.equal(waits(), 1);
  assert.equal(shim.vcpus[0].resumed, 2);
  shim.deliverExit(0, -4); // spins, misses again: the next two go the slow way
  shim.deliverExit(0, -4);
  shim.deliverExit(0, -4);
  assert.equal(waits(), 2);
  shim.queueSpunExit(0, { result: -4 });
  shim.deliverExit(0, -4); // spins, takes one exit (back-off reset), spins, misses
  assert.equal(waits(), 4);
  assert.deepEqual(runner.handovers, { posted: 6, spun: 1, missed: 3, declined: 0, yielded: 0 });
  shim.deliverExit(0, -4); // back-off 1 again, not 4
  shim.deliverExit(0, -4);
  assert.equal(waits(), 5);
  for (let i = 0; i < 200; i++) shim.deliverExit(0, -4);
  assert.ok(runner.handovers.missed <= 4 + Math.ceil(200 / SPIN_BACKOFF_MAX) + 4, `${runner.handovers.missed} missed spins`);
});

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('the fast path yields the event-loop turn after FAST_PATH_MAX_EXITS, keeping the next exit', async () => {
  const { shim, vcpus, runner } = setup();
  const total = FAST_PATH_MAX_EXITS + 10;
  for (let i = 0; i < total; i++) shim.queueSpunExit(0, { write: () => ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([i & 0xff])) });
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  const inFirstTurn = runner.handovers.spun;
  assert.ok(inFirstTurn < FAST_PATH_MAX_EXITS, `${inFirstTurn} exits in one turn`);
  assert.equal(runner.handovers.yielded, 1);
  assert.equal(shim.vcpus[0].watched, true, 'resumed, its next exit kept for the next turn');
  assert.throws(() => shim.deliverExit(0), /posted while the VMM thread watches/);
  while (shim.vcpus[0].spunExits.length > 0 || shim.vcpus[0].watched) await nextTurn();
  assert.equal(runner.handovers.spun, total);
  assert.equal(runner.exits.io, total + 1);
  assert.equal(runner.handovers.missed, 1, 'the spin after the last queued exit');
  assert.equal(shim.vcpus[0].state, 'running');
});

test('a pause during a yielded turn parks the vCPU on the kept exit', async () => {
  const { shim, vcpus, runner } = setup();
  for (let i = 0; i < FAST_PATH_MAX_EXITS + 1; i++) shim.queueSpunExit(0, { write: () => ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0])) });
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  assert.equal(runner.handovers.yielded, 1);
  shim.vcpus[0].spunExits.length = 0;
  const paused = runner.pause(); // from the event loop, between turns
  assert.equal(shim.vcpus[0].kicked, 1);
  shim.queueSpunExit(0, { result: -4 }); // KVM_RUN interrupted by the kick
  await paused;
  assert.equal(runner.paused, true);
  assert.equal(shim.vcpus[0].state, 'exited');
  assert.equal(shim.vcpus[0].watched, false);
});

test('a spun exit that stops the VM ends the thread and spins no more', () => {
  const { shim, vcpus, stops } = setup();
  shim.queueSpunExit(0, { write: () => vcpus[0].run.bytes.writeUInt32LE(KVM_EXIT.HLT, 8) }, {});
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  assert.deepEqual(stops, [{ kind: 'halt' }]);
  assert.equal(shim.vcpus[0].state, 'stopped');
  assert.equal(shim.vcpus[0].waits.length, 1);
  assert.equal(shim.vcpus[0].spunExits.length, 1, 'the queued exit after HLT was never taken');
});

test('a spun KVM_RUN error stops the VM with the error', () => {
  const { shim, vcpus, stops } = setup();
  shim.queueSpunExit(0, { result: -14 });
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  assert.match((stops[0] as { error: Error }).error.message, /KVM_RUN failed on vCPU 0 \(errno 14\)/);
  assert.equal(shim.vcpus[0].state, 'stopped');
});

test('a pause asked for during the fast path completes the access, then parks the vCPU', async () => {
  const { shim, vcpus, pio, runner } = setup();
  let paused: Promise<void> | undefined;
  pio.insert({ read: () => {}, write: () => { paused ??= runner.pause(); } }, 0x80, 1, 'pause-on-write');
  // exit 1: a write to 0x3ff; exit 2 (spun): the write that pauses; exit 3 (spun): never taken.
  shim.queueSpunExit(0, { write: () => ioExit(vcpus[0], 0x80, true, 1, 1, Buffer.from([1])) }, {});
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  assert.ok(paused);
  // The pausing write was handled, but KVM finishes the instruction on the next KVM_RUN: the
  // vCPU re-enters once with immediate_exit, and parks on the EINTR that brings it back.
  assert.equal(runner.paused, false);
  assert.equal(shim.vcpus[0].state, 'running');
  assert.equal(vcpus[0].run.immediateExit, true);
  shim.deliverExit(0, -4);
  await paused;
  assert.equal(runner.paused, true);
  assert.equal(shim.vcpus[0].state, 'exited', 'parked: the VMM thread holds its exit');
  assert.equal(shim.vcpus[0].kicked, 1, 'kicked, as a running vCPU is');
  assert.equal(vcpus[0].run.immediateExit, true);
  runner.resume();
  assert.equal(shim.vcpus[0].state, 'running');
  assert.equal(vcpus[0].run.immediateExit, false);
});

test('a stop asked for during the fast path ends the thread', () => {
  const { shim, vcpus, pio, runner, stops } = setup();
  pio.insert({ read: () => {}, write: () => runner.stop({ kind: 'requested' }) }, 0x80, 1, 'stop-on-write');
  shim.queueSpunExit(0, { write: () => ioExit(vcpus[0], 0x80, true, 1, 1, Buffer.from([1])) }, {});
  ioExit(vcpus[0], 0x3ff, true, 1, 1, Buffer.from([0]));
  shim.deliverExit(0);
  assert.deepEqual(stops, [{ kind: 'requested' }]);
  assert.equal(shim.vcpus[0].state, 'stopped');
  assert.equal(shim.vcpus[0].waits.length, 1);
});

test('spinNs 0 never spins, on either side', () => {
  const off = setup(1, 0);
  off.shim.queueSpunExit(0, {});
  off.shim.deliverExit(0, -4);
  assert.deepEqual(off.shim.vcpus[0].waits, []);
  assert.equal(off.shim.vcpus[0].resumed, 1);
  assert.equal(off.shim.vcpus[0].spinNs, 0);
});

test('with several vCPUs each one\'s exits are taken while spinning, one vCPU at a time', () => {
  const { shim, vcpus, pio, runner } = setup(2);
  const seen = recorder(pio);
  shim.queueSpunExit(0, spunOut(vcpus[0], 2));
  shim.queueSpunExit(1, spunOut(vcpus[1], 12), spunOut(vcpus[1], 13));
  ioExit(vcpus[0], 0x3f8, true, 1, 1, Buffer.from([1]));
  shim.deliverExit(0);
  ioExit(vcpus[1], 0x3f8, true, 1, 1, Buffer.from([11]));
  shim.deliverExit(1);
  assert.deepEqual(seen, [1, 2, 11, 12, 13]);
  assert.deepEqual([shim.vcpus[0].waits.length, shim.vcpus[1].waits.length], [2, 3]);
  assert.deepEqual([shim.vcpus[0].spinNs, shim.vcpus[1].spinNs], [50_000, 50_000]);
  assert.equal(runner.handovers.spun, 3);
});

test('SPARKLER_VCPU_SPIN_NS: default, override, 0 disables, one CPU disables', () => {
  assert.equal(vcpuSpinNsFrom({}, 2), DEFAULT_VCPU_SPIN_NS);
  assert.equal(vcpuSpinNsFrom({ SPARKLER_VCPU_SPIN_NS: '20000' }, 4), 20_000);
  assert.equal(vcpuSpinNsFrom({ SPARKLER_VCPU_SPIN_NS: '0' }, 4), 0);
  assert.equal(vcpuSpinNsFrom({ SPARKLER_VCPU_SPIN_NS: 'lots' }, 4), DEFAULT_VCPU_SPIN_NS);
  assert.equal(vcpuSpinNsFrom({ SPARKLER_VCPU_SPIN_NS: '99999999999' }, 4), 10_000_000);
  assert.equal(vcpuSpinNsFrom({ SPARKLER_VCPU_SPIN_NS: '20000' }, 1), 0);
});

test("a triple fault's log line carries the vCPU's registers, or why they could not be read", () => {
  const regs = { rip: 0xffffffff81000000n, rsp: 0x8000n, rflags: 0x2n };
  const sregs = { cr0: 0x80050033n, cr2: 0xdeadn, cr3: 0x1000n, cr4: 0x20n, efer: 0xd01n, cs: { selector: 0x10 } };
  const fd = { getRegs: () => regs, getSregs: () => sregs } as unknown as Parameters<typeof describeVcpuState>[0];
  assert.equal(describeVcpuState(fd), 'rip=0xffffffff81000000 rsp=0x8000 rflags=0x2 cr0=0x80050033 cr2=0xdead cr3=0x1000 cr4=0x20 efer=0xd01 cs=0x10');
  const broken = { getRegs: () => { throw new Error('KVM_GET_REGS failed (EBADF)'); }, getSregs: () => sregs } as unknown as Parameters<typeof describeVcpuState>[0];
  assert.equal(describeVcpuState(broken), 'registers unreadable: KVM_GET_REGS failed (EBADF)');
  const reset = { getRegs: () => ({ rip: 0xfff0n, rsp: 0n, rflags: 0x2n }), getSregs: () => ({ ...sregs, cr0: 0x10n, cr2: 0n, cr3: 0n, cr4: 0n, efer: 0n, cs: { selector: 0xf000 } }) } as unknown as Parameters<typeof describeVcpuState>[0];
  assert.match(describeVcpuState(reset), /^rip=0xfff0 .* cs=0xf000 \(the reset state: KVM on AMD resets a vCPU at a shutdown/);
});

test('a resume that overlaps a pause resolves the pause, and the VM runs on', async () => {
  const { shim, vcpus, runner } = setup(2, 0);
  const paused = runner.pause();
  ioExit(vcpus[0], 0x80, true, 1, 1, Buffer.of(1));
  shim.deliverExit(0); // vCPU 0 parks; vCPU 1 is still in KVM_RUN
  runner.resume();
  await paused; // would hang if the resume left the pause waiting
  assert.equal(runner.paused, false);
  assert.equal(shim.vcpus[0].resumed, 1, 'the parked vCPU 0 runs again');
  ioExit(vcpus[1], 0x80, true, 1, 1, Buffer.of(1));
  shim.deliverExit(1);
  assert.equal(shim.vcpus[1].resumed, 1, 'vCPU 1 runs on after its exit');
});

test('joinThreads waits until every vCPU thread was ended, then joins each once', async () => {
  const { shim, runner } = setup(2, 0);
  const joined = shim.joined;
  await assert.rejects(runner.joinThreads(), /only be joined after the VM is stopped/);
  runner.stop({ kind: 'requested' });
  assert.equal(runner.stopping, true);
  let done = false;
  const join = runner.joinThreads().then(() => { done = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(done, false, 'both vCPUs are still in KVM_RUN (kicked)');
  shim.deliverExit(0);
  shim.deliverExit(1);
  await join;
  assert.deepEqual(joined, [0, 1]);
  assert.ok(shim.vcpus.every((v) => v.stopped));
  await runner.joinThreads();
  assert.deepEqual(joined, [0, 1], 'a second join does nothing');
});
