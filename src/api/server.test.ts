/** The HTTP layer over a real Unix socket, with the real controller and a fake VM. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Logger } from '../logger/logger';
import { Metrics } from '../metrics/metrics';
import { VmmController } from '../vmm/controller';
import type { VmmAction, VmmResponse } from './actions';
import { ApiServer } from './server';
import { ApiSocketError } from './socket-file';
import { fakeVmm, request, SAMPLE_REQUESTS } from './testing';
import { tempDir } from '../testing/temp-dir';

const dir = tempDir('sparkler-api-');
const quiet = new Logger({ fd: fs.openSync('/dev/null', 'w') });
let n = 0;
const servers: ApiServer[] = [];
after(() => Promise.all(servers.map((s) => s.close())));

async function start(controller?: { handle(a: VmmAction): Promise<VmmResponse> }, maxPayload = 51200) {
  const socketPath = path.join(dir, `api-${n++}.sock`);
  const fake = fakeVmm();
  const c = controller ?? new VmmController({ instanceId: 'srv', vmmVersion: '1.0.0', logger: quiet, metrics: new Metrics(), build: () => fake.vmm });
  const server = await ApiServer.listen({ socketPath, maxPayload, controller: c, logger: quiet, metrics: new Metrics() });
  servers.push(server);
  return { socketPath, server, fake };
}

/** Writes raw bytes on a fresh connection and returns everything the server sends back. */
function raw(socketPath: string, bytes: string | Buffer, halfClose = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    const chunks: Buffer[] = [];
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.on('error', reject);
    s.write(bytes, () => { if (halfClose) s.end(); });
  });
}

test('every route answers: 200 with JSON on GETs that exist, 204 on success, 400 with a fault_message otherwise', async () => {
  const { socketPath } = await start();
  for (const r of SAMPLE_REQUESTS) {
    const res = await request(socketPath, r.method, r.path, r.body);
    assert.ok([200, 204, 400].includes(res.status), `${r.method} ${r.path}: ${res.status}`);
    if (res.status === 200) assert.equal(res.headers['content-type'], 'application/json');
    if (res.status === 204) assert.equal(res.text, '');
    if (res.status === 400) assert.equal(typeof (res.json as { fault_message?: unknown }).fault_message, 'string', `${r.method} ${r.path}`);
  }
  assert.deepEqual((await request(socketPath, 'GET', '/')).json, { id: 'srv', state: 'Not started', vmm_version: '1.0.0', app_name: 'Sparkler' });
  assert.deepEqual((await request(socketPath, 'GET', '/version')).json, { firecracker_version: '1.0.0' });
  assert.deepEqual((await request(socketPath, 'GET', '/machine-config')).json, { vcpu_count: 1, mem_size_mib: 64, smt: false, track_dirty_pages: false, huge_pages: 'None' });
});

const kernel = path.join(dir, 'vmlinux');
fs.writeFileSync(kernel, 'not really a kernel');

