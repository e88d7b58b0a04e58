/** The VMM process in API mode and with every config-file section: flags, exit codes, log and metrics files; memory settling. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { request } from '../api/testing';
import { SPARKLER_IDLE } from '../bench/guests';
import { memoryUse, parseSmaps } from '../bench/proc';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor, waitForSocket } from '../testing/wait';
import { scheduleMemorySettle, settleMemory, SettleResult, startupTimes, stdinMayBeTerminal, V8_DEFAULT_BYTECODE_OLD_AGE } from './run-vmm';
import { tempDir } from '../testing/temp-dir';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const dir = tempDir('sparkler-runvmm-');

function run(args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A file that opens (the config file's kernel is opened when the file is read); these runs fail before booting it. */
const someFile = path.join(dir, 'not-a-kernel');
fs.writeFileSync(someFile, 'x');

function configFile(name: string, extra: object, kernel = someFile): string {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ 'boot-source': { kernel_image_path: kernel }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64 }, ...extra }));
  return file;
}

test('a config-file section whose device does not exist yet fails with 1, naming the section', () => {
  for (const [section, value] of [
    ['pmem', [{ id: 'p', path_on_host: '/p' }]],
    ['memory-hotplug', { total_size_mib: 128 }],
  ] as const) {
    const r = run(['--no-api', '--config-file', configFile(section, { [section]: value })]);
    assert.equal(r.code, 1, `${section}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`config file section \`${section}\`: .*not available in this version of Sparkler yet`));
  }
});

