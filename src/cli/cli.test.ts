/** The `sparkler` executable as a user runs it: flags, exit codes, messages, a tiny guest boot. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tinyKernel } from '../testing/tiny-guests';
import { detectKvmHost } from '../host/kvm-host';
import { tempDir } from '../testing/temp-dir';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const REFERENCE = path.resolve(__dirname, '..', '..', '..', 'shared', 'reference', 'firecracker');

function sparkler(args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeConfig(config: unknown): string {
  const dir = tempDir('sparkler-cli-');
  const file = path.join(dir, 'vm.json');
  fs.writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
  return file;
}

function tinyConfig(vcpuCount: number): string {
  const dir = tempDir('sparkler-cli-');
  fs.writeFileSync(path.join(dir, 'tiny.elf'), tinyKernel());
  return writeConfig({
    'boot-source': { kernel_image_path: path.join(dir, 'tiny.elf'), boot_args: 'console=ttyS0 reboot=k' },
    'machine-config': { vcpu_count: vcpuCount, mem_size_mib: 128 },
  });
}

test('--version prints the version', () => {
  const r = sparkler(['--version']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^Firecracker v\d+\.\d+\.\d+ \(Sparkler v\d+\.\d+\.\d+\)\n$/);
});

test('bad arguments exit 153 with a sentence', () => {
  const r = sparkler(['--no-such-flag']);
  assert.equal(r.code, 153);
  assert.match(r.stderr, /Unknown option '--no-such-flag'/);
  assert.equal(sparkler(['--no-api']).code, 153);
});

test('an invalid --level exits 152, as Firecracker (BadConfiguration)', () => {
  const r = sparkler(['--level', 'loud']);
  assert.equal(r.code, 152);
  assert.match(r.stderr, /Invalid --level "loud"/);
});

test('a config file that is not JSON exits 1, as Firecracker v1.16.1', () => {
  const r = sparkler(['--no-api', '--config-file', writeConfig('{"boot-source": ')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Configuration for VMM from one single json failed: .*is not valid JSON/);
});

test('a config file missing vcpu_count or mem_size_mib exits 1 naming the field', () => {
  for (const [name, field, fallback] of [
    ['vm_config_missing_mem_size_mib.json', 'mem_size_mib', { vcpu_count: 1 }],
    ['vm_config_missing_vcpu_count.json', 'vcpu_count', { mem_size_mib: 128 }],
  ] as const) {
    const reference = path.join(REFERENCE, name);
    const file = fs.existsSync(reference) ? reference : writeConfig({ 'boot-source': { kernel_image_path: 'k' }, 'machine-config': fallback });
    const r = sparkler(['--no-api', '--config-file', file]);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, new RegExp(`Configuration for VMM from one single json failed: .*missing field \`${field}\``), name);
  }
});

test('a missing config file and a missing kernel are named, with the OS\'s words', () => {
  const noFile = sparkler(['--no-api', '--config-file', '/nonexistent/vm.json']);
  assert.equal(noFile.code, 1);
  assert.match(noFile.stderr, /Cannot read the config file \/nonexistent\/vm\.json: No such file or directory \(os error 2\)/);
  const noKernel = sparkler(['--no-api', '--config-file', writeConfig({
    'boot-source': { kernel_image_path: '/nonexistent/vmlinux' },
    'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
  })]);
  assert.equal(noKernel.code, 1);
  assert.match(noKernel.stderr, /Boot source error: The kernel file cannot be opened: No such file or directory \(os error 2\) \(kernel_image_path "\/nonexistent\/vmlinux"\)/);
});

test('--metadata: a missing file, invalid JSON or a store over --mmds-size-limit ends the VMM with Firecracker\'s phrases', () => {
  const missing = sparkler(['--metadata', '/nonexistent/metadata.json', '--api-sock', path.join(tempDir('sparkler-cli-'), 's')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Unable to open or read from the mmds content file \/nonexistent\/metadata\.json: No such file or directory/);
  const invalid = sparkler(['--metadata', writeConfig('{"latest": '), '--api-sock', path.join(tempDir('sparkler-cli-'), 's')]);
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, /MMDS error: metadata provided not valid json: EOF while parsing an object/);
  const big = writeConfig({ latest: { 'meta-data': { 'ami-id': 'a'.repeat(40) } } });
  for (const flags of [['--mmds-size-limit', '30'], ['--http-api-max-payload-size', '30']]) {
    const r = sparkler(['--metadata', big, ...flags, '--api-sock', path.join(tempDir('sparkler-cli-'), 's')]);
    assert.equal(r.code, 1, flags.join(' '));
    assert.match(r.stderr, /Populating MMDS from file failed: The MMDS patch request doesn't fit\./, flags.join(' '));
  }
});

for (const vcpus of [1, 2]) {
  test(`a tiny guest with ${vcpus} vCPU(s) boots, logs its boot time and ends with exit 0`, { skip: kvmUnavailableReason() }, () => {
    const r = sparkler(['--no-api', '--boot-timer', '--config-file', tinyConfig(vcpus)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^OK$/m);
    assert.match(r.stdout, /\[anonymous-instance:main\] Guest-boot-time = +\d+ us \d+ ms/);
  });
}

test('a stock Linux kernel on a PVM host is refused with an explanation, not a silent hang', { skip: detectKvmHost().kind !== 'pvm' && 'this host is not PVM' }, () => {
  const dir = tempDir('sparkler-cli-');
  const fakeBzImage = Buffer.alloc(0x1000);
  fakeBzImage.write('HdrS', 0x202, 'latin1');
  fs.writeFileSync(path.join(dir, 'bzImage'), fakeBzImage);
  const r = sparkler(['--no-api', '--config-file', writeConfig({
    'boot-source': { kernel_image_path: path.join(dir, 'bzImage') },
    'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
  })]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /PVM/);
  assert.match(r.stderr, /emuhost/);
});

test('`sparkler openapi` prints the API document (JSON), the committed docs/openapi.json', () => {
  const r = sparkler(['openapi']);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { swagger: string; paths: Record<string, unknown> };
  assert.equal(doc.swagger, '2.0');
  assert.ok('/boot-source' in doc.paths);
  assert.equal(r.stdout, fs.readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'openapi.json'), 'utf8'));
  assert.equal(sparkler(['openapi', '--bogus']).code, 153);
});
