/**
 * The real guest agent (guest/agent/agent.c, built as for the guest images) run on the host on a
 * Unix socket, driven by the SDK's AgentClient: the protocol end to end without a VM.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { waitFor } from '../testing/wait';
import { AgentClient, dialUnix } from './agent-client';
import { AgentError } from './errors';

const dir = tempDir('sparkler-agent-');
const sock = path.join(dir, 'agent.sock');
let agent: ChildProcess;
let client: AgentClient;

before(async () => {
  const bin = path.join(dir, 'sparkler-agent');
  execFileSync(path.resolve(__dirname, '..', '..', 'guest', 'agent', 'build.sh'), [bin]);
  agent = spawn(bin, ['-u', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitFor(() => fs.existsSync(sock), 'the agent socket');
  client = new AgentClient(dialUnix(sock));
});
after(() => agent.kill());

test('ping answers the version', async () => {
  assert.equal(await client.ping(), 'sparkler-agent 1');
});

test('exec: exit code, stdout, stderr; env, cwd, stdin', async () => {
  const r = await client.exec(['sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.deepEqual([r.exitCode, r.stdout.toString(), r.stderr.toString()], [3, 'out\n', 'err\n']);
  const e = await client.exec(['sh', '-c', 'echo "$FOO $(pwd)"; cat'], { env: { FOO: 'bar', PATH: '/usr/bin:/bin' }, cwd: '/', stdin: 'from stdin' });
  assert.equal(e.stdout.toString(), 'bar /\nfrom stdin');
  const killed = await client.exec(['sh', '-c', 'kill -9 $$']);
  assert.equal(killed.exitCode, 128 + 9);
});

test('a command that does not exist, or a bad cwd, is an AgentError naming the cause', async () => {
  await assert.rejects(client.exec(['/no/such/command']), (e: unknown) => e instanceof AgentError && e.code === 'EAGENT' && /No such file/.test(e.message));
  await assert.rejects(client.exec(['true'], { cwd: '/no/such/dir' }), /No such file/);
});

test('writeFile and readFile round-trip 4 MiB; a missing file is an AgentError', async () => {
  const data = randomBytes(4 << 20);
  const file = path.join(dir, 'data.bin');
  await client.writeFile(file, data, 0o600);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const back = await client.readFile(file);
  assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
  await assert.rejects(client.readFile(path.join(dir, 'missing')), /No such file/);
});

test('50 MiB of stdout streams through onStdout without the client holding it', async () => {
  let n = 0;
  const before = process.memoryUsage().rss;
  let peak = before;
  const r = await client.exec(['head', '-c', String(50 << 20), '/dev/zero'], {
    onStdout: (c) => { n += c.length; peak = Math.max(peak, process.memoryUsage().rss); },
  });
  assert.equal(r.exitCode, 0);
  assert.equal(n, 50 << 20);
  assert.equal(r.stdout.length, 0);
  assert.ok(peak - before < 32 << 20, `RSS grew by ${((peak - before) / 2 ** 20).toFixed(1)} MiB`);
});

test('garbage (an oversized frame, a cut-off frame) ends that connection only', async () => {
  for (const bytes of [Buffer.from([0xff, 0xff, 0xff, 0xff, 1]), Buffer.from([0, 0, 0, 9, 1, 0])]) {
    await new Promise<void>((resolve) => {
      const s = net.createConnection(sock, () => { s.end(bytes); });
      s.on('close', () => resolve());
      s.on('error', () => {});
      s.resume();
    });
  }
  assert.equal(await client.ping(), 'sparkler-agent 1');
});
