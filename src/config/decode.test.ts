import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '../api/wire/definitions';
import { decode, DecodeError, deserializationMessage, serdeOneOf } from './decode';
import { parseMachineConfig, parseMachineConfigUpdate } from './machine-config';
import { ConfigError } from './validate';

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof DecodeError, `expected a DecodeError, got ${String(err)}`);
    return err;
  }
  assert.fail('no error');
}

test('a valid body decodes to its wire type; absent and null optional fields are left out', () => {
  const d = decode(wire.Drive, { drive_id: 'a', is_root_device: true, partuuid: null, rate_limiter: { ops: { size: 1, refill_time: 2 } } }, 'drive');
  assert.deepEqual(d, { drive_id: 'a', is_root_device: true, rate_limiter: { ops: { size: 1, refill_time: 2 } } });
});

test('errors carry both the sentence and serde\'s words, with the place', () => {
  const missing = decodeError(() => decode(wire.MachineConfiguration, { mem_size_mib: 128 }, 'machine-config'));
  assert.equal(missing.message, 'machine-config: missing field `vcpu_count`.');
  assert.equal(missing.serdeText, 'missing field `vcpu_count`');
  assert.equal(missing.code, 'EBODY');
  assert.equal(deserializationMessage(missing, '{"mem_size_mib": 128}'), 'An error occurred when deserializing the json body of a request: missing field `vcpu_count` at line 1 column 21.');
  assert.equal(deserializationMessage(decodeError(() => decode(wire.MachineConfiguration, { vcpu_count: 2 }, 'm')), '{"vcpu_count": 2}'),
    'An error occurred when deserializing the json body of a request: missing field `mem_size_mib` at line 1 column 17.');
  assert.equal(deserializationMessage(missing, '{\n  "mem_size_mib": 128\n}'), 'An error occurred when deserializing the json body of a request: missing field `vcpu_count` at line 3 column 1.');

  const type = decodeError(() => decode(wire.MachineConfiguration, { vcpu_count: '-2', mem_size_mib: 1 }, 'machine-config'));
  assert.equal(type.message, 'machine-config: field `vcpu_count` must be an integer.');
  assert.equal(deserializationMessage(type, ''), 'An error occurred when deserializing the json body of a request: invalid type: string "-2", expected an integer (at `vcpu_count`).');
  const huge = decodeError(() => decode(wire.MachineConfiguration, { vcpu_count: 1, mem_size_mib: 2 ** 64 }, 'm'));
  assert.match(huge.serdeText, /^invalid type: floating point `18446744073709552000`, expected an integer$/);
  assert.match(decodeError(() => decode(wire.MachineConfiguration, { vcpu_count: 1, mem_size_mib: 1, smt: 'random_string' }, 'm')).serdeText, /^invalid type: string "random_string", expected a boolean$/);

  const variant = decodeError(() => decode(wire.MmdsConfig, { network_interfaces: [], version: 'foo' }, 'mmds-config'));
  assert.equal(variant.serdeText, 'unknown variant `foo`, expected `V1` or `V2`');
  assert.equal(variant.message, 'mmds-config: field `version` must be one of "V1", "V2".');
  const unknown = decodeError(() => decode(wire.BootSource, { kernel_image_path: 'k', cmdline: '' }, 'boot-source'));
  assert.equal(unknown.serdeText, 'unknown field `cmdline`, expected one of `kernel_image_path`, `boot_args`, `initrd_path`');

  const nested = decodeError(() => decode(wire.Drive, { drive_id: 'a', is_root_device: false, rate_limiter: { bandwidth: { size: 1 } } }, 'drives[0]'));
  assert.equal(nested.message, 'drives[0].rate_limiter.bandwidth: missing field `refill_time`.');
  assert.deepEqual(nested.path, ['rate_limiter', 'bandwidth']);
  assert.equal(deserializationMessage(nested, ''), 'An error occurred when deserializing the json body of a request: missing field `refill_time` (at `rate_limiter.bandwidth`).');
  const item = decodeError(() => decode(wire.CpuConfig, { kvm_capabilities: ['1', 2] }, 'cpu-config'));
  assert.equal(item.message, 'cpu-config.kvm_capabilities[1]: must be a string.');
  assert.equal(deserializationMessage(item, ''), 'An error occurred when deserializing the json body of a request: invalid type: integer `2`, expected a string (at `kvm_capabilities[1]`).');
  assert.equal(decodeError(() => decode(wire.BootSource, [], 'boot-source')).serdeText, 'invalid type: sequence, expected a JSON object');
});

test('an integer outside the schema\'s range is a rule of the resource, not a parse error', () => {
  assert.throws(() => decode(wire.MachineConfiguration, { vcpu_count: 33, mem_size_mib: 1 }, 'machine-config'),
    (e: unknown) => e instanceof ConfigError && !(e instanceof DecodeError) && e.message === 'machine-config: field `vcpu_count` is 33, but must be between 1 and 32.');
});

test('serde lists expected names as it does', () => {
  assert.equal(serdeOneOf(['a']), '`a`');
  assert.equal(serdeOneOf(['a', 'b']), '`a` or `b`');
  assert.equal(serdeOneOf(['a', 'b', 'c']), 'one of `a`, `b`, `c`');
});

test('a memory size of 0 (or odd with 2M pages) gets Firecracker\'s phrase', () => {
  const phrase = /The memory size \(MiB\) is either 0, or not a multiple of the configured page size\./;
  assert.throws(() => parseMachineConfig({ vcpu_count: 1, mem_size_mib: 0 }), phrase);
  assert.throws(() => parseMachineConfig({ vcpu_count: 1, mem_size_mib: 3, huge_pages: '2M' }), phrase);
  assert.deepEqual(parseMachineConfigUpdate({ mem_size_mib: 0 }), { memSizeMib: 0 }, 'a PATCH is checked once merged');
});
