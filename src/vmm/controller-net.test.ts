import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { matchRoute, parseRequest } from '../api/router';
import { fakeVmm } from '../api/testing';
import type { VmmAction } from '../api/actions';
import { ApiError } from '../api/errors';
import { Logger } from '../logger/logger';
import { Metrics } from '../metrics/metrics';
import type { BuildOptions } from './builder';
import { VmmController } from './controller';

const devNull = fs.openSync('/dev/null', 'w');

function setup(opts: { tapError?: Error; metadata?: unknown; mmdsSizeLimit?: number } = {}) {
  const fake = fakeVmm();
  const built: BuildOptions[] = [];
  const taps: string[] = [];
  const controller = new VmmController({
    instanceId: 'net-vm', vmmVersion: '9.9.9', logger: new Logger({ fd: devNull }), metrics: new Metrics(),
    build: (o) => { built.push(o); return fake.vmm; }, checkBootSource: () => {},
    checkTap: (name) => { taps.push(name); if (opts.tapError) throw opts.tapError; },
    metadata: opts.metadata, mmdsSizeLimit: opts.mmdsSizeLimit,
  });
  return { controller, fake, built, taps };
}

const act = (method: string, p: string, body?: unknown): VmmAction =>
  parseRequest(matchRoute(method, p), Buffer.from(body === undefined ? '' : JSON.stringify(body)));

test('PUT /network-interfaces opens the TAP; a busy TAP or one already used answers "Could not create the network device"', async () => {
  const { controller, taps } = setup();
  await controller.handle(act('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0', guest_mac: '06:00:00:00:00:01' }));
  assert.deepEqual(taps, ['tap0']);
  await assert.rejects(controller.handle(act('PUT', '/network-interfaces/eth1', { iface_id: 'eth1', host_dev_name: 'tap0' })),
    /Could not create the network device: Open tap device failed/);
  await assert.rejects(controller.handle(act('PUT', '/network-interfaces/eth1', { iface_id: 'eth1', host_dev_name: 'tap1', guest_mac: '06:00:00:00:00:01' })),
    /The MAC address is already in use: 06:00:00:00:00:01\.$/);
  const busy = setup({ tapError: Object.assign(new Error('Open tap device failed: Error while creating ifreq structure: Device or resource busy (os error 16).'), { code: 'ETAPBUSY' }) });
  await assert.rejects(busy.controller.handle(act('PUT', '/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: 'tap0' })),
    (e: Error & { code: string }) => /Could not create the network device: .*resource busy/i.test(e.message) && e.code === 'ETAPBUSY');
  const full = (await busy.controller.handle({ kind: 'GetFullVmConfig' }) as { body: Record<string, unknown> }).body;
  assert.deepEqual(full['network-interfaces'], [], 'a refused interface is not kept');
});

test('InstanceStart passes interfaces and the MMDS interfaces to the builder; PATCH reaches the device and GET /vm/config', async () => {
  const { controller, built, fake } = setup();
  await controller.handle(act('PUT', '/boot-source', { kernel_image_path: '/k' }));
  await controller.handle(act('PUT', '/network-interfaces/eth0', {
    iface_id: 'eth0', host_dev_name: 'tap0', tx_rate_limiter: { bandwidth: { size: 1000, refill_time: 100 } },
  }));
  await controller.handle(act('PUT', '/mmds/config', { network_interfaces: ['eth0'], version: 'V2', ipv4_address: '169.254.170.2' }));
  await controller.handle(act('PUT', '/mmds', { latest: { 'meta-data': { 'ami-id': 'ami-1' } } }));
  await controller.handle({ kind: 'StartMicroVm' });
  assert.equal(built[0].networkInterfaces?.[0].hostDevName, 'tap0');
  assert.deepEqual(built[0].mmds?.interfaces, ['eth0']);
  assert.equal(built[0].mmds?.mmds.options.version, 'V2');
  assert.equal(built[0].mmds?.mmds.options.ipv4Address, '169.254.170.2');
  assert.deepEqual(built[0].mmds?.mmds.store.value, { latest: { 'meta-data': { 'ami-id': 'ami-1' } } });
  await controller.handle(act('PATCH', '/network-interfaces/eth0', { iface_id: 'eth0', tx_rate_limiter: { bandwidth: { size: 0, refill_time: 0 } } }));
  assert.ok(fake.calls.includes('update net eth0'));
  const full = (await controller.handle({ kind: 'GetFullVmConfig' }) as { body: Record<string, Array<Record<string, unknown>>> }).body;
  assert.equal(full['network-interfaces'][0].tx_rate_limiter, null, '{size:0} removed the limit');
  // the store stays editable after boot, and the guest's view is the same object
  await controller.handle(act('PATCH', '/mmds', { latest: { 'meta-data': { 'ami-id': null } } }));
  assert.deepEqual(built[0].mmds?.mmds.store.value, { latest: { 'meta-data': {} } });
});

test('MMDS data store: {} before any PUT, PATCH before PUT refused, over the limit 413 and unchanged; --metadata fills it', async () => {
  const { controller } = setup({ mmdsSizeLimit: 30 });
  assert.deepEqual(await controller.handle({ kind: 'GetMmds' }), { status: 200, body: {} });
  await assert.rejects(controller.handle(act('PATCH', '/mmds', { a: 1 })), /The MMDS data store is not initialized\.$/);
  await controller.handle(act('PUT', '/mmds', { a: 'x' }));
  await assert.rejects(controller.handle(act('PUT', '/mmds', { a: 'x'.repeat(40) })), (e: ApiError) => e.status === 413 && /doesn't fit/.test(e.message));
  await assert.rejects(controller.handle(act('PATCH', '/mmds', { b: 'y'.repeat(40) })), (e: ApiError) => e.status === 413);
  assert.deepEqual(await controller.handle({ kind: 'GetMmds' }), { status: 200, body: { a: 'x' } });
  const fromFile = setup({ metadata: { k: 'v' } });
  assert.deepEqual(await fromFile.controller.handle({ kind: 'GetMmds' }), { status: 200, body: { k: 'v' } });
});

test("mmds-config: Firecracker's messages for no interfaces and unknown ones", async () => {
  const { controller } = setup();
  // the body is refused while it is parsed, before the controller sees it
  assert.throws(() => act('PUT', '/mmds/config', { network_interfaces: [] }),
    /The list of network interface IDs that allow forwarding MMDS requests is empty\.$/);
  await assert.rejects(controller.handle(act('PUT', '/mmds/config', { network_interfaces: ['foo'] })),
    /The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface/);
  assert.throws(() => act('PUT', '/mmds/config', { network_interfaces: ['eth0'], ipv4_address: '1.1.1.1' }), /link-local/);
});
