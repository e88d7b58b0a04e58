import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError, InvalidLevelError, parseVmmArgs } from './args';

test('defaults match Firecracker', () => {
  const a = parseVmmArgs([]);
  assert.equal(a.apiSock, '/run/firecracker.socket');
  assert.equal(a.id, 'anonymous-instance');
  assert.equal(a.httpApiMaxPayloadSize, 51200);
  assert.equal(a.noApi, false);
  assert.deepEqual(a.startTimes, {});
  assert.deepEqual(a.mmds, { sizeLimit: 51200 }, 'the MMDS limit defaults to the payload limit');
  assert.deepEqual(parseVmmArgs(['--http-api-max-payload-size', '30']).mmds, { sizeLimit: 30 });
});

test('the jailer\'s start times and the MMDS flags parse, as separate argv or with =', () => {
  const a = parseVmmArgs(['--start-time-us', '123', '--start-time-cpu-us=45', '--parent-cpu-time-us', '6', '--metadata', 'm.json', '--mmds-size-limit', '51200']);
  assert.deepEqual(a.startTimes, { startTimeUs: 123, startTimeCpuUs: 45, parentCpuTimeUs: 6 });
  assert.deepEqual(a.mmds, { metadataPath: 'm.json', sizeLimit: 51200 });
  assert.throws(() => parseVmmArgs(['--start-time-us=-1']), /Invalid --start-time-us "-1": expected a whole number/);
  assert.throws(() => parseVmmArgs(['--parent-cpu-time-us', '1.5']), ArgumentError);
  assert.throws(() => parseVmmArgs(['--start-time-cpu-us', '99999999999999999999']), ArgumentError);
  assert.throws(() => parseVmmArgs(['--mmds-size-limit', '0']), /Invalid --mmds-size-limit "0": expected a positive integer/);
  assert.throws(() => parseVmmArgs(['--metadata', '']), /Invalid --metadata/);
  assert.throws(() => parseVmmArgs(['--metadata']), ArgumentError);
});

test('flags parse', () => {
  const a = parseVmmArgs(['--no-api', '--config-file', 'vm.json', '--boot-timer', '--level', 'debug', '--id', 'vm-1']);
  assert.equal(a.configFile, 'vm.json');
  assert.equal(a.bootTimer, true);
  assert.equal(a.level, 'Debug');
  assert.equal(a.id, 'vm-1');
});

test('bad arguments are ArgumentErrors with a sentence', () => {
  assert.throws(() => parseVmmArgs(['--bogus']), ArgumentError);
  assert.throws(() => parseVmmArgs(['--no-api']), /--no-api needs --config-file/);
  assert.throws(() => parseVmmArgs(['--id', 'bad id!']), /Invalid --id/);
  assert.throws(() => parseVmmArgs(['--level', 'loud']), (e: unknown) => e instanceof InvalidLevelError && /Invalid --level "loud"/.test((e as Error).message), 'Firecracker exits 152 for it, not 153');
  assert.equal(parseVmmArgs(['--level', 'warn']).level, 'Warning');
  assert.throws(() => parseVmmArgs(['--http-api-max-payload-size', '12abc']), /positive integer/);
  assert.throws(() => parseVmmArgs(['--http-api-max-payload-size=-1']), /positive integer/);
  assert.throws(() => parseVmmArgs(['stray']), ArgumentError);
});
