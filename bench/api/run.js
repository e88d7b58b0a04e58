#!/usr/bin/env node
'use strict';
/*
 * API benchmark (not a test): on this machine, side by side with `node -e 0`,
 *   - process start -> "API server started." on stdout, and -> the socket accepting a connection;
 *   - PUT /machine-config round trip on a kept-alive connection: median and p99;
 *   - PUT /actions InstanceStart round trip (a tiny guest, fresh process each time): median and p99.
 * Times are taken in this process with process.hrtime; each sample is one spawn or one request.
 *
 * Usage: node bench/api/run.js [--starts 30] [--requests 3000] [--boots 30] [--level Info]
 * Needs: npm run build, /dev/kvm for the InstanceStart part.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'sparkler');
const { tinyKernel } = require(path.join(ROOT, 'dist', 'testing', 'tiny-guests'));
const { values: opt } = parseArgs({
  options: {
    starts: { type: 'string', default: '30' },
    requests: { type: 'string', default: '3000' },
    boots: { type: 'string', default: '30' },
    level: { type: 'string', default: 'Info' },
  },
});
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-bench-api-'));
const log = (s) => process.stderr.write(`[bench] ${s}\n`);
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
// Prints '.' forever with a short delay loop (see src/api/api.kvm.test.ts).
const DOTS = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: at(0.5), p99: at(0.99), min: s[0], max: s[s.length - 1] };
}
const fmt = (st, unit = 'ms', digits = 2) =>
  `median ${st.median.toFixed(digits)} ${unit}, p99 ${st.p99.toFixed(digits)} ${unit} (min ${st.min.toFixed(digits)}, max ${st.max.toFixed(digits)}, n=${st.n})`;

function nodeNoop() {
  return new Promise((resolve) => {
    const t0 = nowMs();
    spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }).on('exit', () => resolve(nowMs() - t0));
  });
}

function tryConnect(sock) {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** Spawns sparkler; resolves with the time to "API server started." and to the socket accepting. */
async function startOnce(i, extra = []) {
  const sock = path.join(dir, `s${i}.sock`);
  const t0 = nowMs();
  const child = spawn(BIN, ['--api-sock', sock, '--level', opt.level, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let logged;
  child.stdout.on('data', (c) => {
    out += c;
    if (logged === undefined && out.includes('API server started.')) logged = nowMs() - t0;
  });
  let accepting;
  while (accepting === undefined) {
    if (await tryConnect(sock)) accepting = nowMs() - t0;
    else await new Promise((r) => setTimeout(r, 1)); // a busy poll would steal CPU from the process being measured
  }
  // Below Info the line is not logged; only the socket time is measured then.
  while (logged === undefined && ['info', 'debug', 'trace'].includes(opt.level.toLowerCase())) await new Promise((r) => setTimeout(r, 1));
  return { child, sock, logged, accepting };
}

function stop(child) {
  return new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
}

function put(agent, sock, p, body) {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = http.request({ socketPath: sock, agent, method: 'PUT', path: p, headers: { 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 204 ? resolve(nowMs() - t0) : reject(new Error(`${p}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function main() {
  log(`node ${process.version}, ${os.cpus().length} CPUs, level ${opt.level}`);
  const noop = [];
  for (let i = 0; i < Number(opt.starts); i++) noop.push(await nodeNoop());
  const logged = [];
  const accepting = [];
  for (let i = 0; i < Number(opt.starts); i++) {
    const r = await startOnce(i);
    logged.push(r.logged);
    accepting.push(r.accepting);
    await stop(r.child);
  }
  console.log(`node -e 0 (spawn to exit):               ${fmt(stats(noop), 'ms', 1)}`);
  if (logged.every((x) => x !== undefined)) console.log(`start to "API server started." on stdout: ${fmt(stats(logged), 'ms', 1)}`);
  console.log(`start to the API socket accepting:        ${fmt(stats(accepting), 'ms', 1)}`);

  const { child, sock } = await startOnce('lat');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const lat = [];
  for (let i = 0; i < Number(opt.requests); i++) lat.push(await put(agent, sock, '/machine-config', { vcpu_count: 1, mem_size_mib: 128 + (i % 2) }));
  agent.destroy();
  await stop(child);
  console.log(`PUT /machine-config (keep-alive):         ${fmt(stats(lat.slice(100)), 'ms', 3)} (first 100 dropped as warm-up)`);

  const kernel = path.join(dir, 'dots.elf');
  fs.writeFileSync(kernel, tinyKernel(DOTS));
  const boots = [];
  for (let i = 0; i < Number(opt.boots); i++) {
    const vm = await startOnce(`boot${i}`);
    const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await put(a, vm.sock, '/serial', { serial_out_path: '/dev/null' });
    await put(a, vm.sock, '/boot-source', { kernel_image_path: kernel });
    await put(a, vm.sock, '/machine-config', { vcpu_count: 1, mem_size_mib: 128 });
    boots.push(await put(a, vm.sock, '/actions', { action_type: 'InstanceStart' }));
    a.destroy();
    await stop(vm.child);
  }
  console.log(`PUT /actions InstanceStart (tiny guest):  ${fmt(stats(boots), 'ms', 2)}`);
}

main().then(() => fs.rmSync(dir, { recursive: true, force: true }), (err) => { console.error(err); process.exit(1); });
