import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVmConfig } from '../config/vm-config';
import { parseSnapshotLoad } from '../config/snapshot';
import { applyLoadOverrides } from './load-overrides';

const saved = () => parseVmConfig({
  'boot-source': { kernel_image_path: '/k' },
  'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
  'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0' }, { iface_id: 'eth1', host_dev_name: 'tap1' }],
  vsock: { guest_cid: 3, uds_path: '/run/a.sock' },
});
const load = (extra: object) => parseSnapshotLoad({ snapshot_path: 's', mem_backend: { backend_type: 'File', backend_path: 'm' }, ...extra });

test('network_overrides and vsock_override replace the saved host names, leaving the saved configuration alone', () => {
  const config = saved();
  const p = load({ network_overrides: [{ iface_id: 'eth1', host_dev_name: 'tap_override' }], vsock_override: { uds_path: '/run/b.sock' } });
  const out = applyLoadOverrides(config, p);
  assert.deepEqual(out.networkInterfaces.map((i) => [i.ifaceId, i.hostDevName]), [['eth0', 'tap0'], ['eth1', 'tap_override']]);
  assert.equal(out.vsock?.udsPath, '/run/b.sock');
  assert.equal(out.vsock?.guestCid, 3);
  assert.equal(config.networkInterfaces[1].hostDevName, 'tap1');
  assert.equal(config.vsock?.udsPath, '/run/a.sock');
  assert.deepEqual(applyLoadOverrides(config, load({})), config, 'no overrides: the same configuration');
});

test('an override naming a device the snapshot lacks is refused with Firecracker\'s words', () => {
  const code = (c: string, re: RegExp) => (e: Error & { code?: string }) => e.code === c && re.test(e.message);
  assert.throws(() => applyLoadOverrides(saved(), load({ network_overrides: [{ iface_id: 'eth9', host_dev_name: 'tap9' }] })),
    code('EUNKNOWNNETDEVICE', /^Unknown Network Device: the snapshot has no network interface `eth9` \(it has `eth0`, `eth1`\)\.$/));
  const noVsock = { ...saved(), vsock: undefined };
  assert.throws(() => applyLoadOverrides(noVsock, load({ vsock_override: { uds_path: '/x' } })), code('EUNKNOWNVSOCKDEVICE', /^Unknown Vsock Device/));
});

test('an override\'s TAP name is checked as a PUT /network-interfaces name is, and two interfaces cannot share one', () => {
  assert.throws(() => applyLoadOverrides(saved(), load({ network_overrides: [{ iface_id: 'eth0', host_dev_name: 'a-name-longer-than-15' }] })),
    (e: Error & { code?: string }) => e.code === 'EINVALIDOVERRIDE' && /host_dev_name/.test(e.message));
  assert.throws(() => applyLoadOverrides(saved(), load({ network_overrides: [{ iface_id: 'eth0', host_dev_name: 'tap1' }] })),
    /The host device tap1 would be used by two network interfaces/);
  assert.throws(() => applyLoadOverrides(saved(), load({ vsock_override: { uds_path: '' } })), /uds_path/);
});
