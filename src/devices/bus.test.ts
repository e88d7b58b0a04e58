import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, BusDevice } from './bus';
import { SparklerError } from '../errors';

class Recorder implements BusDevice {
  reads: number[] = [];
  writes: Array<[number, number[]]> = [];
  constructor(private readonly fill: number) {}
  read(offset: number, data: Buffer): void {
    this.reads.push(offset);
    data.fill(this.fill);
  }
  write(offset: number, data: Buffer): void {
    this.writes.push([offset, [...data]]);
  }
}

test('resolve finds the covering device and the offset into it, at both edges', () => {
  const bus = new Bus();
  const a = new Recorder(1);
  const b = new Recorder(2);
  bus.insert(b, 0x3f8, 8, 'serial');
  bus.insert(a, 0x60, 5, 'i8042');
  assert.deepEqual(bus.resolve(0x60), { device: a, offset: 0, name: 'i8042' });
  assert.equal(bus.resolve(0x64)?.offset, 4);
  assert.equal(bus.resolve(0x65), undefined);
  assert.equal(bus.resolve(0x5f), undefined);
  assert.equal(bus.resolve(0x3ff)?.device, b);
  assert.equal(bus.resolve(0x400), undefined);
});

test('resolve works across many devices inserted out of order', () => {
  const bus = new Bus();
  const devices = Array.from({ length: 50 }, (_, i) => new Recorder(i));
  for (const i of [...devices.keys()].reverse()) bus.insert(devices[i], 0xc000_0000 + i * 0x1000, 0x1000, `dev${i}`);
  for (let i = 0; i < 50; i++) {
    const hit = bus.resolve(0xc000_0000 + i * 0x1000 + 0x70);
    assert.equal(hit?.device, devices[i]);
    assert.equal(hit?.offset, 0x70);
  }
});

test('insert refuses overlaps and empty ranges with EBUS', () => {
  const bus = new Bus();
  bus.insert(new Recorder(0), 0x100, 0x10, 'first');
  const isEbus = (e: unknown): boolean => e instanceof SparklerError && e.code === 'EBUS';
  assert.throws(() => bus.insert(new Recorder(0), 0x10f, 1, 'tail'), isEbus);
  assert.throws(() => bus.insert(new Recorder(0), 0xf0, 0x11, 'head'), isEbus);
  assert.throws(() => bus.insert(new Recorder(0), 0x104, 2, 'inside'), isEbus);
  assert.throws(() => bus.insert(new Recorder(0), 0x80, 0x100, 'around'), isEbus);
  assert.throws(() => bus.insert(new Recorder(0), 0x200, 0, 'empty'), isEbus);
  bus.insert(new Recorder(0), 0x110, 1, 'adjacent');
  bus.insert(new Recorder(0), 0xff, 1, 'before');
});

test('read and write reach the device with its offset; unclaimed addresses return false', () => {
  const bus = new Bus();
  const d = new Recorder(0xab);
  bus.insert(d, 0x3f8, 8, 'serial');
  const buf = Buffer.alloc(2);
  assert.equal(bus.read(0x3fd, buf), true);
  assert.deepEqual([...buf], [0xab, 0xab]);
  assert.deepEqual(d.reads, [5]);
  assert.equal(bus.write(0x3f8, Buffer.of(0x41)), true);
  assert.deepEqual(d.writes, [[0, [0x41]]]);
  const untouched = Buffer.alloc(1, 0x11);
  assert.equal(bus.read(0x2f8, untouched), false);
  assert.equal(untouched[0], 0x11);
  assert.equal(bus.write(0x2f8, Buffer.of(1)), false);
});
