/**
 * `sparkler exec` against a fake VMM: an API socket answering GET /vm/config with a vsock
 * uds_path, a hybrid-vsock stand-in there (CONNECT 52 -> OK), and the real guest agent behind
 * it on a Unix socket.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';

const dir = tempDir('sparkler-exec-');
const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');

test('exec runs the command in the VM, streams its output, passes stdin and returns its exit code', async () => {
  const agentBin = path.join(dir, 'agent');
  execFileSync(path.resolve(__dirname, '..', '..', 'guest', 'agent', 'build.sh'), [agentBin]);
  const agentSock = path.join(dir, 'agent.sock');
  const agent = spawn(agentBin, ['-u', agentSock], { stdio: 'ignore' });
  after(() => agent.kill());
  const uds = path.join(dir, 'v.sock');
  const ports: string[] = [];
  const vsock = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      ports.push(d.toString());
      s.write('OK 1073741824\n');
      const a = net.createConnection(agentSock);
      s.pipe(a).pipe(s);
    });
  }).listen(uds);
  const apiSock = path.join(dir, 'api.sock');
  const api = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(req.url === '/vm/config' ? { vsock: { guest_cid: 3, uds_path: uds } } : {}));
  }).listen(apiSock);
  after(() => { vsock.close(); api.close(); });
  await waitFor(() => fs.existsSync(agentSock), 'the agent');

  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn(BIN, ['exec', '--api-sock', apiSock, '--', 'sh', '-c', 'echo out; cat; echo err >&2; exit 7']);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
    p.stdin.end('from stdin\n');
  });
  assert.deepEqual(r, { code: 7, out: 'out\nfrom stdin\n', err: 'err\n' });
  assert.deepEqual(ports, ['CONNECT 52\n']);
});

test('exec without a command or socket prints the usage and exits 2', () => {
  const r = spawnSync(BIN, ['exec', '--api-sock', '/nowhere'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: sparkler exec --api-sock PATH/);
});
