import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetworkInterface } from '../../../config/network-interface';
import { createMmds } from '../../../mmds/mmds';
import { NET_GAUGES, NetMetrics, sumNetMetrics } from './metrics';
import { checkTap, macBytes, netSpec, netTrainingSection } from './spec';

test('one instance per interface; only those named in mmds-config carry MMDS', () => {
  const mmds = createMmds();
  const ifaces = ['eth0', 'eth1'].map((id, i) => parseNetworkInterface({ iface_id: id, host_dev_name: `tap${i}` }));
  const instances = netSpec.instances({ networkInterfaces: ifaces, mmds: { mmds, interfaces: ['eth1'] } });
  assert.deepEqual(instances.map((i) => [i.iface.ifaceId, i.mmds !== undefined]), [['eth0', false], ['eth1', true]]);
  assert.deepEqual(netSpec.instances({}), []);
});

test('MAC text to bytes, either case', () => {
  assert.deepEqual([...macBytes('06:00:AC:10:00:02')], [6, 0, 0xac, 0x10, 0, 2]);
  assert.deepEqual([...macBytes('aa:bb:cc:dd:ee:ff')], [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
});

test('the `net` group is the sum of every interface, with every field even with none', () => {
  const a = new NetMetrics();
  const b = new NetMetrics();
  a.rxBytes = 10;
  b.rxBytes = 5;
  b.txSpoofedMac = 2;
  const sum = sumNetMetrics([a.toJson(), b.toJson()]);
  assert.equal(sum.rx_bytes_count, 15);
  assert.equal(sum.tx_spoofed_mac_count, 2);
  assert.deepEqual(Object.keys(sumNetMetrics([])), Object.keys(a.toJson()));
});

test('PUT-time TAP check: an existing TAP must open; a name with no device yet is left for InstanceStart', () => {
  const opened: string[] = [];
  const shim = {
    open: () => { opened.push('open'); return 9; },
    close: () => 0,
    ioctl: () => -16,
  } as unknown as import('../../../native').NativeShim;
  checkTap('tapX', shim, () => false);
  assert.deepEqual(opened, []);
  assert.throws(() => checkTap('tapX', shim, () => true), /Device or resource busy \(os error 16\)/);
});

test('code-cache training: an interface on a TAP the VMM makes, only where one can be opened', () => {
  const shim = (openResult: number) => ({ open: () => openResult, close: () => 0, ioctl: () => 0 }) as unknown as import('../../../native').NativeShim;
  assert.deepEqual(netTrainingSection('sptrain1', shim(9)), {
    section: 'network-interfaces', value: [{ iface_id: 'eth0', host_dev_name: 'sptrain1', guest_mac: '06:00:ac:10:00:02' }],
  });
  assert.equal(netTrainingSection('sptrain1', shim(-1)), undefined, 'EPERM opening /dev/net/tun: no interface');
});

test("tap_write_agg: Firecracker's {min_us, max_us, sum_us} per interface (sum as a difference); the `net` sum has min and max 0", () => {
  const m = new (require('../../../metrics/metrics') as typeof import('../../../metrics/metrics')).Metrics();
  const a = new NetMetrics();
  a.recordTapWrite(7_400n);
  a.recordTapWrite(3_000n);
  m.register('net_eth0', () => a.toJson(), NET_GAUGES);
  m.register('net', () => sumNetMetrics([a.toJson()]));
  const line = m.snapshot() as Record<string, Record<string, unknown>>;
  assert.deepEqual(line.net_eth0.tap_write_agg, { sum_us: 10, min_us: 3, max_us: 7 });
  assert.deepEqual(line.net.tap_write_agg, { sum_us: 10, min_us: 0, max_us: 0 });
  assert.equal(line.net_eth0['tap_write_agg.sum_us'], undefined);
  a.recordTapWrite(5_000n);
  const next = m.snapshot() as Record<string, Record<string, unknown>>;
  assert.deepEqual(next.net_eth0.tap_write_agg, { sum_us: 5, min_us: 3, max_us: 7 });
});
