// End-to-end tests of the emulated KVM host: each boots it once (~5-10 s under TCG), so the
// checks are grouped into few runs. Skipped, with the reason, where QEMU or the image is missing.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { tinyKernel } from '../testing/tiny-guests';
import { prepareImage } from './image';
import { findQemu } from './qemu';
import { runInEmuHost } from './run';

let unavailable: string | undefined;

before(async () => {
  try {
    findQemu();
    await prepareImage(() => undefined);
  } catch (e) {
    unavailable = `emulated KVM host unavailable: ${(e as Error).message}`;
  }
});

const LIMIT = { timeoutMs: 120_000 };

test('exit code, stdout and stderr come back separately', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const r = await runInEmuHost(['sh', '-c', 'echo out; echo err >&2; exit 7'], { stdio: 'pipe', ...LIMIT });
  assert.equal(r.code, 7);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
});

test('same cwd and environment; files written in cwd and /tmp are visible outside', async (t) => {
  if (unavailable) return t.skip(unavailable);
  // A cwd outside /tmp (next to the compiled tests) exercises the cwd's own share.
  const cwd = mkdtempSync(join(__dirname, '.emuhost-test-'));
  const tmpFile = join(tmpdir(), `sparkler-emuhost-test-${process.pid}`);
  try {
    const value = `it's "quoted" $HOME \\ and spaced`;
    const r = await runInEmuHost(
      ['sh', '-c', `pwd; printf '%s\\n' "$SPARKLER_TEST_VALUE"; echo "$PATH"; echo cwd > in-cwd; echo tmp > ${tmpFile}`],
      { cwd, env: { SPARKLER_TEST_VALUE: value }, stdio: 'pipe', ...LIMIT },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout?.split('\n'), [cwd, value, process.env.PATH ?? '', '']);
    assert.equal(readFileSync(join(cwd, 'in-cwd'), 'utf8'), 'cwd\n');
    assert.equal(readFileSync(tmpFile, 'utf8'), 'tmp\n');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
    rmSync(tmpFile, { force: true });
  }
});

// Run inside by node: KVM is there and answers, and a Unix socket server and client talk.
const INSIDE = `
const fs = require('fs'), net = require('net'), os = require('os'), path = require('path');
const { execFileSync } = require('child_process');
const out = { kvm: fs.existsSync('/dev/kvm'), kvmAmd: fs.existsSync('/sys/module/kvm_amd') };
try {
  out.api = execFileSync('perl', ['-e', 'sysopen(my $f, "/dev/kvm", 2) or die "open: $!"; print ioctl($f, 0xAE00, 0) + 0'], { encoding: 'utf8' });
} catch (e) { out.api = 'no perl: ' + e.message; }
function echo(p) {
  return new Promise((resolve) => {
    const srv = net.createServer((c) => c.on('data', (d) => c.end('echo:' + d)));
    srv.on('error', (e) => resolve('server ' + e.code));
    srv.listen(p, () => {
      const c = net.connect(p, () => c.write('ping'));
      let got = '';
      c.on('data', (d) => { got += d; });
      c.on('error', (e) => { srv.close(); resolve('client ' + e.code); });
      c.on('end', () => { srv.close(); resolve(got); });
    });
  });
}
(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sock-'));
  out.tmpSocket = await echo(path.join(dir, 's.sock'));
  out.runSocket = await echo('/run/sparkler-test.sock');
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(out));
})();
`;

test('/dev/kvm works inside and Unix sockets work under /tmp and /run', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const r = await runInEmuHost([process.execPath, '-e', INSIDE], { stdio: 'pipe', ...LIMIT });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout ?? '') as Record<string, unknown>;
  assert.equal(out.kvm, true);
  assert.equal(out.kvmAmd, true);
  if (String(out.api).startsWith('no perl')) t.diagnostic(`KVM_GET_API_VERSION not checked: ${out.api}`);
  else assert.equal(out.api, '12');
  assert.equal(out.tmpSocket, 'echo:ping');
  assert.equal(out.runSocket, 'echo:ping');
});

test('a time limit kills the emulated host and says so (exit code 124)', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const started = Date.now();
  const r = await runInEmuHost(['sleep', '60'], { stdio: 'pipe', timeoutMs: 3000 });
  assert.equal(r.code, 124);
  assert.match(r.stderr ?? '', /timed out after 3000 ms/);
  assert.ok(Date.now() - started < 20_000);
});

