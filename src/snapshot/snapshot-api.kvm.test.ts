/**
 * Snapshots through bin/sparkler's API on the local /dev/kvm: a tiny guest that counts in memory
 * (and prints a dot every 1024 counts) is paused and snapshotted by one process, killed, and
 * restored by a fresh process, where it counts on; a corrupt snapshot is refused with a sentence;
 * Firecracker's ordering rules hold. Prints the restore latency it measured.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { mergeDiffOnto } from './memory-file';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';
import { tempDir } from '../testing/temp-dir';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const hasCurl = spawnSync('sh', ['-c', 'command -v curl']).status === 0;
const skip = kvmUnavailableReason() ?? (hasCurl ? undefined : 'curl is not installed');
const dir = tempDir('sparkler-snap-api-');

/**
 * mov $0x200000,%ebx; mov $0x3f8,%dx; 1: incq (%rbx); testl $0x3ff,(%rbx); jnz 1b;
 * mov $'.',%al; out %al,(%dx); jmp 1b
 */
const COUNT_AND_DOT = Buffer.from('bb0000200066baf80348ff03f703ff03000075f5b02eeeebf0', 'hex');
const COUNTER_AT = 0x200000;

interface Running { child: ChildProcess; sock: string; out: () => string; exit: Promise<number | null>; startedAt: number }

async function spawnSparkler(name: string): Promise<Running> {
  const sock = path.join(dir, `${name}.sock`);
  const startedAt = performance.now();
  const child = spawn(BIN, ['--api-sock', sock, '--level', 'Info'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => /API server started\./.test(out) || child.exitCode !== null, 'API server started');
  return { child, sock, out: () => out, exit, startedAt };
}

function curl(sock: string, method: string, p: string, body?: object): { code: number; text: string } {
  const args = ['-s', '-w', '\n%{http_code}', '--unix-socket', sock, '-X', method, `http://localhost${p}`];
  if (body) args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
  const r = spawnSync('curl', args, { encoding: 'utf8' });
  const lines = r.stdout.split('\n');
  return { code: Number(lines.pop()), text: lines.join('\n') };
}

const counterIn = (memFile: string): bigint => {
  const fd = fs.openSync(memFile, 'r');
  const b = Buffer.alloc(8);
  fs.readSync(fd, b, 0, 8, COUNTER_AT);
  fs.closeSync(fd);
  return b.readBigUInt64LE(0);
};

/** The guest's dots (runs of them: log lines end sentences with single dots). */
const dots = (out: string): number => (out.match(/\.{2,}/g) ?? []).reduce((n, run) => n + run.length, 0);

async function pauseAndSnapshot(vm: Running, name: string): Promise<{ snapshot: string; mem: string }> {
  assert.equal(curl(vm.sock, 'PATCH', '/vm', { state: 'Paused' }).code, 204);
  const snapshot = path.join(dir, `${name}.snap`);
  const mem = path.join(dir, `${name}.mem`);
  const r = curl(vm.sock, 'PUT', '/snapshot/create', { snapshot_type: 'Full', snapshot_path: snapshot, mem_file_path: mem });
  assert.equal(r.code, 204, r.text);
  return { snapshot, mem };
}

test('a guest snapshotted by one process counts on in a fresh process restored from it', { skip }, async () => {
  const kernel = path.join(dir, 'count.elf');
  fs.writeFileSync(kernel, tinyKernel(COUNT_AND_DOT));
  const a = await spawnSparkler('a');
  let first: { snapshot: string; mem: string };
  try {
    assert.equal(curl(a.sock, 'PUT', '/boot-source', { kernel_image_path: kernel, boot_args: 'console=ttyS0' }).code, 204);
    assert.equal(curl(a.sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 }).code, 204);
    const running = curl(a.sock, 'PUT', '/snapshot/create', { snapshot_path: path.join(dir, 'x'), mem_file_path: path.join(dir, 'y') });
    assert.equal(running.code, 400);
    assert.equal(curl(a.sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).code, 204);
    await waitFor(() => dots(a.out()) > 20, 'the guest counting');
    const whileRunning = curl(a.sock, 'PUT', '/snapshot/create', { snapshot_path: path.join(dir, 'x'), mem_file_path: path.join(dir, 'y') });
    assert.equal(whileRunning.code, 400);
    assert.match(JSON.parse(whileRunning.text).fault_message, /save\/restore unavailable while running/);
    first = await pauseAndSnapshot(a, 'first');
  } finally {
    a.child.kill('SIGKILL');
    await a.exit;
  }
  const saved = counterIn(first.mem);
  assert.ok(saved > 20n * 1024n, `the memory file holds the count (${saved})`);

  const b = await spawnSparkler('b');
  try {
    assert.match(curl(b.sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).text, /boot source/);
    const load = curl(b.sock, 'PUT', '/snapshot/load', { snapshot_path: first.snapshot, mem_backend: { backend_type: 'File', backend_path: first.mem }, resume_vm: true });
    const loadedAt = performance.now();
    assert.equal(load.code, 204, load.text);
    assert.equal(JSON.parse(curl(b.sock, 'GET', '/').text).state, 'Running');
    const config = JSON.parse(curl(b.sock, 'GET', '/vm/config').text);
    assert.equal(config['machine-config'].mem_size_mib, 128);
    assert.equal(config['boot-source'].kernel_image_path, kernel);
    await waitFor(() => /Snapshot loaded in ([\d.]+) ms/.test(b.out()), 'the load logged');
    const loadMs = Number(/Snapshot loaded in ([\d.]+) ms/.exec(b.out())![1]);
    const sinceStart = /process start to vCPUs started ([\d.]+) ms/.exec(b.out())?.[1];
    console.log(`restore: PUT /snapshot/load -> vCPUs started ${loadMs.toFixed(2)} ms, process start -> vCPUs started ${sinceStart} ms (VMM's measures); process spawn -> load answered ${(loadedAt - b.startedAt).toFixed(0)} ms (test's)`);
    await waitFor(() => dots(b.out()) > 20, 'the restored guest counting');
    assert.match(curl(b.sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).text, /not supported after starting/);
    const second = await pauseAndSnapshot(b, 'second');
    const now = counterIn(second.mem);
    assert.ok(now >= saved + 20n * 1024n, `the count went on from ${saved} to ${now}`);
    // A Diff without track_dirty_pages (mincore, under the VMM's seccomp filter) over the file
    // this VM was restored from is the memory of that moment.
    const diffMem = path.join(dir, 'second-diff.mem');
    const diff = curl(b.sock, 'PUT', '/snapshot/create', { snapshot_type: 'Diff', snapshot_path: path.join(dir, 'second-diff.snap'), mem_file_path: diffMem });
    assert.equal(diff.code, 204, diff.text);
    const merged = path.join(dir, 'first-plus-diff.mem');
    fs.copyFileSync(first.mem, merged);
    mergeDiffOnto(merged, diffMem);
    assert.ok(fs.readFileSync(merged).equals(fs.readFileSync(second.mem)), 'the restored base + the mincore Diff equals the Full');
  } finally {
    b.child.kill('SIGKILL');
    await b.exit;
  }

  // resume_vm false: loaded paused, runs on PATCH /vm Resumed.
  const c = await spawnSparkler('c-paused');
  try {
    const load = curl(c.sock, 'PUT', '/snapshot/load', { snapshot_path: first.snapshot, mem_backend: { backend_type: 'File', backend_path: first.mem } });
    assert.equal(load.code, 204, load.text);
    assert.equal(JSON.parse(curl(c.sock, 'GET', '/').text).state, 'Paused');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(dots(c.out()), 0, 'a VM loaded without resume_vm does not run');
    assert.equal(curl(c.sock, 'PATCH', '/vm', { state: 'Resumed' }).code, 204);
    await waitFor(() => dots(c.out()) > 20, 'the guest counting once resumed');
  } finally {
    c.child.kill('SIGKILL');
    await c.exit;
  }
});

