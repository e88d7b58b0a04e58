/** The balloon API through the controller: Firecracker's pre/post-boot rules and phrases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { VmmAction } from '../api/actions';
import { NOT_SUPPORTED_BEFORE_START } from '../api/errors';
import { matchRoute, parseRequest } from '../api/router';
import { fakeVmm } from '../api/testing';
import { VirtioBalloon } from '../devices/virtio/balloon/device';
import { Logger } from '../logger/logger';
import { Metrics } from '../metrics/metrics';
import { FakeClock } from '../ratelimit/fake-clock';
import type { BuildOptions } from './builder';
import { VmmController } from './controller';

const devNull = fs.openSync('/dev/null', 'w');

function setup() {
  const fake = fakeVmm();
  const built: BuildOptions[] = [];
  let balloon: VirtioBalloon | undefined;
  (fake.vmm.devices as unknown as { find: (type: string, id: string) => unknown }).find = (type, id) =>
    (type === 'balloon' && id === 'balloon' && balloon ? { created: { device: balloon } } : undefined);
  const controller = new VmmController({
    instanceId: 'b', vmmVersion: '1', logger: new Logger({ fd: devNull }), metrics: new Metrics(), checkBootSource: () => {},
    build: (opts) => {
      built.push(opts);
      if (opts.balloon) balloon = new VirtioBalloon({ ...opts.balloon, discard: () => 0, timers: new FakeClock() });
      return fake.vmm;
    },
  });
  const call = (method: string, path: string, body?: unknown) =>
    controller.handle(parseRequest(matchRoute(method, path), Buffer.from(body === undefined ? '' : JSON.stringify(body))));
  const boot = async () => {
    await controller.handle({ kind: 'ConfigureBootSource', config: { kernelImagePath: '/k' } } as VmmAction);
    await controller.handle({ kind: 'StartMicroVm' });
  };
  return { controller, call, boot, built, balloon: () => balloon! };
}

async function rejects(p: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => message.test((e as Error).message));
}

test('before boot: PUT overwrites, GET answers the config, PATCH is refused, a balloon larger than RAM is refused', async () => {
  const { call } = setup();
  await call('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 256 });
  await rejects(call('GET', '/balloon'), /^Balloon config error: No balloon device found\.$/);
  await rejects(call('PATCH', '/balloon', { amount_mib: 1 }), new RegExp(`^${NOT_SUPPORTED_BEFORE_START}$`));
  assert.equal((await call('PUT', '/balloon', { amount_mib: 1, deflate_on_oom: true })).status, 204);
  assert.equal((await call('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 5 })).status, 204);
  assert.deepEqual((await call('GET', '/balloon')), { status: 200, body: {
    amount_mib: 0, deflate_on_oom: false, stats_polling_interval_s: 5, free_page_hinting: false, free_page_reporting: false } });
  await rejects(call('PUT', '/balloon', { amount_mib: 1024, deflate_on_oom: true }), /larger than the guest memory \(256 MiB\)/);
  for (const p of ['/balloon/statistics', '/balloon/hinting/status']) await rejects(call('GET', p), new RegExp(NOT_SUPPORTED_BEFORE_START));
});

test('after boot: PATCH changes the target within RAM; statistics and their interval follow Firecracker', async () => {
  const { call, boot, built, balloon } = setup();
  await call('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 256 });
  await call('PUT', '/balloon', { amount_mib: 1, deflate_on_oom: true, stats_polling_interval_s: 1 });
  await boot();
  assert.equal(built[0].balloon?.amountMib, 1);
  assert.equal((await call('PATCH', '/balloon', { amount_mib: 4 })).status, 204);
  assert.equal((await call('GET', '/balloon') as { body: { amount_mib: number } }).body.amount_mib, 4);
  await rejects(call('PATCH', '/balloon', { amount_mib: 300 }), /^Balloon update error: Amount of pages requested is larger than the guest memory/);
  await rejects(call('PATCH', '/balloon', { amount_mib: 33554432 }), /^Balloon update error: /);
  assert.equal((await call('PATCH', '/balloon/statistics', { stats_polling_interval_s: 5 })).status, 204);
  await rejects(call('PATCH', '/balloon/statistics', { stats_polling_interval_s: 0 }), /^Balloon update error: Statistics cannot be enabled\/disabled after activation\.$/);
  const stats = await call('GET', '/balloon/statistics');
  assert.deepEqual(stats, { status: 200, body: { target_pages: 1024, actual_pages: 0, target_mib: 4, actual_mib: 0 } });
  assert.equal(balloon().config.statsPollingIntervalS, 5);
  const vmConfig = (await call('GET', '/vm/config')) as { body: { balloon: { amount_mib: number; stats_polling_interval_s: number } } };
  assert.deepEqual([vmConfig.body.balloon.amount_mib, vmConfig.body.balloon.stats_polling_interval_s], [4, 5]);
  await rejects(call('PATCH', '/balloon/hinting/start', {}), /^Balloon update error: Attempting to use hinting when not enabled\.$/);
  await rejects(call('GET', '/balloon/hinting/status'), /hinting when not enabled/);
});

test('after boot without a balloon every balloon action says there is none', async () => {
  const { call, boot } = setup();
  await boot();
  await rejects(call('PATCH', '/balloon', { amount_mib: 1 }), /^Balloon update error: No balloon device found\.$/);
  await rejects(call('GET', '/balloon'), /^Balloon config error: No balloon device found\.$/);
  await rejects(call('GET', '/balloon/statistics'), /No balloon device found/);
});

test('statistics disabled: GET /balloon/statistics is refused with a sentence', async () => {
  const { call, boot } = setup();
  await call('PUT', '/balloon', { amount_mib: 0, deflate_on_oom: false });
  await boot();
  await rejects(call('GET', '/balloon/statistics'), /^Balloon update error: Statistics are not enabled for the balloon device\.$/);
});
