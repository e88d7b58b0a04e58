/** The device manager with a fake KVM shim, fake devices and a hand-fired fd watcher. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from '../devices/bus';
import type { DeviceContext, FdWatch, FdWatcher } from '../devices/virtio/device-context';
import type { VirtioDevice } from '../devices/virtio/device';
import type { CreatedDevice, VirtioDeviceSpec } from '../devices/virtio/device-spec';
import { VIRTIO_MMIO_MAX_SLOTS } from '../devices/virtio/mmio-slots';
import { VmFd } from '../kvm/vm';
import type { Kvm } from '../kvm/kvm';
import { GuestMemory } from '../memory/guest-memory';
import { FakeNative } from '../testing/fake-native';
import { DeviceManager } from './device-manager';

class FakeWatcher implements FdWatcher {
  readonly open = new Map<number, (events: number) => void>();
  watch(fd: number, onEvent: (events: number) => void): FdWatch {
    this.open.set(fd, onEvent);
    return { setEvents: () => {}, close: () => { this.open.delete(fd); } };
  }
}

/** Records closes and fails eventfdRead as empty unless told otherwise. */
class CountingNative extends FakeNative {
  readonly closed: number[] = [];
  pending = new Map<number, number>();
  override close(fd: number): number { this.closed.push(fd); return 0; }
  override eventfdRead(fd: number): number { const n = this.pending.get(fd) ?? 0; this.pending.delete(fd); return n; }
}

function fakeDevice(queues = 1): VirtioDevice & { notified: number[] } {
  const notified: number[] = [];
  return {
    notified, deviceType: 4, queueMaxSizes: Array(queues).fill(16), features: 0n,
    readConfig: (_o, d) => d.fill(0), writeConfig: () => {}, activate: () => {}, reset: () => {},
    processQueue: (i) => { notified.push(i); },
  };
}

interface FakeConfig { id: string; first?: boolean; queues?: number; fail?: boolean }

function spec(type: string, log: string[]): VirtioDeviceSpec<FakeConfig> {
  return {
    type,
    instances: (c) => ((c as Record<string, FakeConfig[]>)[type] ?? []),
    create(config): CreatedDevice {
      if (config.fail) throw new Error(`${config.id} cannot be created`);
      let counter = 0;
      return {
        id: config.id, device: fakeDevice(config.queues), metricsGroup: `${type}_${config.id}`,
        metrics: () => ({ count: ++counter, level: 7 }), gauges: ['level'],
        cmdline: config.first ? `root=${config.id}` : undefined, firstSlot: config.first,
        update: (u) => log.push(`update ${config.id} ${JSON.stringify(u)}`),
        dispose: () => log.push(`dispose ${config.id}`),
      };
    },
  };
}

function setup() {
  const shim = new CountingNative();
  const vm = new VmFd(3, {} as Kvm, shim);
  const fds = new FakeWatcher();
  const warnings: string[] = [];
  const sink = { error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m) };
  const context: DeviceContext = { log: sink, host: sink, clock: { nowNs: () => 0n }, timers: { setTimeout: () => 0, clearTimeout: () => {} }, fds };
  const mmio = new Bus();
  const manager = new DeviceManager({ vm, mmio, memory: GuestMemory.fromLayout([{ start: 0, size: 4096 }]), context, shim });
  return { shim, fds, mmio, manager };
}

test('devices take slots in the specs order, with their GSI, cmdline, metrics and PATCH handler', () => {
  const log: string[] = [];
  const { shim, fds, manager } = setup();
  manager.attachAll([spec('blk', log), spec('rng', log)], { blk: [{ id: 'root', first: true }, { id: 'data', queues: 2 }], rng: [{ id: 'rng' }] } as never);
  assert.deepEqual(manager.devices.map((d) => `${d.type}:${d.id}@${d.slot}/${d.gsi}/0x${d.address.toString(16)}`),
    ['blk:root@0/5/0xc0001000', 'blk:data@1/6/0xc0002000', 'rng:rng@2/7/0xc0003000']);
  assert.deepEqual(manager.cmdlineFragments(), [
    'virtio_mmio.device=4K@0xc0001000:5', 'root=root', 'virtio_mmio.device=4K@0xc0002000:6', 'virtio_mmio.device=4K@0xc0003000:7']);
  assert.equal(fds.open.size, 4, 'one watched ioeventfd per queue');
  // A notification on the data drive's second queue reaches its device.
  const [, secondQueueFd] = [...fds.open.keys()].slice(1, 3);
  shim.pending.set(secondQueueFd, 1);
  fds.open.get(secondQueueFd)!(1);
  assert.equal(manager.queueNotifications, 1);
  const metrics = manager.metrics();
  assert.deepEqual([...metrics.keys()], ['blk_root', 'blk_data', 'rng_rng']);
  assert.deepEqual(metrics.get('blk_data')!.gauges, ['level']);
  manager.update('blk', 'data', { x: 1 });
  assert.deepEqual(log, ['update data {"x":1}']);
  assert.throws(() => manager.update('blk', 'nope', {}), (e: Error & { code?: string }) => e.code === 'ENODEVICE' && /blk device `nope` does not exist/.test(e.message));
  assert.equal(manager.find('rng', 'rng')?.slot, 2);
});