test('a corrupt or truncated snapshot is refused with a sentence; load after boot configuration is refused', { skip }, async () => {
  const vm = await spawnSparkler('c');
  try {
    const bad = path.join(dir, 'bad.snap');
    fs.writeFileSync(bad, Buffer.from('not a snapshot at all, just text'));
    const mem = path.join(dir, 'bad.mem');
    fs.writeFileSync(mem, Buffer.alloc(4096));
    const r = curl(vm.sock, 'PUT', '/snapshot/load', { snapshot_path: bad, mem_backend: { backend_type: 'File', backend_path: mem } });
    assert.equal(r.code, 400);
    assert.match(JSON.parse(r.text).fault_message, /^Load snapshot error: Failed to restore from snapshot: The snapshot file .*bad\.snap is not a Sparkler snapshot/);
    assert.equal(JSON.parse(curl(vm.sock, 'GET', '/').text).state, 'Not started');
    assert.equal(curl(vm.sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128 }).code, 204);
    const late = curl(vm.sock, 'PUT', '/snapshot/load', { snapshot_path: bad, mem_backend: { backend_type: 'File', backend_path: mem } });
    assert.match(JSON.parse(late.text).fault_message, /Loading a microVM snapshot not allowed after configuring boot-specific resources\./);
  } finally {
    vm.child.kill('SIGKILL');
    await vm.exit;
  }
});
