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

test('the getting-started sequence boots the (fake) VM; errors are 400 with the message', async () => {
  const { socketPath, fake } = await start();
  assert.equal((await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: '/k' })).status, 204);
  assert.equal((await request(socketPath, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 256 })).status, 204);
  const bad = await request(socketPath, 'PUT', '/machine-config', { vcpu_count: 2 });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.json, { fault_message: 'machine-config: missing field `mem_size_mib`.' });
  assert.equal((await request(socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
  assert.deepEqual(fake.calls, ['start']);
  const again = await request(socketPath, 'PUT', '/actions', { action_type: 'InstanceStart' });
  assert.deepEqual(again.json, { fault_message: 'The requested operation is not supported after starting the microVM.' });
  assert.equal((await request(socketPath, 'PATCH', '/vm', { state: 'Paused' })).status, 204);
  assert.equal(((await request(socketPath, 'GET', '/')).json as { state: string }).state, 'Paused');
});

test('bodies larger than the limit get 413, declared or streamed; the server goes on', async () => {
  const { socketPath } = await start(undefined, 100);
  const big = JSON.stringify({ kernel_image_path: 'x'.repeat(200) });
  const declared = await request(socketPath, 'PUT', '/boot-source', big);
  assert.equal(declared.status, 413);
  assert.match((declared.json as { fault_message: string }).fault_message, /larger than the limit of 100/);
  const chunked = await raw(socketPath, `PUT /boot-source HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${(150).toString(16)}\r\n${'a'.repeat(150)}\r\n0\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 413 /);
  assert.match(chunked, /"fault_message":"Request payload with size >100 is larger than the limit of 100/);
  assert.equal((await request(socketPath, 'PUT', '/boot-source', { kernel_image_path: '/k' })).status, 204);
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
    (e: unknown) => e instanceof ApiSocketError && /another process is serving it/.test((e as Error).message));
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
