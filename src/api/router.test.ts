import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchRoute, parseRequest } from './router';
import { ROUTES } from './routes';
import { SAMPLE_REQUESTS } from './testing';
import { ApiError } from './errors';

function parse(method: string, path: string, body?: unknown) {
  const raw = body === undefined ? Buffer.alloc(0) : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return parseRequest(matchRoute(method, path), raw);
}

function fails(method: string, path: string, body: unknown, message: RegExp): void {
  assert.throws(() => parse(method, path, body), (e: unknown) => e instanceof Error && message.test(e.message) && (!(e instanceof ApiError) || e.status === 400), `${method} ${path}`);
}

const EXPECTED_KIND: Record<string, string> = {
  'GET /': 'GetInstanceInfo', 'GET /version': 'GetVmmVersion', 'GET /vm/config': 'GetFullVmConfig',
  'GET /machine-config': 'GetMachineConfig', 'PUT /machine-config': 'UpdateMachineConfig', 'PATCH /machine-config': 'UpdateMachineConfig',
  'PUT /boot-source': 'ConfigureBootSource', 'PUT /cpu-config': 'PutCpuConfig', 'PUT /logger': 'ConfigureLogger', 'PUT /metrics': 'ConfigureMetrics', 'PUT /serial': 'ConfigureSerial',
  'PUT /actions': 'FlushMetrics', 'PATCH /vm': 'Resume', 'PUT /drives/rootfs': 'InsertBlockDevice', 'PATCH /drives/rootfs': 'UpdateBlockDevice',
  'PUT /network-interfaces/eth0': 'InsertNetworkDevice', 'PATCH /network-interfaces/eth0': 'UpdateNetworkInterface',
  'PUT /pmem/pm0': 'InsertPmemDevice', 'PATCH /pmem/pm0': 'UpdatePmemDevice', 'PUT /vsock': 'SetVsockDevice', 'PUT /entropy': 'SetEntropyDevice',
  'GET /balloon': 'GetBalloonConfig', 'PUT /balloon': 'SetBalloonDevice', 'PATCH /balloon': 'UpdateBalloon',
  'GET /balloon/statistics': 'GetBalloonStats', 'PATCH /balloon/statistics': 'UpdateBalloonStatistics',
  'PATCH /balloon/hinting/start': 'StartFreePageHinting', 'GET /balloon/hinting/status': 'GetFreePageHintingStatus',
  'PATCH /balloon/hinting/stop': 'StopFreePageHinting', 'GET /mmds': 'GetMmds', 'PUT /mmds': 'PutMmds', 'PATCH /mmds': 'PatchMmds',
  'PUT /mmds/config': 'SetMmdsConfiguration', 'GET /hotplug/memory': 'GetMemoryHotplugStatus', 'PUT /hotplug/memory': 'SetMemoryHotplugDevice',
  'PATCH /hotplug/memory': 'UpdateMemoryHotplugSize', 'PUT /snapshot/create': 'CreateSnapshot', 'PUT /snapshot/load': 'LoadSnapshot',
};

test('every sample request parses to its action', () => {
  for (const r of SAMPLE_REQUESTS) {
    assert.equal(parse(r.method, r.path, r.body).kind, EXPECTED_KIND[`${r.method} ${r.path}`], `${r.method} ${r.path}`);
  }
});

test('the samples cover every route and method of the table', () => {
  const routed = ROUTES.flatMap((r) => (['GET', 'PUT', 'PATCH'] as const).filter((m) => r[m]).map((m) => `${m} ${r.path}`)).sort();
  const sampled = SAMPLE_REQUESTS.map((r) => `${r.method} ${r.path.replace('/rootfs', '/{drive_id}').replace('/eth0', '/{iface_id}').replace('/pm0', '/{id}')}`).sort();
  assert.deepEqual([...new Set(sampled)], routed);
});

test('actions map to their kinds; PATCH /vm Paused pauses', () => {
  assert.equal(parse('PUT', '/actions', { action_type: 'InstanceStart' }).kind, 'StartMicroVm');
  assert.equal(parse('PUT', '/actions', { action_type: 'SendCtrlAltDel' }).kind, 'SendCtrlAltDel');
  assert.equal(parse('PATCH', '/vm', { state: 'Paused' }).kind, 'Pause');
  assert.deepEqual(parse('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 }), {
    kind: 'UpdateMachineConfig', replace: true, update: { vcpuCount: 2, memSizeMib: 256, smt: false, trackDirtyPages: false, hugePages: 'None' },
  });
  assert.deepEqual(parse('PATCH', '/machine-config', { vcpu_count: 2 }), { kind: 'UpdateMachineConfig', replace: false, update: { vcpuCount: 2 } });
  assert.equal(parse('GET', '/machine-config/').kind, 'GetMachineConfig', 'a trailing slash is tolerated');
  assert.equal(parse('PATCH', '/balloon/hinting/start').kind, 'StartFreePageHinting', 'the hinting body is optional');
});

