/** Validation of every resource module, and the cross-resource rules of the resource store. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBalloon, parseBalloonStartCmd, parseBalloonStatsUpdate, parseBalloonUpdate } from './balloon';
import { parseBootSource } from './boot-source';
import { parseInstanceAction } from './actions';
import { FeatureUnavailableError, setFeatureAvailable } from './features';
import { parseLoggerConfig } from './logger';
import { parseMachineConfig, parseMachineConfigUpdate } from './machine-config';
import { parseMemoryHotplug, parseMemoryHotplugSizeUpdate } from './memory-hotplug';
import { parseMetricsConfig } from './metrics';
import { parseMmdsConfig } from './mmds-config';
import { insertNetworkInterface, parseNetworkInterface, parseNetworkInterfaceUpdate } from './network-interface';
import { parsePmem, parsePmemUpdate } from './pmem';
import { VmResources } from './resources';
import { parseSerialConfig } from './serial';
import { parseSnapshotCreate, parseSnapshotLoad, parseVmState } from './snapshot';
import { ConfigError } from './validate';
import { parseVsock } from './vsock';

type Case = [string, (v: unknown) => unknown, unknown, RegExp];

const CASES: Case[] = [
  ['boot-source: not an object', parseBootSource, 'x', /boot-source: expected a JSON object/],
  ['boot-source: kernel missing', parseBootSource, {}, /missing field `kernel_image_path`/],
  ['boot-source: unknown field', parseBootSource, { kernel_image_path: 'k', cmdline: '' }, /unknown field `cmdline`/],
  ['boot-source: initrd type', parseBootSource, { kernel_image_path: 'k', initrd_path: 1 }, /`initrd_path` must be a string/],
  ['machine: vcpu 0', parseMachineConfig, { vcpu_count: 0, mem_size_mib: 1 }, /`vcpu_count` is 0, but must be between 1 and 32/],
  ['machine: vcpu float', parseMachineConfig, { vcpu_count: 1.5, mem_size_mib: 1 }, /`vcpu_count` must be an integer/],
  ['machine: mem missing', parseMachineConfig, { vcpu_count: 1 }, /missing field `mem_size_mib`/],
  ['machine: huge pages enum', parseMachineConfig, { vcpu_count: 1, mem_size_mib: 2, huge_pages: '1G' }, /`huge_pages` must be one of "None", "2M"/],
  ['machine: cpu template enum', parseMachineConfig, { vcpu_count: 1, mem_size_mib: 2, cpu_template: 'X' }, /`cpu_template` must be one of "C3"/],
  ['machine: cpu template unavailable', parseMachineConfig, { vcpu_count: 1, mem_size_mib: 2, cpu_template: 'T2' }, /Static CPU templates/],
  ['machine: smt odd', parseMachineConfig, { vcpu_count: 3, mem_size_mib: 2, smt: true }, /1 or an even number/],
  ['machine patch: empty', parseMachineConfigUpdate, {}, /^Empty PATCH request\.$/],
  ['machine patch: bool type', parseMachineConfigUpdate, { smt: 1 }, /`smt` must be true or false/],
  ['actions: missing', parseInstanceAction, {}, /actions: missing field `action_type`/],
  ['actions: unknown', parseInstanceAction, { action_type: 'Reboot' }, /`action_type` must be one of "FlushMetrics", "InstanceStart", "SendCtrlAltDel"/],
  ['vm: state', parseVmState, { state: 'Stopped' }, /`state` must be one of "Paused", "Resumed"/],
  ['vm: missing', parseVmState, {}, /vm: missing field `state`/],
  ['logger: level', parseLoggerConfig, { level: 'Loud' }, /logger: field `level` must be one of "Error", "Warning", "Info", "Debug", "Trace", "Off"\./],
  ['logger: show_level type', parseLoggerConfig, { show_level: 'yes' }, /`show_level` must be true or false/],
  ['logger: unknown', parseLoggerConfig, { path: '/x' }, /unknown field `path`/],
  ['metrics: missing', parseMetricsConfig, {}, /missing field `metrics_path`/],
  ['metrics: empty', parseMetricsConfig, { metrics_path: '' }, /`metrics_path` cannot be empty/],
  ['serial: bucket', parseSerialConfig, { rate_limiter: { size: 1 } }, /serial\.rate_limiter: missing field `refill_time`/],
  ['serial: path type', parseSerialConfig, { serial_out_path: 3 }, /`serial_out_path` must be a string/],
  ['net: id', parseNetworkInterface, { iface_id: 'eth-0', host_dev_name: 'tap0' }, /`iface_id` is invalid/],
  ['net: tap missing', parseNetworkInterface, { iface_id: 'eth0' }, /missing field `host_dev_name`/],
  ['net: tap too long', parseNetworkInterface, { iface_id: 'eth0', host_dev_name: 'a'.repeat(16) }, /1 to 15 characters/],
  ['net: mac', parseNetworkInterface, { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:00:00:00' }, /`guest_mac` is "06:00:00:00:00"/],
  ['net: mtu', parseNetworkInterface, { iface_id: 'eth0', host_dev_name: 'tap0', mtu: 67 }, /`mtu` is 67, but must be between 68 and 65535/],
  ['net: limiter', parseNetworkInterface, { iface_id: 'eth0', host_dev_name: 'tap0', rx_rate_limiter: { ops: 1 } }, /rx_rate_limiter\.ops: expected a JSON object/],
  ['net patch: field', parseNetworkInterfaceUpdate, { iface_id: 'eth0', host_dev_name: 'tap1' }, /unknown field `host_dev_name`/],
  ['vsock: cid', parseVsock, { guest_cid: 2, uds_path: '/v' }, /`guest_cid` is 2, but must be between 3 and 4294967295/],
  ['vsock: path', parseVsock, { guest_cid: 3 }, /missing field `uds_path`/],
  ['balloon: amount', parseBalloon, { deflate_on_oom: true }, /missing field `amount_mib`/],
  ['balloon: deflate', parseBalloon, { amount_mib: 1 }, /missing field `deflate_on_oom`/],
  ['balloon: interval', parseBalloon, { amount_mib: 1, deflate_on_oom: false, stats_polling_interval_s: 70000 }, /between 0 and 65535/],
  ['balloon patch: field', parseBalloonUpdate, { amount_mib: 1, deflate_on_oom: true }, /unknown field `deflate_on_oom`/],
  ['balloon stats: missing', parseBalloonStatsUpdate, {}, /missing field `stats_polling_interval_s`/],
  ['balloon hinting: type', parseBalloonStartCmd, { acknowledge_on_stop: 1 }, /`acknowledge_on_stop` must be true or false/],
  ['mmds: interfaces', parseMmdsConfig, {}, /missing field `network_interfaces`/],
  ['mmds: empty interfaces', parseMmdsConfig, { network_interfaces: [] }, /^The list of network interface IDs that allow forwarding MMDS requests is empty\.$/],
  ['mmds: interface id', parseMmdsConfig, { network_interfaces: ['a b'] }, /network_interfaces\[0\]: API Resource IDs/],
  ['mmds: address', parseMmdsConfig, { network_interfaces: ['eth0'], ipv4_address: '10.0.0.1' }, /must be a link-local IPv4 address/],
  ['mmds: address edge', parseMmdsConfig, { network_interfaces: ['eth0'], ipv4_address: '169.254.0.1' }, /link-local/],
  ['mmds: version', parseMmdsConfig, { network_interfaces: ['eth0'], version: 'V3' }, /`version` must be one of "V1", "V2"/],
  ['hotplug: total', parseMemoryHotplug, {}, /missing field `total_size_mib`/],
  ['hotplug: slot min', parseMemoryHotplug, { total_size_mib: 128, slot_size_mib: 64 }, /`slot_size_mib` is 64, but must be between 128/],
  ['hotplug: block pow2', parseMemoryHotplug, { total_size_mib: 384, slot_size_mib: 384, block_size_mib: 6 }, /power of two/],
  ['hotplug: multiple', parseMemoryHotplug, { total_size_mib: 200 }, /multiple of `slot_size_mib`/],
  ['hotplug patch: missing', parseMemoryHotplugSizeUpdate, {}, /missing field `requested_size_mib`/],
  ['pmem: path', parsePmem, { id: 'p' }, /missing field `path_on_host`/],
  ['pmem: id', parsePmem, { id: '', path_on_host: '/p' }, /The ID cannot be empty/],
  ['pmem patch: field', parsePmemUpdate, { id: 'p', read_only: true }, /unknown field `read_only`/],
  ['snapshot create: paths', parseSnapshotCreate, { snapshot_path: '/s' }, /missing field `mem_file_path`/],
  ['snapshot create: type', parseSnapshotCreate, { snapshot_path: '/s', mem_file_path: '/m', snapshot_type: 'Half' }, /`snapshot_type` must be one of "Full", "Diff"/],
  ['snapshot load: both mem', parseSnapshotLoad, { snapshot_path: '/s', mem_file_path: '/m', mem_backend: { backend_type: 'File', backend_path: '/m' } }, /too many fields: either `mem_backend` or `mem_file_path` exclusively is required\./],
  ['snapshot load: no mem', parseSnapshotLoad, { snapshot_path: '/s' }, /missing field: either `mem_backend` or `mem_file_path` is required/],
  ['snapshot load: backend', parseSnapshotLoad, { snapshot_path: '/s', mem_backend: { backend_type: 'Disk', backend_path: '/m' } }, /`backend_type` must be one of "File", "Uffd"/],
  ['snapshot load: override', parseSnapshotLoad, { snapshot_path: '/s', mem_file_path: '/m', network_overrides: [{ iface_id: 'e' }] }, /network_overrides\[0\]: missing field `host_dev_name`/],
];

for (const [name, parse, value, message] of CASES) {
  test(`validation: ${name}`, () => {
    assert.throws(() => parse(value), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${JSON.stringify(value)} -> ${message}`);
  });
}

test('valid bodies parse with Firecracker defaults', () => {
  assert.deepEqual(parseMmdsConfig({ network_interfaces: ['eth0'] }), { version: 'V1', networkInterfaces: ['eth0'], ipv4Address: '169.254.169.254', imdsCompat: false });
  assert.deepEqual(parseBalloon({ amount_mib: 0, deflate_on_oom: true }), { amountMib: 0, deflateOnOom: true, statsPollingIntervalS: 0, freePageHinting: false, freePageReporting: false });
  assert.deepEqual(parseMemoryHotplug({ total_size_mib: 1024 }), { totalSizeMib: 1024, slotSizeMib: 128, blockSizeMib: 2 });
  assert.deepEqual(parseSnapshotLoad({ snapshot_path: '/s', mem_file_path: '/m', enable_diff_snapshots: true }).memBackend, { backendType: 'File', backendPath: '/m' });
  assert.equal(parseLoggerConfig({ level: 'debug' }).level, 'Debug');
  assert.equal(parseBalloonStartCmd(undefined).acknowledgeOnStop, false);
});

test('network interfaces: a MAC or TAP already used elsewhere is refused; same id replaces', () => {
  const a = parseNetworkInterface({ iface_id: 'a', host_dev_name: 'tap0', guest_mac: '06:00:00:00:00:01' });
  const list = insertNetworkInterface([], a);
  assert.throws(() => insertNetworkInterface(list, { ...a, ifaceId: 'b', hostDevName: 'tap1' }), /MAC address is already in use/);
  assert.throws(() => insertNetworkInterface(list, { ifaceId: 'b', hostDevName: 'tap0' }), /tap0 is already used/);
  assert.equal(insertNetworkInterface(list, { ...a, mtu: 1500 })[0].mtu, 1500);
});

test('resource store: unavailable features are refused with a sentence, after validation', () => {
  const r = new VmResources();
  assert.throws(() => r.insertPmem(parsePmem({ id: 'p', path_on_host: '/p' })), (e: unknown) => e instanceof FeatureUnavailableError && /pmem.*not available in this version/.test((e as Error).message));
  assert.throws(() => r.insertDrive({ driveId: 'v', isRootDevice: false, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync', socket: '/s' }), /vhost-user block devices: this feature is not available/);
  assert.deepEqual(r.config.pmem, []);
});

test('resource store: balloon no larger than RAM, MMDS only on existing interfaces, one root device', () => {
  for (const f of ['mmds', 'network-interfaces', 'pmem'] as const) setFeatureAvailable(f, true);
  try {
    const r = new VmResources();
    r.updateMachineConfig({ vcpuCount: 1, memSizeMib: 64 }, true);
    assert.throws(() => r.setBalloon(parseBalloon({ amount_mib: 65, deflate_on_oom: true })), /larger than the guest memory \(64 MiB\)/);
    r.setBalloon(parseBalloon({ amount_mib: 32, deflate_on_oom: true }));
    assert.throws(() => r.updateMachineConfig({ memSizeMib: 16 }, false), /smaller than the configured balloon target/);
    assert.throws(() => r.setMmdsConfig(parseMmdsConfig({ network_interfaces: ['eth0'] })), /The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface: `eth0` do not exist/);
    r.insertNetworkInterface(parseNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0' }));
    r.setMmdsConfig(parseMmdsConfig({ network_interfaces: ['eth0'] }));
    r.insertPmem(parsePmem({ id: 'p', path_on_host: '/p', root_device: true }));
    assert.throws(() => r.insertDrive({ driveId: 'd', pathOnHost: '/d', isRootDevice: true, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync' }), /A root device already exists/);
    r.updateMachineConfig({ vcpuCount: 2 }, false);
    assert.equal(r.config.machineConfig.memSizeMib, 64, 'PATCH keeps the other fields');
    r.updateMachineConfig({ vcpuCount: 2, memSizeMib: 128 }, true);
    assert.equal(r.config.machineConfig.smt, false, 'PUT resets absent fields');
  } finally {
    for (const f of ['mmds', 'network-interfaces', 'pmem'] as const) setFeatureAvailable(f, false);
  }
});

test('a config file naming an unavailable device fails naming the section', () => {
  const r = new VmResources();
  assert.throws(
    () => r.applyVmConfig({ bootSource: { kernelImagePath: '/k' }, machineConfig: { vcpuCount: 1, memSizeMib: 128, smt: false, trackDirtyPages: false, hugePages: 'None' }, drives: [], networkInterfaces: [{ ifaceId: 'eth0', hostDevName: 'tap0' }], pmem: [] }),
    /config file section `network-interfaces`: Network interfaces \(virtio-net\): this feature is not available/,
  );
});

test('"warn" is accepted as a log level, as Firecracker accepts it', () => {
  assert.deepEqual(parseLoggerConfig({ level: 'WARN' }), { level: 'Warning' });
  assert.deepEqual(parseLoggerConfig({ level: 'debug' }), { level: 'Debug' });
});

test('a drive PATCH after boot shows in the stored config: new file, buckets replaced, size 0 removes one', () => {
  const r = new VmResources();
  r.insertDrive({ driveId: 'd', pathOnHost: '/a', isRootDevice: false, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync',
    rateLimiter: { bandwidth: { size: 1000, refillTimeMs: 100, oneTimeBurst: 0 }, ops: { size: 10, refillTimeMs: 100, oneTimeBurst: 0 } } });
  r.recordDriveUpdate({ driveId: 'd', pathOnHost: '/b', rateLimiter: { bandwidth: { size: 5000, refillTimeMs: 100, oneTimeBurst: 0 } } });
  assert.equal(r.config.drives[0].pathOnHost, '/b');
  assert.deepEqual(r.config.drives[0].rateLimiter, { bandwidth: { size: 5000, refillTimeMs: 100, oneTimeBurst: 0 }, ops: { size: 10, refillTimeMs: 100, oneTimeBurst: 0 } });
  r.recordDriveUpdate({ driveId: 'd', rateLimiter: { bandwidth: { size: 0, refillTimeMs: 0, oneTimeBurst: 0 }, ops: { size: 0, refillTimeMs: 0, oneTimeBurst: 0 } } });
  assert.equal(r.config.drives[0].rateLimiter, undefined);
});