test('config-file sections are validated as the API validates them (1 with the field named)', () => {
  const r = run(['--no-api', '--config-file', configFile('badnet', { 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0', mtu: 20 }] })]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /network-interfaces\[0\]: field `mtu` is 20, but must be between 68 and 65535/);
  const d = run(['--no-api', '--config-file', configFile('baddrive', { drives: [{ drive_id: 'root', path_on_host: '/nonexistent.img', is_root_device: true, is_read_only: false }] })]);
  assert.equal(d.code, 1);
  assert.match(d.stderr, /config file section `drives`: drive `root`: .*\/nonexistent\.img/);
  const l = run(['--no-api', '--config-file', configFile('badlog', { logger: { level: 'Chatty' } })]);
  assert.equal(l.code, 1);
  assert.match(l.stderr, /logger: field `level` must be one of "Error"/);
});

test('--http-api-max-payload-size: larger bodies get 400 with Firecracker\'s sentence', async () => {
  const sock = path.join(dir, 'payload.sock');
  fs.writeFileSync(path.join(dir, 'k'), 'x');
  // Run in `dir` so that the kernel's relative path `k` opens and the small body stays under 64 bytes.
  const child = spawn(BIN, ['--api-sock', sock, '--http-api-max-payload-size', '64', '--level', 'Warning'], { stdio: 'ignore', cwd: dir });
  try {
    await waitForSocket(sock, 'the API socket');
    const small = await request(sock, 'PUT', '/boot-source', { kernel_image_path: 'k' });
    assert.equal(small.status, 204);
    const big = await request(sock, 'PUT', '/boot-source', { kernel_image_path: 'k'.repeat(100) });
    assert.equal(big.status, 400);
    assert.match((big.json as { fault_message: string }).fault_message, /^Request payload with size \d+ is larger than the limit of 64 allowed by server\./);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
});

test('--log-path, --level, --show-level, --show-log-origin, --module and --metrics-path', { skip: kvmUnavailableReason() }, () => {
  const kernel = path.join(dir, 'tiny.elf');
  fs.writeFileSync(kernel, tinyKernel());
  const log = path.join(dir, 'vmm.log');
  const metrics = path.join(dir, 'metrics.json');
  const r = run(['--no-api', '--config-file', configFile('logged', {}, kernel), '--log-path', log, '--level', 'debug', '--show-level', '--show-log-origin', '--metrics-path', metrics, '--id', 'logged-vm']);
  assert.equal(r.code, 0, r.stderr);
  const text = fs.readFileSync(log, 'utf8');
  assert.match(text, /\[logged-vm:main:INFO:cli\/run-vmm\.js:\d+\] Running Sparkler v/);
  assert.match(text, /\[logged-vm:main:DEBUG:cli\/run-vmm\.js:\d+\] vCPU exits: \{"io":\d+.*\}; hand-overs: \{"posted":\d+,"spun":\d+/);
  const lines = fs.readFileSync(metrics, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 2, 'a line at start and one at exit');
  assert.ok(lines.reduce((s, l) => s + (l.uart?.write_count ?? 0), 0) >= 3, 'the guest wrote "OK\\n"');
  const filtered = path.join(dir, 'filtered.log');
  assert.equal(run(['--no-api', '--config-file', configFile('filtered', {}, kernel), '--log-path', filtered, '--module', 'api']).code, 0);
  assert.equal(fs.readFileSync(filtered, 'utf8'), '', 'nothing logged from modules outside api/');
});

test('PUT /logger and PUT /metrics through the API write where they are told', async () => {
  const sock = path.join(dir, 'logger.sock');
  const log = path.join(dir, 'api.log');
  const metrics = path.join(dir, 'api-metrics.json');
  const child = spawn(BIN, ['--api-sock', sock], { stdio: 'ignore' });
  try {
    await waitForSocket(sock, 'the API socket');
    assert.equal((await request(sock, 'PUT', '/logger', { log_path: log, level: 'Info', show_level: true })).status, 204);
    assert.equal((await request(sock, 'PUT', '/metrics', { metrics_path: metrics })).status, 204);
    assert.match((await request(sock, 'PUT', '/metrics', { metrics_path: metrics })).text, /Reinitialization of metrics not allowed/);
    assert.match((await request(sock, 'GET', '/nowhere')).text, /Invalid request method and\/or path/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
  assert.match(fs.readFileSync(log, 'utf8'), /:ERROR\] Received Error\. Status code: 400 Bad Request\. Message: Invalid request method and\/or path: GET \/nowhere\. \(EROUTE\)/);
  const last = JSON.parse(fs.readFileSync(metrics, 'utf8').trim().split('\n').pop()!);
  assert.equal(last.put_api_requests.metrics_count, 2, 'the exit line counts both PUT /metrics (no line was written in between)');
  assert.equal(last.put_api_requests.metrics_fails, 1);
});

test('settleMemory: bytecode age 1 for one memory-reducing collection, back to the default, then malloc_trim', () => {
  const calls: string[] = [];
  const r = settleMemory({
    setV8Flags: (f) => { calls.push(`flags ${f}`); return 0; },
    lowMemoryNotification: () => { calls.push('collect'); return 0; },
    mallocTrim: (pad) => { calls.push(`trim ${pad}`); return 1; },
  });
  assert.deepEqual(calls, ['flags --bytecode-old-age=1', 'collect', `flags --bytecode-old-age=${V8_DEFAULT_BYTECODE_OLD_AGE}`, 'trim 0']);
  assert.equal(r.collected, true);
  assert.equal(r.trimmed, true);
  assert.ok(r.cpuUs >= 0);
});

test('settleMemory without ageing (an idle VMM): one collection and malloc_trim, the bytecode age untouched', () => {
  const calls: string[] = [];
  settleMemory({
    setV8Flags: (f) => { calls.push(`flags ${f}`); return 0; },
    lowMemoryNotification: () => { calls.push('collect'); return 0; },
    mallocTrim: (pad) => { calls.push(`trim ${pad}`); return 1; },
  }, false);
  assert.deepEqual(calls, ['collect', 'trim 0']);
});

test('settleMemory: an addon without the calls (built before them) or a node without the symbols settles nothing, quietly', () => {
  assert.deepEqual({ ...settleMemory({}), cpuUs: 0 }, { collected: false, trimmed: false, cpuUs: 0 });
  const calls: string[] = [];
  const r = settleMemory({
    setV8Flags: () => { calls.push('flags'); return -38; },
    lowMemoryNotification: () => { calls.push('collect'); return -38; },
    mallocTrim: () => 0,
  });
  assert.deepEqual(calls, ['flags', 'collect'], 'a refused flag is not restored');
  assert.equal(r.collected, false);
  assert.equal(r.trimmed, false);
});

test('settleMemory: the bytecode age is restored even when the collection throws', () => {
  const flags: string[] = [];
  assert.throws(() => settleMemory({
    setV8Flags: (f) => { flags.push(f); return 0; },
    lowMemoryNotification: () => { throw new Error('boom'); },
  }), /boom/);
  assert.deepEqual(flags, ['--bytecode-old-age=1', `--bytecode-old-age=${V8_DEFAULT_BYTECODE_OLD_AGE}`]);
});

test('settleMemory on this node: V8 collects (node exports LowMemoryNotification) and the heap shrinks or stays', () => {
  const v8 = require('node:v8') as typeof import('node:v8');
  let junk: object[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
  assert.equal(junk.length, 200_000);
  junk = undefined;
  const before = v8.getHeapStatistics().total_physical_size;
  const r = settleMemory();
  assert.equal(r.collected, true);
  assert.ok(v8.getHeapStatistics().total_physical_size <= before);
});

/** Runs scheduleMemorySettle against a fake VM whose exit count the test drives; the timers are unref'd, so an interval keeps the test alive. */
async function scheduled(opts: { exitsPerLook: number; maxWaitMs: number; cancelAfterMs?: number; watchMs: number; bootedAtLook?: number }): Promise<{ settledAtLook?: number; looks: number }> {
  const counters = { io: 0, mmio: 0, other: 0 };
  let looks = 0;
  let settledAtLook: number | undefined;
  const keepAlive = setInterval(() => undefined, 1000);
  const busy = setInterval(() => { counters.io += opts.exitsPerLook; looks++; }, 20);
  try {
    const guestBooted = () => opts.bootedAtLook !== undefined && looks >= opts.bootedAtLook;
    const cancel = scheduleMemorySettle({ exitCounters: counters, guestBooted }, { periodMs: 20, quietExits: 100, quietAfterMs: 300, maxWaitMs: opts.maxWaitMs }, (): SettleResult => {
      settledAtLook = looks;
      return { collected: true, trimmed: true, cpuUs: 0 };
    });
    if (opts.cancelAfterMs !== undefined) setTimeout(cancel, opts.cancelAfterMs);
    const until = Date.now() + opts.watchMs;
    while (settledAtLook === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    return { settledAtLook, looks };
  } finally {
    clearInterval(busy);
    clearInterval(keepAlive);
  }
}

test('scheduleMemorySettle: settles when a booted guest is quiet, waits while the guest is busy or still booting, settles anyway at the deadline, can be cancelled', async () => {
  const booted = await scheduled({ exitsPerLook: 0, maxWaitMs: 10_000, watchMs: 2000, bootedAtLook: 3 });
  assert.notEqual(booted.settledAtLook, undefined, 'a booted, quiet guest: settled');
  assert.ok(booted.settledAtLook! >= 3 && booted.settledAtLook! <= 6, `soon after the boot mark, not before (${booted.settledAtLook})`);
  const quiet = await scheduled({ exitsPerLook: 0, maxWaitMs: 10_000, watchMs: 2000 });
  assert.notEqual(quiet.settledAtLook, undefined, 'a quiet guest that never marks: settled');
  assert.ok(quiet.settledAtLook! >= 10, `only after quietAfterMs (${quiet.settledAtLook})`);
  const busy = await scheduled({ exitsPerLook: 1000, maxWaitMs: 200, watchMs: 2000 });
  assert.notEqual(busy.settledAtLook, undefined, 'a busy guest: settled at the deadline');
  assert.ok(busy.settledAtLook! >= 5, `not before the deadline (look ${busy.settledAtLook})`);
  const cancelled = await scheduled({ exitsPerLook: 1000, maxWaitMs: 200, cancelAfterMs: 60, watchMs: 500 });
  assert.equal(cancelled.settledAtLook, undefined, 'cancelled (the VM stopped): never settled');
});

test('stdinMayBeTerminal: /dev/null and files are not terminals; a pty is', () => {
  const check = (open: () => number, want: boolean, what: string) => {
    const fd = open();
    try {
      assert.equal(stdinMayBeTerminal(fd), want, what);
    } finally {
      fs.closeSync(fd);
    }
  };
  check(() => fs.openSync('/dev/null', 'r'), false, '/dev/null');
  check(() => fs.openSync(__filename, 'r'), false, 'a regular file');
  if (fs.existsSync('/dev/ptmx')) check(() => fs.openSync('/dev/ptmx', 'r+'), true, 'a pty master');
  assert.equal(stdinMayBeTerminal(1 << 20), false, 'a closed fd');
});

test('an idle VMM gives back what building the VM left behind (Debug line; private memory outside guest RAM drops)', { skip: kvmUnavailableReason() }, async () => {
  const kernel = path.join(dir, 'idle.elf');
  fs.writeFileSync(kernel, SPARKLER_IDLE());
  const config = path.join(dir, 'idle.json');
  fs.writeFileSync(config, JSON.stringify({ 'boot-source': { kernel_image_path: kernel }, 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } }));
  const child = spawn(BIN, ['--no-api', '--boot-timer', '--level', 'Debug', '--config-file', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const privateOutsideGuest = () => {
    const use = memoryUse(parseSmaps(fs.readFileSync(`/proc/${child.pid}/smaps`, 'utf8')), 128);
    return (use.privateKiB - use.guest.privateKiB) / 1024;
  };
  try {
    await waitFor(() => /Guest-boot-time/.test(out), 'the guest mark');
    const before = privateOutsideGuest();
    await waitFor(() => /Memory settled/.test(out), 'the memory-settled line', 15_000);
    const after = privateOutsideGuest();
    assert.match(out, /Memory settled \d+ ms after start \(V8 collected, (malloc trimmed|nothing to trim), [\d.]+ CPU ms\): rss [\d.]+ MiB, .*V8 heap KiB physical\/used: new \d+\/\d+, old \d+\/\d+/);
    assert.ok(after < before - 0.5, `private memory outside guest RAM: ${before.toFixed(2)} MiB at the mark, ${after.toFixed(2)} MiB after settling`);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
});

test('startupTimes: Firecracker\'s formula from the jailer\'s start times; nothing without --start-time-us', () => {
  assert.deepEqual(startupTimes({ startTimeUs: 100, startTimeCpuUs: 10, parentCpuTimeUs: 5 }, 250, 40), { wallUs: 150, cpuUs: 35 });
  assert.deepEqual(startupTimes({ startTimeUs: 100 }, 90, 40), { wallUs: 0, cpuUs: 40 }, 'a start time from the future counts as 0');
  assert.equal(startupTimes({ startTimeCpuUs: 1 }, 250, 40), undefined);
});

test('--start-time-us and --start-time-cpu-us give api_server.process_startup_time_us and _cpu_us in the metrics', async () => {
  const sock = path.join(dir, 'startup.sock');
  const metricsFile = path.join(dir, 'startup-metrics.json');
  const spawnedAt = process.hrtime.bigint(); // CLOCK_MONOTONIC, as the jailer measures it
  const startUs = String(spawnedAt / 1000n);
  const child = spawn(BIN, ['--api-sock', sock, '--metrics-path', metricsFile, '--start-time-us', startUs, '--start-time-cpu-us', '0', '--parent-cpu-time-us', '7'], { stdio: 'ignore' });
  try {
    await waitForSocket(sock, 'the API socket');
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
  const elapsedUs = Number((process.hrtime.bigint() - spawnedAt) / 1000n);
  const line = JSON.parse(fs.readFileSync(metricsFile, 'utf8').trim().split('\n').pop()!);
  assert.ok(line.api_server.process_startup_time_us > 0 && line.api_server.process_startup_time_us < elapsedUs, JSON.stringify(line.api_server));
  assert.ok(line.api_server.process_startup_time_cpu_us > 7, JSON.stringify(line.api_server));
});
