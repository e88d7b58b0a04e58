import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import { RecordingLog } from '../testing/harness';
import { BlockRig, ControlledFileOps, errno, tempDisk } from './block-harness';
import { BlkStatus, RequestType } from './constants';

const { IN, OUT, FLUSH } = RequestType;

test('Async: processQueue returns before any I/O completes; completions arrive out of order and each is used as it lands', () => {
  const ops = new ControlledFileOps();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), ioEngine: 'Async', fileOps: ops });
  const reqs = [rig.request(IN, 0n, 512), rig.request(IN, 1n, 512), rig.request(IN, 2n, 512)];
  rig.notify();
  assert.equal(ops.pending.length, 3, 'all three submitted at once');
  assert.equal(rig.used.length, 0, 'nothing completed yet');
  assert.equal(rig.device.metrics.inFlight, 3);
  ops.complete(2);
  ops.complete(0);
  ops.complete(0);
  assert.deepEqual(rig.used.map((u) => u.id), [reqs[2].head, reqs[0].head, reqs[1].head]);
  for (const [i, r] of reqs.entries()) {
    assert.equal(rig.status(r), BlkStatus.OK);
    assert.equal(rig.data(r, 512)[0], (512 * i) & 0xff);
  }
  assert.equal(rig.interrupt.calls, 4, 'the notification, then one signal per completion (EVENT_IDX may suppress them)');
  assert.equal(rig.device.metrics.inFlight, 0);
});

test('Async with the real thread pool: a write then a read of the same sector round-trip through the file', async () => {
  const file = tempDisk(64 * 1024, () => 0);
  const rig = new BlockRig({ driveId: 'd', path: file, ioEngine: 'Async' });
  const w = rig.request(OUT, 10n, 4096, { data: Buffer.alloc(4096, 0x42) });
  rig.notify();
  while (rig.used.length < 1) await tick();
  const r = rig.request(IN, 10n, 4096);
  rig.notify();
  while (rig.used.length < 2) await tick();
  assert.equal(rig.status(w), BlkStatus.OK);
  assert.equal(rig.status(r), BlkStatus.OK);
  assert.deepEqual(rig.data(r, 4096), Buffer.alloc(4096, 0x42));
  assert.deepEqual(fs.readFileSync(file).subarray(5120, 5120 + 4096), Buffer.alloc(4096, 0x42));
});

test('Async flush waits for the writes before it, then fdatasync, then completes; later writes do not hold it', () => {
  const ops = new ControlledFileOps();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), ioEngine: 'Async', cacheType: 'Writeback', fileOps: ops });
  const w1 = rig.request(OUT, 0n, 512, { data: Buffer.alloc(512, 1) });
  const w2 = rig.request(OUT, 1n, 512, { data: Buffer.alloc(512, 2) });
  const f = rig.request(FLUSH, 0n, 0);
  const w3 = rig.request(OUT, 2n, 512, { data: Buffer.alloc(512, 3) });
  rig.notify();
  assert.deepEqual(ops.pending.map((p) => p.op), ['write', 'write', 'write'], 'the flush is not started while w1, w2 run');
  ops.complete(1); // w2
  ops.complete(1); // w3: after the flush, so it does not hold it
  assert.deepEqual(ops.pending.map((p) => p.op), ['write']);
  ops.complete(0); // w1: now every write before the flush is done
  assert.deepEqual(ops.pending.map((p) => p.op), ['fdatasync']);
  assert.equal(rig.status(f), 0xee, 'not completed before fdatasync returns');
  ops.complete(0);
  assert.equal(ops.fdatasyncs, 1);
  assert.deepEqual(rig.used.map((u) => u.id), [w2.head, w3.head, w1.head, f.head]);
  assert.equal(rig.status(f), BlkStatus.OK);
});

test('Async: a failed write or fdatasync is IOERR for that request; the others complete', () => {
  const ops = new ControlledFileOps();
  const log = new RecordingLog();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), ioEngine: 'Async', cacheType: 'Writeback', fileOps: ops, log });
  ops.failNext = errno('ENOSPC');
  const w = rig.request(OUT, 0n, 512, { data: Buffer.alloc(512) });
  const r = rig.request(IN, 0n, 512);
  rig.notify();
  ops.complete(0);
  ops.complete(0);
  ops.failNext = errno('EIO');
  const f = rig.request(FLUSH, 0n, 0);
  rig.notify();
  ops.complete(0);
  assert.deepEqual([rig.status(w), rig.status(r), rig.status(f)], [BlkStatus.IOERR, BlkStatus.OK, BlkStatus.IOERR]);
  assert.equal(rig.device.metrics.ioErrors, 2);
  assert.match(log.errors[0], /a write failed on .*: ENOSPC; the guest gets an I\/O error/);
});

test('Async: a completion after the driver reset the device does not touch the rings', () => {
  const ops = new ControlledFileOps();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192), ioEngine: 'Async', fileOps: ops });
  rig.request(IN, 0n, 512);
  rig.notify();
  rig.device.reset();
  ops.complete(0);
  assert.equal(rig.used.length, 0);
  assert.equal(rig.device.metrics.inFlight, 0);
});
