/** The controller with a fake VM: lifecycle rules, every action's effect, metrics, serial output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { VmmAction } from '../api/actions';
import { NOT_SUPPORTED_AFTER_START, NOT_SUPPORTED_BEFORE_START } from '../api/errors';
import { matchRoute, parseRequest } from '../api/router';
import { fakeVmm, SAMPLE_REQUESTS } from '../api/testing';
import { Logger } from '../logger/logger';
import { Metrics } from '../metrics/metrics';
import type { BuildOptions } from './builder';
import { VmmController } from './controller';
import { tempDir } from '../testing/temp-dir';

const tmp = tempDir('sparkler-controller-');
const devNull = fs.openSync('/dev/null', 'w');

function setup() {
  const fake = fakeVmm();
  const built: BuildOptions[] = [];
  const metrics = new Metrics();
  const logger = new Logger({ fd: devNull });
  const controller = new VmmController({
    instanceId: 'test-vm', vmmVersion: '9.9.9', logger, metrics,
    build: (opts) => { built.push(opts); return fake.vmm; }, checkBootSource: () => {},
  });
  return { controller, fake, built, metrics, logger };
}

const actionOf = (method: string, p: string, body?: unknown): VmmAction =>
  parseRequest(matchRoute(method, p), Buffer.from(body === undefined ? '' : JSON.stringify(body)));

const bootSource: VmmAction = { kind: 'ConfigureBootSource', config: { kernelImagePath: '/k' } };

async function rejects(p: Promise<unknown>, message: RegExp | string): Promise<void> {
  await assert.rejects(p, (e: unknown) => (typeof message === 'string' ? (e as Error).message === message : message.test((e as Error).message)));
}

test('GET / reports the state through the lifecycle; GET /version the version', async () => {
  const { controller } = setup();
  assert.deepEqual(await controller.handle({ kind: 'GetInstanceInfo' }), { status: 200, body: { id: 'test-vm', state: 'Not started', vmm_version: '9.9.9', app_name: 'Sparkler' } });
  assert.deepEqual(await controller.handle({ kind: 'GetVmmVersion' }), { status: 200, body: { firecracker_version: '9.9.9' } });
  await controller.handle(bootSource);
  assert.deepEqual(await controller.handle({ kind: 'StartMicroVm' }), { status: 204 });
  assert.equal(((await controller.handle({ kind: 'GetInstanceInfo' })) as { body: { state: string } }).body.state, 'Running');
  await controller.handle({ kind: 'Pause' });
  assert.equal(((await controller.handle({ kind: 'GetInstanceInfo' })) as { body: { state: string } }).body.state, 'Paused');
  await controller.handle({ kind: 'Resume' });
  assert.equal(controller.state, 'Running');
});

test('pre-boot-only actions are refused after start, post-boot-only before, with Firecracker wording', async () => {
  const { controller } = setup();
  const postBoot = ['SendCtrlAltDel', 'FlushMetrics', 'Pause', 'Resume', 'CreateSnapshot', 'UpdateBlockDevice', 'UpdateNetworkInterface', 'UpdatePmemDevice',
    'UpdateBalloon', 'UpdateBalloonStatistics', 'StartFreePageHinting', 'StopFreePageHinting', 'GetFreePageHintingStatus', 'GetBalloonStats',
    'UpdateMemoryHotplugSize', 'GetMemoryHotplugStatus'];
  const actions = SAMPLE_REQUESTS.map((r) => actionOf(r.method, r.path, r.body))
    .concat([{ kind: 'SendCtrlAltDel' }, { kind: 'Pause' }, { kind: 'StartMicroVm' }]);
  for (const a of actions.filter((x) => postBoot.includes(x.kind))) await rejects(controller.handle(a), NOT_SUPPORTED_BEFORE_START);
  await controller.handle(bootSource);
  await controller.handle({ kind: 'StartMicroVm' });
  const preBoot = ['ConfigureBootSource', 'UpdateMachineConfig', 'PutCpuConfig', 'ConfigureLogger', 'ConfigureMetrics', 'ConfigureSerial', 'InsertBlockDevice',
    'InsertNetworkDevice', 'InsertPmemDevice', 'SetVsockDevice', 'SetEntropyDevice', 'SetBalloonDevice', 'SetMmdsConfiguration', 'SetMemoryHotplugDevice',
    'LoadSnapshot', 'StartMicroVm'];
  const refused = actions.filter((x) => preBoot.includes(x.kind));
  assert.ok(refused.length >= preBoot.length);
  for (const a of refused) await rejects(controller.handle(a), NOT_SUPPORTED_AFTER_START);
});

test('device features that do not exist yet answer 400 saying so, after validation', async () => {
  const { controller } = setup();
  for (const [m, p, feature] of [['PUT', '/pmem/pm0', 'pmem'], ['PUT', '/hotplug/memory', 'Memory hotplug']] as const) {
    const sample = SAMPLE_REQUESTS.find((r) => r.method === m && r.path === p)!;
    await rejects(controller.handle(actionOf(m, p, sample.body)), new RegExp(`${feature}.*this feature is not available in this version of Sparkler yet`));
  }
  assert.deepEqual((await controller.handle({ kind: 'GetFullVmConfig' }) as { body: Record<string, unknown> }).body.vsock, null);
});

test('a snapshot load after boot-specific configuration is refused with Firecracker\'s sentence; logger and serial do not count', async () => {
  const load = actionOf('PUT', '/snapshot/load', { snapshot_path: path.join(tmp, 'none.snap'), mem_backend: { backend_type: 'File', backend_path: '/m' } });
  const uffd = actionOf('PUT', '/snapshot/load', { snapshot_path: path.join(tmp, 'none.snap'), mem_backend: { backend_type: 'Uffd', backend_path: '/s' } });
  const fresh = setup().controller;
  await fresh.handle(actionOf('PUT', '/serial', { serial_out_path: path.join(tmp, 'serial.out') }));
  await rejects(fresh.handle(load), /^Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to open snapshot file .*No such file or directory \(os error 2\)/);
  await rejects(fresh.handle(uffd), /^Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file/);
  const { controller } = setup();
  await controller.handle(actionOf('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 }));
  await rejects(controller.handle(load), /^Loading a microVM snapshot not allowed after configuring boot-specific resources\.$/);
});

test('configuration lands in GET /machine-config and GET /vm/config; InstanceStart passes it to the builder', async () => {
  const { controller, built } = setup();
  const disk = path.join(tmp, 'disk.img');
  fs.writeFileSync(disk, Buffer.alloc(4096));
  await controller.handle(actionOf('PUT', '/boot-source', { kernel_image_path: '/k', boot_args: 'console=ttyS0' }));
  await controller.handle(actionOf('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 }));
  await controller.handle(actionOf('PATCH', '/machine-config', { track_dirty_pages: true }));
  await controller.handle(actionOf('PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: disk, is_root_device: true, is_read_only: true }));
  await controller.handle(actionOf('PUT', '/entropy', {}));
  await controller.handle(actionOf('PUT', '/cpu-config', { msr_modifiers: [{ addr: '0x1a0', bitmap: `0b${'x'.repeat(63)}1` }] }));
  assert.deepEqual((await controller.handle({ kind: 'GetMachineConfig' }) as { body: unknown }).body,
    { vcpu_count: 2, mem_size_mib: 256, smt: false, track_dirty_pages: true, huge_pages: 'None' });
  const full = (await controller.handle({ kind: 'GetFullVmConfig' }) as { body: Record<string, unknown> }).body;
  assert.deepEqual(full['boot-source'], { kernel_image_path: '/k', boot_args: 'console=ttyS0', initrd_path: null });
  assert.equal((full.drives as unknown[]).length, 1);
  assert.deepEqual(full.entropy, { rate_limiter: null });
  await controller.handle({ kind: 'StartMicroVm' });
  assert.equal(built[0].machineConfig.vcpuCount, 2);
  assert.equal(built[0].drives?.[0].pathOnHost, disk);
  assert.deepEqual(built[0].entropy, {});
  assert.equal(built[0].cpuConfig?.msrModifiers[0].addr, 0x1a0);
});

test('a drive whose file is missing is refused at PUT; InstanceStart needs a boot source; a build failure is reported', async () => {
  const { controller } = setup();
  await rejects(controller.handle(actionOf('PUT', '/drives/d', { drive_id: 'd', path_on_host: '/nonexistent/d.img', is_root_device: false })), /drive `d`: .*\/nonexistent\/d\.img/);
  await rejects(controller.handle({ kind: 'StartMicroVm' }), /without a boot source/);
  const failing = new VmmController({ instanceId: 'x', vmmVersion: '1', logger: new Logger({ fd: devNull }), metrics: new Metrics(), checkBootSource: () => {}, build: () => { throw new Error('Cannot read the kernel image at /k: it does not exist.'); } });
  await failing.handle(bootSource);
  await rejects(failing.handle({ kind: 'StartMicroVm' }), /^Start microvm error: Cannot read the kernel image at \/k/);
  assert.equal(failing.state, 'Not started');
});

test('SendCtrlAltDel presses the keys on the i8042; pause and resume reach the VM', async () => {
  const { controller, fake } = setup();
  await controller.handle(bootSource);
  await controller.handle({ kind: 'StartMicroVm' });
  await controller.handle({ kind: 'SendCtrlAltDel' });
  await controller.handle({ kind: 'Pause' });
  await controller.handle({ kind: 'Resume' });
  assert.deepEqual(fake.calls, ['start', 'ctrl-alt-del', 'pause', 'resume']);
});

test('metrics: PUT /metrics once; lines at InstanceStart and FlushMetrics, with deltas', async () => {
  const { controller, fake, metrics } = setup();
  const file = path.join(tmp, 'metrics.json');
  await controller.handle({ kind: 'ConfigureMetrics', config: { metricsPath: file } });
  await rejects(controller.handle({ kind: 'ConfigureMetrics', config: { metricsPath: file } }), /Reinitialization of metrics not allowed/);
  await controller.handle(bootSource);
  await controller.handle({ kind: 'StartMicroVm' });
  metrics.api.record('PUT', 'actions', true, 10);
  (fake.vmm.exitDirections as { ioIn: number }).ioIn = 5;
  await controller.handle({ kind: 'FlushMetrics' });
  (fake.vmm.exitDirections as { ioIn: number }).ioIn = 7;
  await controller.handle({ kind: 'FlushMetrics' });
  metrics.stop();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 3);
  assert.deepEqual(lines.map((l) => l.vcpu.exit_io_in), [0, 5, 2]);
  assert.equal(lines[1].put_api_requests.actions_count, 1);
  assert.equal(lines[2].put_api_requests.actions_count, 0, 'counts restart after each line');
  assert.ok(typeof lines[0].utc_timestamp_ms === 'number' && 'uart' in lines[0]);
});

test('PUT /logger changes level and target; PUT /serial sends the console to a file, rate-limited', async () => {
  const { controller, built, logger, metrics } = setup();
  const log = path.join(tmp, 'vmm.log');
  await controller.handle(actionOf('PUT', '/logger', { log_path: log, level: 'debug', show_level: true }));
  logger.debug('hello from the test');
  assert.match(fs.readFileSync(log, 'utf8'), /\[test-vm:main:DEBUG\] hello from the test|\[anonymous-instance:main:DEBUG\] hello from the test/);
  const out = path.join(tmp, 'serial.out');
  await controller.handle(actionOf('PUT', '/serial', { serial_out_path: out, rate_limiter: { size: 10, refill_time: 100000 } }));
  await controller.handle(bootSource);
  await controller.handle({ kind: 'StartMicroVm' });
  built[0].serialOutput(Buffer.from('0123456789abcdef'));
  assert.equal(fs.readFileSync(out, 'utf8'), '0123456789');
  const line = metrics.snapshot() as Record<string, Record<string, number>>;
  assert.equal(line.uart_rate_limiter.rate_limiter_dropped_bytes, 6);
  metrics.stop();
});
