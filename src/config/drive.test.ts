import { test } from 'node:test';
import assert from 'node:assert/strict';
import { driveToJson, insertDrive, parseDrive, parseDrives, parseDriveUpdate } from './drive';
import { parseEntropy, entropyToJson } from './entropy';
import { ConfigError } from './validate';

const base = { drive_id: 'rootfs', path_on_host: '/img', is_root_device: true };

test('a virtio-block drive parses with Firecracker defaults and round-trips', () => {
  const d = parseDrive(base);
  assert.deepEqual(d, { driveId: 'rootfs', pathOnHost: '/img', isRootDevice: true, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync' });
  assert.deepEqual(parseDrive(driveToJson(d)), d);
  const full = parseDrive({ ...base, partuuid: 'abc', is_read_only: true, cache_type: 'Writeback', io_engine: 'Async', rate_limiter: { ops: { size: 1, refill_time: 2 } } });
  assert.equal(full.cacheType, 'Writeback');
  assert.equal(full.ioEngine, 'Async');
  assert.deepEqual(full.rateLimiter, { ops: { size: 1, oneTimeBurst: 0, refillTimeMs: 2 } });
  assert.deepEqual(parseDrive(driveToJson(full)), full);
});

test('a vhost-user drive has a socket and none of the virtio-block fields', () => {
  const d = parseDrive({ drive_id: 'v', is_root_device: false, socket: '/s' });
  assert.equal(d.socket, '/s');
  assert.equal(d.pathOnHost, undefined);
  assert.deepEqual(parseDrive(driveToJson(d)), d);
  assert.throws(() => parseDrive({ drive_id: 'v', is_root_device: false, socket: '/s', is_read_only: true }), /vhost-user drive \(`socket`\) cannot have `is_read_only`/);
});

test('drive validation errors name the field', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ ...base, drive_id: 'a-b' }, /field `drive_id` is invalid: API Resource IDs can only contain alphanumeric characters and underscores/],
    [{ ...base, drive_id: '' }, /The ID cannot be empty/],
    [{ ...base, drive_id: 'x'.repeat(65) }, /at most 64 characters/],
    [{ path_on_host: '/i', is_root_device: true }, /missing field `drive_id`/],
    [{ drive_id: 'a', path_on_host: '/i' }, /missing field `is_root_device`/],
    [{ drive_id: 'a', is_root_device: false }, /missing field `path_on_host`/],
    [{ ...base, cache_type: 'None' }, /field `cache_type` must be one of "Unsafe", "Writeback"/],
    [{ ...base, io_engine: 'Uring' }, /field `io_engine` must be one of "Sync", "Async"/],
    [{ ...base, is_read_only: 'yes' }, /field `is_read_only` must be true or false/],
    [{ ...base, rate_limiter: { ops: { size: 1 } } }, /drive\.rate_limiter\.ops: missing field `refill_time`/],
    [{ ...base, direct: true }, /unknown field `direct`/],
  ];
  for (const [value, re] of bad) assert.throws(() => parseDrive(value), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(value));
});

test('one root device, kept first; same id replaces', () => {
  const a = parseDrive({ drive_id: 'a', path_on_host: '/a', is_root_device: false });
  const r = parseDrive({ drive_id: 'r', path_on_host: '/r', is_root_device: true });
  let list = insertDrive([], a);
  list = insertDrive(list, r);
  assert.deepEqual(list.map((d) => d.driveId), ['r', 'a']);
  assert.throws(() => insertDrive(list, { ...r, driveId: 'r2' }), /A root block device already exists!/);
});

test('turning a non-root drive into root when another root exists is refused; replacing works', () => {
  const a = parseDrive({ drive_id: 'a', path_on_host: '/a', is_root_device: false });
  const r = parseDrive({ drive_id: 'r', path_on_host: '/r', is_root_device: true });
  const list = insertDrive(insertDrive([], a), r);
  assert.throws(() => insertDrive(list, { ...a, isRootDevice: true }), /A root block device already exists!/);
  const replaced = insertDrive(list, { ...a, isReadOnly: true });
  assert.equal(replaced[1].isReadOnly, true);
  const promoted = insertDrive([a, { ...r, isRootDevice: false }], { ...r, isRootDevice: true });
  assert.deepEqual(promoted.map((d) => d.driveId), ['r', 'a']);
  assert.throws(() => parseDrives([{ ...base }, { ...base, drive_id: 'other' }]), /drives\[1\]: A root block device already exists!/);
  assert.throws(() => parseDrives({}), /drives: expected a JSON array/);
});

test('drive updates and entropy', () => {
  assert.deepEqual(parseDriveUpdate({ drive_id: 'a' }), { driveId: 'a' });
  assert.deepEqual(parseDriveUpdate({ drive_id: 'a', path_on_host: '/n' }), { driveId: 'a', pathOnHost: '/n' });
  assert.throws(() => parseDriveUpdate({ drive_id: 'a', is_read_only: true }), /unknown field `is_read_only`/);
  assert.deepEqual(parseEntropy({}), {});
  assert.deepEqual(parseEntropy({ rate_limiter: { bandwidth: { size: 10, refill_time: 100 } } }).rateLimiter?.bandwidth?.size, 10);
  assert.throws(() => parseEntropy({ rate: 1 }), /entropy: unknown field `rate`/);
  assert.throws(() => parseEntropy([]), /entropy: expected a JSON object/);
  assert.deepEqual(entropyToJson({}), { rate_limiter: null });
});
