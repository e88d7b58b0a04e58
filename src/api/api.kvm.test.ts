/**
 * bin/sparkler driven through its API on the local /dev/kvm with tiny guests: Firecracker's
 * getting-started sequence with curl, pause and resume of a running guest, a CPU template the
 * guest can see, --config-file together with the API, and a socket already served.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';
import { request } from './testing';
import { tempDir } from '../testing/temp-dir';
import { violations } from '../testing/fc-metrics-schema';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const skip = kvmUnavailableReason();
const dir = tempDir('sparkler-api-kvm-');

/**
 * Prints '.' on COM1 forever, with a short busy-wait between dots (short because on a PVM host
 * ring-0 guest code runs in KVM's instruction emulator, at a few hundred thousand per second):
 *   mov $0x3f8,%dx; 1: mov $'.',%al; out %al,(%dx); mov $0x400,%ecx; 2: dec %ecx; jnz 2b; jmp 1b
 */
const DOTS_FOREVER = Buffer.from('66baf803b02eeeb900040000ffc975fcebf2', 'hex');
/**
 * Prints CPUID leaf 0's EBX as four characters and a newline, then resets through the i8042:
 *   xor %eax,%eax; cpuid; mov %ebx,%esi; mov $0x3f8,%dx; mov %esi,%eax;
 *   4 x (out %al,(%dx); shr $8,%eax) ; mov $'\n',%al; out; mov $0xfe,%al; out %al,$0x64; 1: hlt; jmp 1b
 */
const CPUID_VENDOR = Buffer.from('31c00fa289de66baf80389f0eec1e808eec1e808eec1e808eeb00aeeb0fee664f4ebfd', 'hex');

function kernel(name: string, code?: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, tinyKernel(code));
  return file;
}

interface Running {
  child: ChildProcess;
  sock: string;
  out: () => string;
  exit: Promise<number | null>;
}

