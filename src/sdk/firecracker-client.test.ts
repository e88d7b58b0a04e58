import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { ROUTES } from '../api/routes';
import { tempDir } from '../testing/temp-dir';
import { ApiCallError } from './errors';
import { FirecrackerClient } from './firecracker-client';

const dir = tempDir('sparkler-fcclient-');

/** A server that records each request and answers from `answer`. */
async function recorder(answer: (method: string, url: string) => { status: number; body?: unknown; code?: string }) {
  const seen: Array<{ method: string; url: string; body: unknown }> = [];
  const sock = path.join(dir, `api-${seen.length}-${Math.random().toString(36).slice(2)}.sock`);
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const text = Buffer.concat(parts).toString();
      seen.push({ method: req.method!, url: req.url!, body: text ? JSON.parse(text) : undefined });
      const a = answer(req.method!, req.url!);
      res.writeHead(a.status, { 'Content-Type': 'application/json', ...(a.code ? { 'X-Sparkler-Error-Code': a.code } : {}) });
      res.end(a.body === undefined ? '' : JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return { sock, seen, close: () => server.close() };
}

test('the client has a method for every path and method of the API', async () => {
  const srv = await recorder(() => ({ status: 204 }));
  const c = new FirecrackerClient(srv.sock);
  const rl = { bandwidth: { size: 1, refill_time: 1 } };
  await c.describeInstance(); await c.getVersion(); await c.getVmConfig(); await c.startInstance(); await c.pause();
  await c.putBootSource({ kernel_image_path: '/k' }); await c.getMachineConfig(); await c.putMachineConfig({ vcpu_count: 1, mem_size_mib: 64 });
  await c.patchMachineConfig({ vcpu_count: 2 }); await c.putCpuConfig({}); await c.putLogger({ level: 'Info' }); await c.putMetrics({ metrics_path: '/m' });
  await c.putSerial({}); await c.putDrive({ drive_id: 'a b', is_root_device: false }); await c.patchDrive({ drive_id: 'a b', rate_limiter: rl });
  await c.putNetworkInterface({ iface_id: 'eth0', host_dev_name: 'tap0' }); await c.patchNetworkInterface({ iface_id: 'eth0' });
  await c.putPmem({ id: 'p', path_on_host: '/p' }); await c.patchPmem({ id: 'p' }); await c.putVsock({ guest_cid: 3, uds_path: '/v' }); await c.putEntropy();
  await c.getBalloon(); await c.putBalloon({ amount_mib: 1, deflate_on_oom: false }); await c.patchBalloon({ amount_mib: 2 });
  await c.getBalloonStatistics(); await c.patchBalloonStatistics({ stats_polling_interval_s: 1 }); await c.startBalloonHinting(); await c.getBalloonHintingStatus();
  await c.stopBalloonHinting(); await c.getMmds(); await c.putMmds({ a: 1 }); await c.patchMmds({ a: 2 }); await c.putMmdsConfig({ network_interfaces: ['eth0'] });
  await c.getMemoryHotplug(); await c.putMemoryHotplug({ total_size_mib: 128 }); await c.patchMemoryHotplug({ requested_size_mib: 0 });
  await c.createSnapshot({ snapshot_path: '/s', mem_file_path: '/m' }); await c.loadSnapshot({ snapshot_path: '/s' });
  srv.close();
  const template = (url: string) => ROUTES.find((r) => new RegExp(`^${r.path.replace(/\{[a-z_]+\}/g, '[^/]+')}$`).test(url))?.path ?? url;
  const called = new Set(srv.seen.map((s) => `${s.method} ${template(s.url)}`));
  const all = ROUTES.flatMap((r) => (['GET', 'PUT', 'PATCH'] as const).filter((m) => r[m] !== undefined).map((m) => `${m} ${r.path}`));
  assert.deepEqual(all.filter((x) => !called.has(x)), [], 'routes without a client method');
  assert.ok(srv.seen.some((s) => s.url === '/drives/a%20b' && (s.body as { drive_id: string }).drive_id === 'a b'));
  assert.deepEqual(srv.seen.find((s) => s.url === '/vm')!.body, { state: 'Paused' });
});

test('an error answer is an ApiCallError with the status, fault_message and Sparkler error code', async () => {
  const srv = await recorder(() => ({ status: 400, body: { fault_message: 'The kernel file cannot be opened.' }, code: 'EKERNEL' }));
  const c = new FirecrackerClient(srv.sock);
  await assert.rejects(c.putBootSource({ kernel_image_path: '/nope' }), (e: unknown) =>
    e instanceof ApiCallError && e.status === 400 && e.code === 'EKERNEL' && e.fault === 'The kernel file cannot be opened.'
    && e.message === 'PUT /boot-source failed with 400: The kernel file cannot be opened.');
  srv.close();
  await assert.rejects(new FirecrackerClient(path.join(dir, 'none.sock')).getVersion(), (e: unknown) => (e as { code: string }).code === 'EAPICONN');
});

test('the package exports the SDK to CommonJS and ESM consumers, with types', async () => {
  const root = path.resolve(__dirname, '..', '..');
  const cjs = require(root) as typeof import('./index');
  assert.equal(typeof cjs.MicroVM.start, 'function');
  const { execFileSync } = await import('node:child_process');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', "import { MicroVM, FirecrackerClient } from 'sparkler'; console.log(typeof MicroVM.start, typeof FirecrackerClient)"], { cwd: root, encoding: 'utf8' });
  assert.equal(out.trim(), 'function function');
  const pkg = require(path.join(root, 'package.json'));
  assert.ok(require('node:fs').existsSync(path.join(root, pkg.exports['.'].types)), 'the declaration file is built');
});