test('the getting-started sequence boots the (fake) VM; errors are 400 with the message', async () => {
  const { socketPath, fake } = await start();
  assert.equal((await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: kernel })).status, 204);
  assert.equal((await request(socketPath, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 })).status, 204);
  const bad = await request(socketPath, 'PUT', '/machine-config', { vcpu_count: 2 });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { fault_message: 'An error occurred when deserializing the json body of a request: missing field `mem_size_mib` at line 1 column 16.' });
  assert.equal(bad.headers['x-sparkler-error-code'], 'EBODY');
  assert.equal((await request(socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
  assert.deepEqual(fake.calls, ['start']);
  const again = await request(socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' });
  assert.deepEqual(again.json, { fault_message: 'The requested operation is not supported after starting the microVM.' });
  assert.equal(again.headers['x-sparkler-error-code'], 'ELIFECYCLE');
  assert.equal((await request(socketPath, 'PATCH', '/vm', { state: 'Paused' })).status, 204);
  assert.equal(((await request(socketPath, 'GET', '/')).json as { state: string }).state, 'Paused');
});

test('bodies larger than the limit get 400 with Firecracker\'s sentence, declared or streamed; the server goes on', async () => {
  const { socketPath } = await start(undefined, 100);
  const big = JSON.stringify({ kernel_image_path: 'x'.repeat(200) });
  const declared = await request(socketPath, 'PUT', '/boot-source', big);
  assert.equal(declared.status, 400);
  assert.equal(declared.headers['x-sparkler-error-code'], 'EPAYLOAD');
  const sentence = `Request payload with size ${Buffer.byteLength(big)} is larger than the limit of 100 allowed by server.\nAll previous unanswered requests will be dropped.`;
  assert.deepEqual(declared.json, { error: sentence, fault_message: sentence });
  const chunked = await raw(socketPath, `PUT /boot-source HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(150).toString(16)}\r\n${'a'.repeat(150)}\r\n0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 400 /);
  assert.match(chunked, /"fault_message":"Request payload with size 150 is larger than the limit of 100 allowed by server\./);
  assert.equal((await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: kernel })).status, 204);
});

test('PUT /boot-source opens the kernel and initrd, answering Firecracker\'s phrases', async () => {
  const { socketPath } = await start();
  const missing = await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: 'foo.bar' });
  assert.equal(missing.status, 400);
  assert.equal(missing.headers['x-sparkler-error-code'], 'EBOOTSOURCE');
  assert.match((missing.json as { fault_message: string }).fault_message, /^Boot source error: The kernel file cannot be opened: No such file or directory \(os error 2\) \(kernel_image_path "foo\.bar"\)\.$/);
  const initrd = await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: dir });
  assert.equal(initrd.status, 204, 'a directory opens read-only (the loader says later that it is one)');
  const noInitrd = await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: kernel, initrd_path: '/nonexistent/initrd' });
  assert.match((noInitrd.json as { fault_message: string }).fault_message, /The initrd file cannot be opened: No such file or directory \(os error 2\)/);
  assert.equal(((await request(socketPath, 'GET', '/vm/config')).json as { 'boot-source': { initrd_path: string } })['boot-source'].initrd_path, dir, 'a refused PUT changes nothing');
});

test('Firecracker\'s deserialization phrases, and a stable code on every error', async () => {
  const { socketPath } = await start();
  const cases: Array<[string, string, unknown, RegExp, string]> = [
    ['PUT', '/machine-config', '{"mem_size_mib": 128}', /missing field `vcpu_count` at line 1 column 21\./, 'EBODY'],
    ['PUT', '/machine-config', '{"vcpu_count": 2}', /missing field `mem_size_mib` at line 1 column 17\./, 'EBODY'],
    ['PUT', '/machine-config', { vcpu_count: '-2', mem_size_mib: 128 }, /^An error occurred when deserializing the json body of a request: invalid type: string "-2"/, 'EBODY'],
    ['PUT', '/machine-config', '{"vcpu_count": 1, "mem_size_mib": 18446744073709551616}', /error occurred when deserializing the json body of a request: invalid type/, 'EBODY'],
    ['PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, smt: 'random_string' }, /invalid type: string "random_string", expected a boolean/, 'EBODY'],
    ['PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, cpu_template: 'random_string' }, /unknown variant `random_string`, expected one of `C3`/, 'EBODY'],
    ['PATCH', '/machine-config', { mem_size_mib: 0 }, /The memory size \(MiB\) is either 0, or not a multiple of the configured page size\./, 'ECONFIG'],
    ['PUT', '/mmds/config', { network_interfaces: [], version: 'foo' }, /An error occurred when deserializing the json body of a request: unknown variant `foo`, expected `V1` or `V2`/, 'EBODY'],
    ['PUT', '/pmem/p', { id: 'p' }, /An error occurred when deserializing the json body of a request: missing field `path_on_host`/, 'EBODY'],
    ['PUT', '/snapshot/load', { snapshot_path: 's', mem_backend: { backend_type: 'foo', backend_path: 'p' } }, /unknown variant `foo`, expected `File` or `Uffd`/, 'EBODY'],
    ['PUT', '/snapshot/load', { snapshot_path: 's' }, /missing field: either `mem_backend` or `mem_file_path` is required/, 'EBODY'],
    ['PUT', '/snapshot/load', { snapshot_path: 's', mem_file_path: 'm', mem_backend: { backend_type: 'File', backend_path: 'p' } }, /too many fields: either `mem_backend` or `mem_file_path` exclusively is required\./, 'EBODY'],
    ['PUT', '/drives/a', { drive_id: 'a', path_on_host: 'foo.bar', is_root_device: false }, /No such file or directory/, 'ECONFIG'],
    ['PATCH', '/boot-source', { kernel_image_path: 'k' }, /^Invalid request method and\/or path: PATCH \/boot-source\.$/, 'EROUTE'],
    ['PUT', '/drives/a.b', { drive_id: 'a.b', path_on_host: 'x', is_root_device: false }, /alphanumeric characters and underscores/, 'EID'],
    ['PATCH', '/vm', { state: 'Paused' }, /not supported before starting the microVM/, 'ELIFECYCLE'],
    ['PUT', '/pmem/pm0', { id: 'pm0', path_on_host: '/p' }, /not available in this version of Sparkler/, 'EFEATURE'],
  ];
  for (const [method, p, body, message, code] of cases) {
    const res = await request(socketPath, method, p, body);
    assert.equal(res.status, 400, `${method} ${p} ${JSON.stringify(body)}`);
    assert.match((res.json as { fault_message: string }).fault_message, message, `${method} ${p} ${JSON.stringify(body)}`);
    assert.equal(res.headers['x-sparkler-error-code'], code, `${method} ${p} ${JSON.stringify(body)}`);
  }
  assert.equal((await request(socketPath, 'GET', '/')).headers['x-sparkler-error-code'], undefined, 'success has no error code');
});

test('Deprecation: true where Firecracker sends it, success or not; counted in deprecated_api', async () => {
  const metrics = new Metrics();
  const socketPath = path.join(dir, `api-${n++}.sock`);
  const fake = fakeVmm();
  const controller = new VmmController({ instanceId: 'dep', vmmVersion: '1', logger: quiet, metrics: new Metrics(), build: () => fake.vmm });
  servers.push(await ApiServer.listen({ socketPath, maxPayload: 51200, controller, logger: quiet, metrics }));
  const deprecated = async (method: string, p: string, body: unknown) => (await request(socketPath, method, p, body)).headers.deprecation;
  assert.equal(await deprecated('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, cpu_template: 'None' }), 'true');
  assert.equal(await deprecated('PATCH', '/machine-config', { cpu_template: 'None' }), 'true');
  assert.equal(await deprecated('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 }), undefined);
  assert.equal(await deprecated('PUT', '/mmds/config', { network_interfaces: ['eth0'] }), 'true', 'V1 by default');
  assert.equal(await deprecated('PUT', '/mmds/config', { network_interfaces: ['eth0'], version: 'V1' }), 'true');
  assert.equal(await deprecated('PUT', '/mmds/config', { network_interfaces: ['eth0'], version: 'V2' }), undefined);
  assert.equal(await deprecated('PUT', '/vsock', { guest_cid: 3, uds_path: 'v', vsock_id: 'v' }), 'true');
  assert.equal(await deprecated('PUT', '/snapshot/load', { snapshot_path: 's', mem_file_path: 'm' }), 'true');
  assert.equal(await deprecated('PUT', '/snapshot/load', { snapshot_path: 's', mem_backend: { backend_type: 'File', backend_path: 'm' } }), undefined);
  assert.deepEqual(metrics.api.takeDeltas().deprecated_api, { deprecated_http_api_calls: 6 });
});

test('at Info, requests are logged in Firecracker\'s words, without the Debug duration lines', async () => {
  const logFile = path.join(dir, 'info.log');
  const socketPath = path.join(dir, `api-${n++}.sock`);
  const controller = new VmmController({ instanceId: 'inf', vmmVersion: '1', logger: quiet, metrics: new Metrics(), build: () => fakeVmm().vmm });
  servers.push(await ApiServer.listen({ socketPath, maxPayload: 51200, controller, logger: new Logger({ fd: fs.openSync(logFile, 'w'), level: 'Info' }), metrics: new Metrics() }));
  await request(socketPath, 'PATCH', '/machine-config', { vcpu_count: 2 });
  const text = fs.readFileSync(logFile, 'utf8');
  assert.match(text, /\] The API server received a Patch request on "\/machine-config" with body "\{\\"vcpu_count\\":2\}"\.\n/);
  assert.doesNotMatch(text, /Total previous API call duration/);
});

test('at Debug, every request line is followed by its duration line, in Firecracker\'s words; errors are logged as Firecracker logs them', async () => {
  const logFile = path.join(dir, 'debug.log');
  const logger = new Logger({ fd: fs.openSync(logFile, 'w'), level: 'Debug' });
  const socketPath = path.join(dir, `api-${n++}.sock`);
  const fake = fakeVmm();
  const controller = new VmmController({ instanceId: 'dbg', vmmVersion: '1', logger: quiet, metrics: new Metrics(), build: () => fake.vmm });
  servers.push(await ApiServer.listen({ socketPath, maxPayload: 51200, controller, logger, metrics: new Metrics() }));
  await request(socketPath, 'PUT', '/machine-config', '{"vcpu_count": 1, "mem_size_mib": 64}');
  await request(socketPath, 'GET', '/machine-config');
  await request(socketPath, 'PUT', '/mmds', { secret: 'x' });
  await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: 'foo.bar' });
  const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => l.replace(/^\S+ \[dbg:main\] /, '').replace(/^\S+ \[[^\]]*\] /, ''));
  const requests = lines.filter((l) => l.startsWith('The API server received'));
  assert.deepEqual(requests, [
    'The API server received a Put request on "/machine-config" with body "{\\"vcpu_count\\": 1, \\"mem_size_mib\\": 64}".',
    'The API server received a Get request on "/machine-config".',
    'The API server received a Put request on "/mmds".',
    'The API server received a Put request on "/boot-source" with body "{\\"kernel_image_path\\":\\"foo.bar\\"}".',
  ]);
  for (let i = 0, pending = false; i < lines.length; i++) {
    if (lines[i].startsWith('The API server received')) {
      assert.equal(pending, false, `a request line before the previous one's duration: ${lines[i]}`);
      pending = true;
    } else if (/^Total previous API call duration: \d+ us\.$/.test(lines[i])) {
      pending = false;
    }
    if (i === lines.length - 1) assert.equal(pending, false, 'the last request has its duration line');
  }
  assert.ok(lines.includes('Received Error. Status code: 400 Bad Request. Message: Boot source error: The kernel file cannot be opened: No such file or directory (os error 2) (kernel_image_path "foo.bar"). (EBOOTSOURCE)'), lines.join('\n'));
});

test('invalid HTTP is answered with 400 and a fault_message', async () => {
  const { socketPath } = await start();
  for (const junk of ['GARBAGE\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n', 'PUT /actions HTTP/1.1\r\nContent-Length: abc\r\n\r\n', '\x00\x01\x02\r\n\r\n']) {
    const answer = await raw(socketPath, junk);
    assert.match(answer, /^HTTP\/1\.1 400 /, JSON.stringify(junk));
    assert.match(answer, /\{"fault_message":"Invalid HTTP request: .+"\}$/, JSON.stringify(junk));
  }
  assert.equal((await request(socketPath, 'GET', '/')).status, 200);
});

test('keep-alive: many requests on one connection, including pipelined ones', async () => {
  const { socketPath } = await start();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < 20; i++) {
    const res = await request(socketPath, 'PATCH', '/machine-config', { mem_size_mib: 64 + i }, agent);
    assert.equal(res.status, 204);
  }
  agent.destroy();
  const req = (i: number) => `PATCH /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: ${JSON.stringify({ mem_size_mib: i }).length}\r\n\r\n${JSON.stringify({ mem_size_mib: i })}`;
  const pipelined = await raw(socketPath, req(100) + req(101) + `GET /machine-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, false);
  assert.equal(pipelined.match(/HTTP\/1\.1 204/g)?.length, 2);
  assert.match(pipelined, /"mem_size_mib":101/, 'pipelined requests apply in order');
});

test('the controller sees one request at a time, in arrival order', async () => {
  const log: string[] = [];
  let active = 0;
  const slow = {
    async handle(a: VmmAction): Promise<VmmResponse> {
      active++;
      assert.equal(active, 1, 'two requests overlapped in the controller');
      log.push(`start ${JSON.stringify(a)}`);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      return { status: 204 };
    },
  };
  const { socketPath } = await start(slow);
  const sent = Array.from({ length: 20 }, (_, i) => ({ mem_size_mib: 100 + i }));
  const answers: Promise<unknown>[] = [];
  for (const body of sent) {
    answers.push(request(socketPath, 'PATCH', '/machine-config', body, false));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(answers);
  assert.deepEqual(log.map((l) => JSON.parse(l.slice(6)).update.memSizeMib), sent.map((b) => b.mem_size_mib));
});

test('a stale socket file is replaced; a served one, or a non-socket file, is refused', async () => {
  const { socketPath } = await start();
  await assert.rejects(ApiServer.listen({ socketPath, maxPayload: 10, controller: { handle: async () => ({ status: 204 }) }, logger: quiet }),
    (e: unknown) => e instanceof ApiSocketError && /^Failed to open the API socket at: .*\. Check that it is not already used: another process is serving it/.test((e as Error).message));
  const stale = path.join(dir, 'stale.sock');
  const old = net.createServer().listen(stale);
  await new Promise((r) => old.once('listening', r));
  // Closing a listening server removes its file; leave a real stale socket by binding from a child.
  await new Promise<void>((resolve) => old.close(() => resolve()));
  const child = require('node:child_process').spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`]);
  assert.equal(child.status, 0);
  assert.ok(fs.existsSync(stale), 'the child left its socket file behind');
  const s = await ApiServer.listen({ socketPath: stale, maxPayload: 10, controller: { handle: async () => ({ status: 204 }) }, logger: quiet });
  servers.push(s);
  assert.equal((await request(stale, 'GET', '/')).status, 204);
  const file = path.join(dir, 'regular');
  fs.writeFileSync(file, 'x');
  await assert.rejects(ApiServer.listen({ socketPath: file, maxPayload: 10, controller: { handle: async () => ({ status: 204 }) }, logger: quiet }), /not a socket is in the way/);
});
