import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseVmConfig, parseVmConfigText, vmConfigToJson } from './vm-config';
import { ConfigError } from './validate';

const REFERENCE = path.resolve(__dirname, '..', '..', '..', 'shared', 'reference', 'firecracker');

const minimal = {
  'boot-source': { kernel_image_path: '/k', boot_args: 'console=ttyS0' },
  'machine-config': { vcpu_count: 2, mem_size_mib: 256 },
};

test('a minimal config parses with Firecracker defaults', () => {
  const c = parseVmConfig(minimal);
  assert.equal(c.bootSource?.kernelImagePath, '/k');
  assert.deepEqual(c.machineConfig, { vcpuCount: 2, memSizeMib: 256, smt: false, trackDirtyPages: false, hugePages: 'None' });
});

test('invalid JSON is a ConfigError that says so', () => {
  assert.throws(() => parseVmConfigText('{', 'vm.json'), (e: unknown) => e instanceof ConfigError && /not valid JSON/.test(e.message));
});

test('missing and out-of-range fields are named', () => {
  const noMem = { ...minimal, 'machine-config': { vcpu_count: 1 } };
  assert.throws(() => parseVmConfig(noMem), /machine-config: missing field `mem_size_mib`/);
  const tooMany = { ...minimal, 'machine-config': { vcpu_count: 33, mem_size_mib: 128 } };
  assert.throws(() => parseVmConfig(tooMany), /`vcpu_count` is 33, but must be between 1 and 32/);
  const odd = { ...minimal, 'machine-config': { vcpu_count: 3, mem_size_mib: 128, smt: true } };
  assert.throws(() => parseVmConfig(odd), /smt enabled, vcpu_count must be 1 or an even number/);
  const wrongType = { ...minimal, 'boot-source': { kernel_image_path: 7 } };
  assert.throws(() => parseVmConfig(wrongType), /`kernel_image_path` must be a string/);
});

test('unknown fields and sections are rejected; every Firecracker section parses', () => {
  assert.throws(() => parseVmConfig({ ...minimal, 'machine-config': { vcpu_count: 1, mem_size_mib: 1, vcpus: 1 } }), /unknown field `vcpus`/);
  assert.throws(() => parseVmConfig({ ...minimal, extra: {} }), /unknown section `extra`/);
  assert.throws(() => parseVmConfig({ ...minimal, vsock: { guest_cid: 3 } }), /vsock: missing field `uds_path`/);
  assert.doesNotThrow(() => parseVmConfig({ ...minimal, vsock: null, 'network-interfaces': [] }));
  const c = parseVmConfig({ ...minimal, vsock: { guest_cid: 3, uds_path: '/v.sock' }, balloon: { amount_mib: 1, deflate_on_oom: true } });
  assert.deepEqual(c.vsock, { guestCid: 3, udsPath: '/v.sock' });
  assert.equal(c.balloon?.amountMib, 1);
});

test('the machine-config section defaults when absent, boot-source is required', () => {
  assert.deepEqual(parseVmConfig({ 'boot-source': { kernel_image_path: '/k' } }).machineConfig, { vcpuCount: 1, memSizeMib: 128, smt: false, trackDirtyPages: false, hugePages: 'None' });
  assert.throws(() => parseVmConfig({ 'machine-config': { vcpu_count: 1, mem_size_mib: 128 } }), /missing section `boot-source`/);
});

test('Firecracker reference examples: the missing-field ones fail with the field named', (t) => {
  if (!fs.existsSync(REFERENCE)) return t.skip('../shared/reference/firecracker is not present');
  const read = (name: string) => fs.readFileSync(path.join(REFERENCE, name), 'utf8');
  assert.throws(() => parseVmConfigText(read('vm_config_missing_mem_size_mib.json'), 'x'), /missing field `mem_size_mib`/);
  assert.throws(() => parseVmConfigText(read('vm_config_missing_vcpu_count.json'), 'x'), /missing field `vcpu_count`/);
});

test('Firecracker reference examples: every valid one parses, and GET /vm/config writes it back to an equal config', (t) => {
  if (!fs.existsSync(REFERENCE)) return t.skip('../shared/reference/firecracker is not present');
  for (const name of fs.readdirSync(REFERENCE).filter((n) => n.endsWith('.json') && !n.includes('missing'))) {
    const config = parseVmConfigText(fs.readFileSync(path.join(REFERENCE, name), 'utf8'), name);
    assert.deepEqual(parseVmConfig(vmConfigToJson(config)), config, name);
  }
});

test('GET /vm/config has exactly Firecracker\'s keys, serial configured or not (clients compare the whole object)', () => {
  const c = parseVmConfig({ 'boot-source': { kernel_image_path: '/k' }, serial: { serial_out_path: '/dev/null' } });
  assert.equal(c.serial?.serialOutPath, '/dev/null', 'the config file may configure the serial console');
  assert.deepEqual(Object.keys(vmConfigToJson(c)).sort(), [
    'balloon', 'boot-source', 'cpu-config', 'drives', 'entropy', 'logger', 'machine-config', 'memory-hotplug', 'metrics',
    'mmds-config', 'network-interfaces', 'pmem', 'vsock',
  ]);
});