test('dispose releases every device last-attached first, closes their fds once, and is idempotent', () => {
  const log: string[] = [];
  const { shim, fds, manager } = setup();
  manager.attachAll([spec('blk', log)], { blk: [{ id: 'a' }, { id: 'b' }] } as never);
  manager.dispose();
  manager.dispose();
  assert.deepEqual(log, ['dispose b', 'dispose a']);
  assert.equal(fds.open.size, 0);
  assert.equal(shim.closed.length, 4, 'per device: one queue eventfd and one irqfd');
  assert.equal(new Set(shim.closed).size, 4);
});

test('a device that cannot be placed is disposed, and nothing of it stays', () => {
  const log: string[] = [];
  const { shim, fds, manager } = setup();
  manager.attach(spec('blk', log), { id: 'a' });
  assert.throws(() => manager.attach(spec('blk', log), { id: 'a' }), /Two blk devices have the id `a`/);
  assert.throws(() => manager.attach(spec('blk', log), { id: 'root', first: true }), /must be the first device, but blk `a` is/);
  assert.throws(() => manager.attach(spec('blk', log), { id: 'x', fail: true }), /x cannot be created/);
  assert.deepEqual(log, ['dispose a', 'dispose root']);
  assert.equal(manager.devices.length, 1);
  assert.equal(fds.open.size, 1);
  assert.equal(shim.closed.length, 0);
});

test('all slots taken: a clear error', () => {
  const { manager } = setup();
  const many = Array.from({ length: VIRTIO_MMIO_MAX_SLOTS }, (_, i) => ({ id: `d${i}` }));
  manager.attachAll([spec('blk', [])], { blk: many } as never);
  assert.throws(() => manager.attach(spec('blk', []), { id: 'one-more' }), /all 19 virtio-mmio slots are taken/);
});

test('a snapshot refuses a device whose state is not persisted, naming it', () => {
  const { manager } = setup();
  manager.attachAll([spec('vsock', [])], { vsock: [{ id: 'vsock' }] } as never);
  assert.throws(() => manager.saveStates(), (e: Error & { code?: string }) => e.code === 'ESNAPSHOTUNSUPPORTED' && /vsock device `vsock` cannot be saved in a snapshot yet/.test(e.message));
});

test('a snapshot calls every device\'s prepareSave once, before any save; none when a device cannot be saved', () => {
  const log: string[] = [];
  const saving = (type: string): VirtioDeviceSpec<FakeConfig> => ({
    ...spec(type, log),
    create(config, ctx) {
      const created = spec(type, log).create(config, ctx);
      return { ...created, prepareSave: () => log.push(`prepare ${config.id}`), save: () => { log.push(`save ${config.id}`); return { inFlight: 0, state: { id: config.id } }; } };
    },
  });
  const { manager } = setup();
  manager.attachAll([saving('a'), saving('b')], { a: [{ id: 'a1' }], b: [{ id: 'b1' }] } as never);
  const saved = manager.saveStates();
  assert.deepEqual(log, ['prepare a1', 'prepare b1', 'save a1', 'save b1']);
  assert.deepEqual(saved.map((s) => s.device), [{ id: 'a1' }, { id: 'b1' }]);
  log.length = 0;
  const mixed = setup().manager;
  mixed.attachAll([saving('a'), spec('vsock', log)], { a: [{ id: 'a1' }], vsock: [{ id: 'v' }] } as never);
  assert.throws(() => mixed.saveStates(), /cannot be saved in a snapshot yet/);
  assert.deepEqual(log, [], 'a refused snapshot changes no device');
});
