/** VcpuRunner's exit dispatch and state machine against a fake native shim (no KVM). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VcpuFd } from '../kvm/vcpu';
import { KVM_EXIT } from '../kvm/run';
import { Bus } from '../devices/bus';
import { FakeNative } from '../testing/fake-native';
import { VcpuRunner, VmStopReason } from './vcpu-runner';

function setup(vcpuCount = 1) {
  const shim = new FakeNative();
  const vcpus = Array.from({ length: vcpuCount }, (_, i) => VcpuFd.fromFd(10 + i, i, 4096, shim));
  const pio = new Bus();
  const mmio = new Bus();
  const stops: VmStopReason[] = [];
  const unhandled: string[] = [];
  const runner = new VcpuRunner(vcpus, {
    pio, mmio, shim, onStop: (r) => stops.push(r),
    onUnhandledAccess: (kind, addr) => unhandled.push(`${kind}:${addr.toString(16)}`),
  });
  runner.start();
  return { shim, vcpus, pio, mmio, stops, unhandled, runner };
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
  const { shim, vcpus, pio, stops } = setup();
  pio.insert({ read: () => { throw new Error('boom'); }, write: () => {} }, 0x60, 1, 'bad');
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  ioExit(vcpus[0], 0x60, false, 1, 1);
  shim.deliverExit(0);
  assert.equal(stops.length, 0);
  assert.equal(shim.vcpus[0].resumed, 1);
  process.nextTick(() => process.off('warning', onWarning));
});

test('shutdown, system events and a failed KVM_RUN stop every vCPU once', () => {
  const { shim, vcpus, stops, runner } = setup(2);
  vcpus[1].run.bytes.writeUInt32LE(KVM_EXIT.SHUTDOWN, 8);
  shim.deliverExit(1);
  assert.deepEqual(stops, [{ kind: 'triple-fault' }]);
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