async function spawnSparkler(args: string[], name: string): Promise<Running> {
  const sock = path.join(dir, `${name}.sock`);
  const child = spawn(BIN, ['--api-sock', sock, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => /API server started\./.test(out) || child.exitCode !== null, 'API server started');
  return { child, sock, out: () => out, exit };
}

function curl(sock: string, method: string, p: string, body?: object): { code: number; text: string } {
  const args = ['-s', '-w', '\n%{http_code}', '--unix-socket', sock, '-X', method, `http://localhost${p}`];
  if (body) args.push('-H', 'Content-Type: application/json', '-d', JSON.stringify(body));
  const r = spawnSync('curl', args, { encoding: 'utf8' });
  const lines = r.stdout.split('\n');
  return { code: Number(lines.pop()), text: lines.join('\n') };
}

const hasCurl = spawnSync('sh', ['-c', 'command -v curl']).status === 0;

test('getting started with curl: boot source, machine config, InstanceStart; the guest runs and ends the process with 0', { skip: skip ?? (hasCurl ? undefined : 'curl is not installed') }, async () => {
  const vm = await spawnSparkler(['--id', 'curl-vm'], 'curl');
  assert.match(vm.out(), /\[curl-vm:main\] API server started\./);
  assert.equal(curl(vm.sock, 'PUT', '/boot-source', { kernel_image_path: kernel('hello.elf'), boot_args: 'console=ttyS0 reboot=k panic=1' }).code, 204);
  assert.equal(curl(vm.sock, 'PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 128 }).code, 204);
  assert.deepEqual(JSON.parse(curl(vm.sock, 'GET', '/').text), { id: 'curl-vm', state: 'Not started', vmm_version: JSON.parse(curl(vm.sock, 'GET', '/version').text).firecracker_version, app_name: 'Sparkler' });
  assert.equal(curl(vm.sock, 'PUT', '/actions', { action_type: 'InstanceStart' }).code, 204);
  assert.equal(await vm.exit, 0, vm.out());
  assert.match(vm.out(), /^OK$/m);
  assert.equal(fs.existsSync(vm.sock), false, 'the socket is removed at exit');
});

test('PATCH /vm pauses a running guest (it stops printing) and resumes it', { skip }, async () => {
  const vm = await spawnSparkler([], 'pause');
  const serial = path.join(dir, 'pause.serial');
  const metricsFile = path.join(dir, 'pause.metrics');
  const size = () => (fs.existsSync(serial) ? fs.statSync(serial).size : 0);
  const put = async (p: string, body: object, method = 'PUT') => {
    const r = await request(vm.sock, method, p, body);
    assert.equal(r.status, 204, `${method} ${p}: ${r.text}`);
  };
  await put('/metrics', { metrics_path: metricsFile });
  await put('/serial', { serial_out_path: serial });
  await put('/boot-source', { kernel_image_path: kernel('dots.elf', DOTS_FOREVER) });
  await put('/actions', { action_type: 'InstanceStart' });
  await waitFor(() => size() > 20, 'the guest to print');
  await put('/vm', { state: 'Paused' }, 'PATCH');
  assert.equal(((await request(vm.sock, 'GET', '/')).json as { state: string }).state, 'Paused');
  await new Promise((r) => setTimeout(r, 50)); // output gathered before the pause is flushed on the next turn
  const paused = size();
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(size(), paused, 'no progress while paused');
  await put('/vm', { state: 'Resumed' }, 'PATCH');
  assert.equal(((await request(vm.sock, 'GET', '/')).json as { state: string }).state, 'Running');
  await waitFor(() => size() > paused + 20, 'the guest to print again');
  await put('/actions', { action_type: 'FlushMetrics' });
  const refused = await request(vm.sock, 'PUT', '/boot-source', { kernel_image_path: '/k' });
  assert.deepEqual(refused.json, { fault_message: 'The requested operation is not supported after starting the microVM.' });
  vm.child.kill('SIGTERM');
  assert.equal(await vm.exit, 0, vm.out());
  const lines = fs.readFileSync(metricsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 3, 'lines at InstanceStart, FlushMetrics and exit');
  const total = (k: string) => lines.reduce((s, l) => s + (l.uart?.[k] ?? 0), 0);
  assert.ok(total('write_count') >= size() - 1, 'uart bytes in the metrics add up to the output');
  assert.ok(lines.reduce((s, l) => s + (l.vcpu?.exit_io_in ?? 0) + (l.vcpu?.exit_io_out ?? 0), 0) > 40, 'vCPU I/O exits are counted');
  for (const line of lines) assert.deepEqual(violations(line), [], 'each line validates against Firecracker\'s strict schema');
});

test('PUT /cpu-config: the guest sees the modified CPUID leaf', { skip }, async () => {
  const vm = await spawnSparkler([], 'cpuid');
  const sprk = 0x4b525053; // "SPRK"
  const bitmap = `0b${sprk.toString(2).padStart(32, '0')}`;
  for (const [p, body] of [
    ['/boot-source', { kernel_image_path: kernel('cpuid.elf', CPUID_VENDOR) }],
    ['/cpu-config', { cpuid_modifiers: [{ leaf: '0x0', subleaf: '0x0', flags: 0, modifiers: [{ register: 'ebx', bitmap }] }] }],
    ['/actions', { action_type: 'InstanceStart' }],
  ] as const) assert.equal((await request(vm.sock, 'PUT', p, body)).status, 204, p);
  assert.equal(await vm.exit, 0, vm.out());
  assert.match(vm.out(), /^SPRK$/m);
});

test('--config-file with the API: the VM boots at once and the API serves it', { skip }, async () => {
  const config = path.join(dir, 'vm.json');
  fs.writeFileSync(config, JSON.stringify({ 'boot-source': { kernel_image_path: kernel('dots2.elf', DOTS_FOREVER) }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64 } }));
  const vm = await spawnSparkler(['--config-file', config], 'cfg');
  await waitFor(() => /Successfully started microvm/.test(vm.out()), 'the microVM to start');
  assert.equal(((await request(vm.sock, 'GET', '/')).json as { state: string }).state, 'Running');
  assert.deepEqual((await request(vm.sock, 'GET', '/vm/config')).json && ((await request(vm.sock, 'GET', '/vm/config')).json as Record<string, unknown>)['machine-config'],
    { vcpu_count: 1, mem_size_mib: 64, smt: false, track_dirty_pages: false, huge_pages: 'None' });
  const second = spawnSync(BIN, ['--api-sock', vm.sock], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(second.status, 1);
  assert.match(second.stderr, /another process is serving it/);
  vm.child.kill('SIGTERM');
  assert.equal(await vm.exit, 0, vm.out());
});
