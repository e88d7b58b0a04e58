/** The VMM process in API mode and with every config-file section: flags, exit codes, log and metrics files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { request } from '../api/testing';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor } from '../testing/wait';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-runvmm-'));

function run(args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function configFile(name: string, extra: object, kernel = '/nonexistent/vmlinux'): string {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ 'boot-source': { kernel_image_path: kernel }, 'machine-config': { vcpu_count: 1, mem_size_mib: 64 }, ...extra }));
  return file;
}

test('a config-file section whose device does not exist yet fails with 152, naming the section', () => {
  for (const [section, value] of [
    ['vsock', { guest_cid: 3, uds_path: '/tmp/v.sock' }],
    ['network-interfaces', [{ iface_id: 'eth0', host_dev_name: 'tap0' }]],
    ['balloon', { amount_mib: 1, deflate_on_oom: false }],
    ['pmem', [{ id: 'p', path_on_host: '/p' }]],
    ['memory-hotplug', { total_size_mib: 128 }],
  ] as const) {
    const r = run(['--no-api', '--config-file', configFile(section, { [section]: value })]);
    assert.equal(r.code, 152, `${section}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`config file section \`${section}\`: .*not available in this version of Sparkler yet`));
  }
});

test('config-file sections are validated as the API validates them (152 with the field named)', () => {
  const r = run(['--no-api', '--config-file', configFile('badnet', { 'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'tap0', mtu: 20 }] })]);
  assert.equal(r.code, 152);
  assert.match(r.stderr, /network-interfaces\[0\]: field `mtu` is 20, but must be between 68 and 65535/);
  const d = run(['--no-api', '--config-file', configFile('baddrive', { drives: [{ drive_id: 'root', path_on_host: '/nonexistent.img', is_root_device: true, is_read_only: false }] })]);
  assert.equal(d.code, 152);
  assert.match(d.stderr, /config file section `drives`: drive `root`: .*\/nonexistent\.img/);
  const l = run(['--no-api', '--config-file', configFile('badlog', { logger: { level: 'Chatty' } })]);
  assert.equal(l.code, 152);
  assert.match(l.stderr, /logger: field `level` is "Chatty"/);
});

test('--http-api-max-payload-size: larger bodies get 413', async () => {
  const sock = path.join(dir, 'payload.sock');
  const child = spawn(BIN, ['--api-sock', sock, '--http-api-max-payload-size', '64', '--level', 'Warning'], { stdio: 'ignore' });
  try {
    await waitFor(() => fs.existsSync(sock), 'the API socket');
    const small = await request(sock, 'PUT', '/boot-source', { kernel_image_path: '/k' });
    assert.equal(small.status, 204);
    const big = await request(sock, 'PUT', '/boot-source', { kernel_image_path: 'k'.repeat(100) });
    assert.equal(big.status, 413);
    assert.match((big.json as { fault_message: string }).fault_message, /larger than the limit of 64/);
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
  assert.match(text, /\[logged-vm:main:DEBUG:cli\/run-vmm\.js:\d+\] vCPU exits:/);
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
    await waitFor(() => fs.existsSync(sock), 'the API socket');
    assert.equal((await request(sock, 'PUT', '/logger', { log_path: log, level: 'Info', show_level: true })).status, 204);
    assert.equal((await request(sock, 'PUT', '/metrics', { metrics_path: metrics })).status, 204);
    assert.match((await request(sock, 'PUT', '/metrics', { metrics_path: metrics })).text, /Reinitialization of metrics not allowed/);
    assert.match((await request(sock, 'GET', '/nowhere')).text, /Invalid request method and\/or path/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
  assert.match(fs.readFileSync(log, 'utf8'), /:ERROR\] The API request GET \/nowhere failed with status 400/);
  const last = JSON.parse(fs.readFileSync(metrics, 'utf8').trim().split('\n').pop()!);
  assert.equal(last.put_api_requests.metrics_count, 2, 'the exit line counts both PUT /metrics (no line was written in between)');
  assert.equal(last.put_api_requests.metrics_fails, 1);
});
