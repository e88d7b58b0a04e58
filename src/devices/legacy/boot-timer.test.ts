import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BootTimer, formatBootTime } from './boot-timer';

function setup(wallUs: number, cpuUs: number) {
  const lines: string[] = [];
  const clock = { wallUs: () => wallUs, cpuUs: () => cpuUs };
  const timer = new BootTimer((l) => lines.push(l), { startWallUs: 1_000_000, startCpuUs: 500, clock });
  return { timer, lines };
}

test('a byte write of 123 at offset 0 logs Firecracker\'s boot-time line', () => {
  const { timer, lines } = setup(1_000_000 + 123_456, 500 + 7_890);
  timer.write(0, Buffer.of(123));
  assert.deepEqual(lines, ['Guest-boot-time = 123456 us 123 ms,   7890 CPU us 7 CPU ms']);
  assert.deepEqual(timer.lastBootTime, { wallUs: 123_456, cpuUs: 7_890 });
});

test('the microsecond fields are right-aligned to width 6 and grow past it', () => {
  assert.equal(formatBootTime(999, 0), 'Guest-boot-time =    999 us 0 ms,      0 CPU us 0 CPU ms');
  assert.equal(formatBootTime(12_345_678, 1_999), 'Guest-boot-time = 12345678 us 12345 ms,   1999 CPU us 1 CPU ms');
});

test('other writes and all reads do nothing', () => {
  const { timer, lines } = setup(2_000_000, 1_000);
  timer.write(0, Buffer.of(122));
  timer.write(1, Buffer.of(123));
  timer.write(0, Buffer.of(123, 0));
  const b = Buffer.alloc(4, 0xff);
  timer.read(0, b);
  assert.deepEqual(b, Buffer.alloc(4));
  assert.equal(lines.length, 0);
  assert.equal(timer.lastBootTime, undefined);
});

test('the default clock measures from process start', () => {
  const lines: string[] = [];
  const timer = new BootTimer((l) => lines.push(l));
  timer.write(0, Buffer.of(123));
  assert.match(lines[0], /^Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms$/);
  assert.ok(timer.lastBootTime!.wallUs > 0 && timer.lastBootTime!.cpuUs > 0);
});
