import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgumentError, parseVmmArgs } from './args';

test('defaults match Firecracker', () => {
  const a = parseVmmArgs([]);
  assert.equal(a.apiSock, '/run/firecracker.socket');
  assert.equal(a.id, 'anonymous-instance');
  assert.equal(a.httpApiMaxPayloadSize, 51200);
  assert.equal(a.noApi, false);
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
  assert.throws(() => parseVmmArgs(['--level', 'loud']), /Invalid --level/);
  assert.throws(() => parseVmmArgs(['--http-api-max-payload-size=-1']), /positive integer/);
  assert.throws(() => parseVmmArgs(['stray']), ArgumentError);
});