test('unknown paths and methods are 400 naming both', () => {
  fails('GET', '/nothing', undefined, /^Invalid request method and\/or path: GET \/nothing\.$/);
  fails('POST', '/actions', { action_type: 'InstanceStart' }, /Invalid request method and\/or path: POST \/actions\./);
  fails('DELETE', '/drives/a', undefined, /DELETE \/drives\/a/);
  fails('PUT', '/version', {}, /PUT \/version/);
  fails('GET', '/vm', undefined, /GET \/vm\./);
  fails('PUT', '/boot-source/extra', {}, /PUT \/boot-source\/extra/);
  fails('GET', '/%E0%A4%A', undefined, /Invalid request method and\/or path/);
});

test('bodies: GET must have none, PUT/PATCH must have one, it must be JSON', () => {
  fails('GET', '/', {}, /^GET request cannot have a body\.$/);
  fails('PUT', '/boot-source', undefined, /^Empty PUT request\.$/);
  fails('PATCH', '/machine-config', undefined, /^Empty PATCH request\.$/);
  fails('PUT', '/boot-source', '{"kernel_image_path": ', /An error occurred when deserializing the json body of a request: .*JSON/);
  fails('PUT', '/boot-source', '[]', /^An error occurred when deserializing the json body of a request: invalid type: sequence, expected a JSON object\.$/);
  fails('PUT', '/mmds', '"text"', /mmds: expected a JSON object/);
  assert.throws(() => parseRequest(matchRoute('PUT', '/logger'), Buffer.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
});

test('IDs: in the path, checked; in the body, must match the path', () => {
  fails('PUT', '/drives/', { drive_id: 'a', path_on_host: '/a', is_root_device: false }, /^The ID cannot be empty\.$/);
  fails('PATCH', '/network-interfaces', { iface_id: 'a' }, /The ID cannot be empty/);
  fails('PUT', '/drives/a.b', { drive_id: 'a.b', path_on_host: '/a', is_root_device: false }, /API Resource IDs can only contain alphanumeric characters and underscores/);
  fails('PUT', '/drives/a', { drive_id: 'b', path_on_host: '/a', is_root_device: false }, /^The id from the path does not match the id from the body!$/);
  fails('PATCH', '/drives/a', { drive_id: 'b' }, /does not match/);
  fails('PUT', '/network-interfaces/a', { iface_id: 'b', host_dev_name: 't' }, /does not match/);
  fails('PATCH', '/network-interfaces/a', { iface_id: 'b' }, /does not match/);
  fails('PUT', '/pmem/a', { id: 'b', path_on_host: '/p' }, /does not match/);
  fails('PATCH', '/pmem/a', { id: 'b' }, /does not match/);
  assert.equal(parse('PUT', '/drives/r%C3%A9seau', { drive_id: 'réseau', path_on_host: '/a', is_root_device: false }).kind, 'InsertBlockDevice', 'Unicode letters are alphanumeric');
});

test('body validation errors reach the caller with the field named', () => {
  fails('PUT', '/machine-config', { vcpu_count: 1 }, /^An error occurred when deserializing the json body of a request: missing field `mem_size_mib` at line 1 column 16\.$/);
  fails('PUT', '/actions', { action_type: 'Reboot' }, /unknown variant `Reboot`, expected one of `FlushMetrics`, `InstanceStart`, `SendCtrlAltDel`/);
  fails('PATCH', '/vm', { state: 'Running' }, /unknown variant `Running`, expected `Paused` or `Resumed`/);
  fails('PUT', '/drives/a', { drive_id: 'a', path_on_host: '/a', is_root_device: false, io_engine: 'Uring' }, /unknown variant `Uring`, expected `Sync` or `Async` \(at `io_engine`\)\./);
  fails('PUT', '/drives/a', { drive_id: 'a', path_on_host: '/a', is_root_device: false, rate_limiter: { ops: { size: 1 } } }, /missing field `refill_time` \(at `rate_limiter\.ops`\)\./);
  fails('PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 1 }, /^machine-config: field `vcpu_count` is 33, but must be between 1 and 32\.$/);
  fails('PATCH', '/balloon/hinting/stop', '[1]', /balloon\/hinting\/stop: expected a JSON object/);
});
