/**
 * Filters loaded for real, in child processes: the default allow-list reaches every thread and a
 * call outside it ends the process with 148 and a line naming it; bin/sparkler's --no-seccomp,
 * default and --seccomp-filter (a filter without accept4 kills the VMM at the first API client;
 * a garbage file is refused at start).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { waitFor, waitForSocket } from '../testing/wait';
import { NODE20_ALLOWLIST } from './allowlist-node20';
import { X86_64_SYSCALLS } from './syscalls-x86_64';

const DIST = path.resolve(__dirname, '..');
const BIN = path.resolve(DIST, '..', 'bin', 'sparkler');
const dir = tempDir('sparkler-seccomp-');

function threadSeccomp(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((t) => /Seccomp:\s*(\d)/.exec(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))?.[1] ?? '?');
}

test('the default filter is on every thread (TSYNC), and a call outside the allow-list exits 148 with a line naming it', () => {
  const script = `
    const { isolationCalls } = require(${JSON.stringify(path.join(DIST, 'native.js'))});
    const { installFilter } = require(${JSON.stringify(path.join(DIST, 'seccomp', 'install.js'))});
    const { defaultFilter, allowlistFor, nodeMajor } = require(${JSON.stringify(path.join(DIST, 'seccomp', 'allowlist.js'))});
    const { compileFilter, encodeProgram } = require(${JSON.stringify(path.join(DIST, 'seccomp', 'bpf.js'))});
    const fs = require('node:fs');
    installFilter(isolationCalls(), encodeProgram(compileFilter(defaultFilter(allowlistFor(nodeMajor())))), 2);
    const levels = fs.readdirSync('/proc/self/task').map((t) => /Seccomp:\\s*(\\d)/.exec(fs.readFileSync('/proc/self/task/' + t + '/status', 'utf8'))[1]);
    process.stdout.write(JSON.stringify(levels) + '\\n');
    isolationCalls().rawSyscall(${X86_64_SYSCALLS.ptrace});
    process.stdout.write('still alive\\n');
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  const levels = JSON.parse(r.stdout.split('\n')[0]) as string[];
  assert.ok(levels.length >= 5, `Node's threads exist: ${levels.length}`);
  assert.deepEqual([...new Set(levels)], ['2'], 'every thread is filtered');
  assert.equal(r.status, 148, r.stderr);
  assert.doesNotMatch(r.stdout, /still alive/);
  assert.match(r.stderr, new RegExp(`Shutting down VM after intercepting a bad syscall \\(${X86_64_SYSCALLS.ptrace}\\)\\.`));
});

interface Vmm { child: ChildProcess; sock: string; out: () => string; exit: Promise<number | null> }

async function startVmm(name: string, flags: string[]): Promise<Vmm> {
  const sock = path.join(dir, `${name}.sock`);
  const child = spawn(BIN, ['--api-sock', sock, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => /API server started\./.test(out) || child.exitCode !== null, 'API server started');
  return { child, sock, out: () => out, exit };
}

test('bin/sparkler: every thread at Seccomp 2 by default, 0 with --no-seccomp', async () => {
  for (const [flags, level] of [[[], '2'], [['--no-seccomp'], '0']] as const) {
    const vmm = await startVmm(`level${level}`, [...flags]);
    await waitForSocket(vmm.sock, 'the API socket');
    const levels = threadSeccomp(vmm.child.pid!);
    assert.ok(levels.length >= 5);
    assert.deepEqual([...new Set(levels)], [level], `${flags.join(' ') || 'default'}: ${levels}`);
    vmm.child.kill('SIGKILL');
    await vmm.exit;
  }
});

test('--seccomp-filter: a filter without accept4 kills the VMM at the first API client (148); garbage is refused at start', async () => {
  const filter = path.join(dir, 'no-accept.json');
  const entries = NODE20_ALLOWLIST.filter((e) => e.syscall !== 'accept4' && !e.when).map((e) => ({ syscall: e.syscall }));
  // The conditional entries, unconditional here: this test is about accept4 only.
  for (const e of NODE20_ALLOWLIST.filter((x) => x.when)) entries.push({ syscall: e.syscall });
  fs.writeFileSync(filter, JSON.stringify({ vmm: { default_action: 'trap', filter_action: 'allow', filter: entries }, api: { default_action: 'trap', filter_action: 'allow', filter: [] } }));
  const vmm = await startVmm('custom', ['--seccomp-filter', filter]);
  await waitFor(() => fs.existsSync(vmm.sock), 'the socket file');
  const client = net.connect(vmm.sock);
  client.on('error', () => undefined);
  assert.equal(await vmm.exit, 148, vmm.out());
  assert.match(vmm.out(), new RegExp(`Shutting down VM after intercepting a bad syscall \\(${X86_64_SYSCALLS.accept4}\\)`));
  client.destroy();

  const garbage = path.join(dir, 'garbage.json');
  fs.writeFileSync(garbage, 'not a filter');
  const bad = spawnSync(BIN, ['--no-api', '--config-file', '/nonexistent.json', '--seccomp-filter', garbage], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout + bad.stderr, /Seccomp error: Filter deserialization failed/);
  const both = spawnSync(BIN, ['--no-seccomp', '--seccomp-filter', garbage], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(both.status, 153);
});