test('a wedged emulated host (an RCU stall on its console) ends the run at once, and is started again when asked', async (t) => {
  if (unavailable) return t.skip(unavailable);
  // The first run prints what a wedged host's kernel prints, then would sleep a minute; the
  // second (a fresh emulated host) finds the marker file on the shared /tmp and succeeds.
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-emuhost-wedge-'));
  const marker = join(dir, 'first-run');
  const script = `if [ -e ${marker} ]; then echo second run; exit 0; fi; touch ${marker}; `
    + 'echo "<3>rcu: INFO: rcu_preempt detected stalls on CPUs/tasks: (test)" > /dev/kmsg; sleep 60';
  try {
    const started = Date.now();
    const r = await runInEmuHost(['sh', '-c', script], { stdio: 'pipe', ...LIMIT, retriesIfWedged: 1 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'second run\n');
    assert.match(r.stderr ?? '', /the emulated host wedged .*rcu: INFO: rcu_preempt detected stalls/);
    assert.ok(Date.now() - started < 60_000, 'the wedged run was not left to sleep');
    rmSync(marker);
    const once = await runInEmuHost(['sh', '-c', script], { stdio: 'pipe', ...LIMIT });
    assert.equal(once.code, 125, 'without retries a wedge is a host failure');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a host that hangs silently past attemptTimeoutMs is started again, like a wedged one', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-emuhost-hang-'));
  const marker = join(dir, 'first-run');
  const script = `if [ -e ${marker} ]; then echo second run; exit 0; fi; touch ${marker}; sleep 600`;
  try {
    const r = await runInEmuHost(['sh', '-c', script], { stdio: 'pipe', ...LIMIT, retriesIfWedged: 1, attemptTimeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'second run\n');
    assert.match(r.stderr ?? '', /timed out after 30000 ms/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a nested guest that makes no exits (its heartbeat says so) is stopped and started again, with what it printed', async (t) => {
  if (unavailable) return t.skip(unavailable);
  // The first run boots a guest that halts with interrupts off (cli; hlt): KVM parks its vCPU
  // and the VM makes no more exits, as a nested guest the emulator stopped running does.
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-emuhost-frozen-'));
  const marker = join(dir, 'first-run');
  const kernel = join(dir, 'cli-hlt.elf');
  writeFileSync(kernel, tinyKernel(Buffer.from('faf4ebfd', 'hex')));
  const config = join(dir, 'vm.json');
  writeFileSync(config, JSON.stringify({ 'boot-source': { kernel_image_path: kernel }, 'machine-config': { vcpu_count: 1, mem_size_mib: 32 } }));
  const bin = resolve(__dirname, '..', '..', 'bin', 'sparkler');
  const script = `if [ -e ${marker} ]; then echo second run; exit 0; fi; touch ${marker}; echo booting the frozen guest; exec ${bin} --no-api --no-seccomp --config-file ${config}`;
  const saved = process.env.SPARKLER_EMUHOST_STALL_MS;
  process.env.SPARKLER_EMUHOST_STALL_MS = '8000';
  try {
    const r = await runInEmuHost(['sh', '-c', script], { stdio: 'pipe', ...LIMIT, retriesIfWedged: 1 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'second run\n');
    assert.match(r.stderr ?? '', /the emulated host stalled: its KVM holds 1 VM that made no exit for \d+ s/);
    assert.match(r.stderr ?? '', /the attempt's last output:\n {2}\| booting the frozen guest/);
  } finally {
    if (saved === undefined) delete process.env.SPARKLER_EMUHOST_STALL_MS;
    else process.env.SPARKLER_EMUHOST_STALL_MS = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an attempt whose output shows an emulator fault (faultedIf) is run again', async (t) => {
  if (unavailable) return t.skip(unavailable);
  const dir = mkdtempSync(join(tmpdir(), 'sparkler-emuhost-fault-'));
  const out = join(dir, 'out');
  const script = `if [ -e ${out} ]; then echo second >${out}; else echo first >${out}; fi`;
  try {
    const faultedIf = () => (readFileSync(out, 'utf8').trim() === 'first' ? 'the first run faulted' : undefined);
    const r = await runInEmuHost(['sh', '-c', script], { stdio: 'pipe', ...LIMIT, retriesIfWedged: 1, faultedIf });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), 'second\n');
    assert.match(r.stderr ?? '', /emuhost: the first run faulted\nemuhost: starting the emulated host again/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
