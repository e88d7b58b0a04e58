import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { featureBit } from '../features';
import { RecordingLog } from '../testing/harness';
import { BlockRig, ControlledFileOps, errno, tempDisk } from './block-harness';
import { BlkFeature, BlkStatus, RequestType, SEG_MAX } from './constants';
import { DriveFileError } from './disk';
import { VirtioBlock } from './device';

const { IN, OUT, FLUSH, GET_ID, DISCARD } = RequestType;

test('features and config: SEG_MAX always, RO and FLUSH as configured, capacity in whole 512-byte sectors', () => {
  const file = tempDisk(1024 * 1024 + 100);
  const plain = new VirtioBlock({ driveId: 'd', path: file });
  assert.equal(plain.features, featureBit(BlkFeature.SEG_MAX));
  const ro = new VirtioBlock({ driveId: 'd', path: file, readOnly: true, cacheType: 'Writeback' });
  assert.equal(ro.features, featureBit(BlkFeature.SEG_MAX) | featureBit(BlkFeature.RO) | featureBit(BlkFeature.FLUSH));
  const config = Buffer.alloc(16);
  plain.readConfig(0, config);
  assert.equal(config.readBigUInt64LE(0), 2048n, 'the 100-byte tail is not a sector');
  assert.equal(config.readUInt32LE(12), SEG_MAX);
  const tail = Buffer.alloc(4);
  plain.readConfig(60, tail);
  assert.deepEqual(tail, Buffer.alloc(4), 'fields we do not offer read as 0');
});

test('a missing or unopenable backing file is a DriveFileError naming the path', () => {
  assert.throws(() => new VirtioBlock({ driveId: 'd', path: '/nonexistent/disk.img' }), (e: unknown) =>
    e instanceof DriveFileError && e.code === 'EDRIVEFILE' && /\/nonexistent\/disk.img: it does not exist/.test(e.message));
  assert.throws(() => new VirtioBlock({ driveId: 'd', path: '/tmp' }), DriveFileError);
});

test('read: the sectors land in the guest buffer; used length is data + status', () => {
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(8192) });
  const r = rig.request(IN, 2n, 1024);
  rig.notify();
  assert.equal(rig.status(r), BlkStatus.OK);
  assert.deepEqual(rig.data(r, 1024), Buffer.from(Array.from({ length: 1024 }, (_, i) => (1024 + i) & 0xff)));
  assert.deepEqual(rig.used, [{ id: r.head, len: 1025 }]);
  assert.equal(rig.interrupt.used, 1);
  assert.equal(rig.device.metrics.readCount, 1);
  assert.equal(rig.device.metrics.readBytes, 1024);
});

test('write: the data reaches the file at the sector offset', () => {
  const file = tempDisk(8192, () => 0);
  const rig = new BlockRig({ driveId: 'd', path: file });
  const r = rig.request(OUT, 3n, 512, { data: Buffer.alloc(512, 0x5a) });
  rig.notify();
  assert.equal(rig.status(r), BlkStatus.OK);
  assert.deepEqual(rig.used, [{ id: r.head, len: 1 }]);
  const disk = fs.readFileSync(file);
  assert.deepEqual(disk.subarray(1536, 2048), Buffer.alloc(512, 0x5a));
  assert.deepEqual(disk.subarray(0, 1536), Buffer.alloc(1536));
  assert.equal(rig.device.metrics.writeBytes, 512);
});

test('read-only drive: a write completes with IOERR and the file is unchanged; reads work', () => {
  const file = tempDisk(4096, () => 7);
  const rig = new BlockRig({ driveId: 'd', path: file, readOnly: true });
  const w = rig.request(OUT, 0n, 512, { data: Buffer.alloc(512, 1) });
  const r = rig.request(IN, 0n, 512);
  rig.notify();
  assert.equal(rig.status(w), BlkStatus.IOERR);
  assert.equal(rig.status(r), BlkStatus.OK);
  assert.deepEqual(fs.readFileSync(file), Buffer.alloc(4096, 7));
  assert.equal(rig.device.metrics.readOnlyWrites, 1);
});

test('flush: Writeback calls fdatasync before completing; Unsafe completes without it', () => {
  const ops = new ControlledFileOps();
  const wb = new BlockRig({ driveId: 'd', path: tempDisk(4096), cacheType: 'Writeback', fileOps: ops });
  const f = wb.request(FLUSH, 0n, 0);
  wb.notify();
  assert.equal(ops.fdatasyncs, 1);
  assert.equal(wb.status(f), BlkStatus.OK);
  assert.deepEqual(wb.used, [{ id: f.head, len: 1 }]);
  const unsafe = new BlockRig({ driveId: 'd', path: tempDisk(4096), fileOps: ops });
  const g = unsafe.request(FLUSH, 0n, 0);
  unsafe.notify();
  assert.equal(ops.fdatasyncs, 1);
  assert.equal(unsafe.status(g), BlkStatus.OK);
});

test('GET_ID writes the drive_id as a 20-byte serial', () => {
  const rig = new BlockRig({ driveId: 'rootfs', path: tempDisk(4096) });
  const r = rig.request(GET_ID, 0n, 20);
  rig.notify();
  assert.equal(rig.status(r), BlkStatus.OK);
  assert.deepEqual(rig.data(r, 20), Buffer.concat([Buffer.from('rootfs'), Buffer.alloc(14)]));
  assert.deepEqual(rig.used, [{ id: r.head, len: 21 }]);
});

test('status codes: beyond capacity is IOERR, an unsupported type is UNSUPP, and both leave the disk alone', () => {
  const file = tempDisk(4096, () => 3);
  const rig = new BlockRig({ driveId: 'd', path: file, log: new RecordingLog() });
  const beyond = rig.request(OUT, 8n, 512, { data: Buffer.alloc(512) });
  const straddle = rig.request(IN, 7n, 1024);
  const discard = rig.request(DISCARD, 0n, 16, { dataWritable: false });
  rig.notify();
  assert.equal(rig.status(beyond), BlkStatus.IOERR);
  assert.equal(rig.status(straddle), BlkStatus.IOERR);
  assert.equal(rig.status(discard), BlkStatus.UNSUPP);
  assert.deepEqual(rig.used.map((u) => u.len), [1, 1, 1]);
  assert.deepEqual(fs.readFileSync(file), Buffer.alloc(4096, 3));
  assert.equal(rig.device.metrics.invalidRequests, 2);
  assert.equal(rig.device.metrics.unsupportedCount, 1);
});

test('malformed chains: no status byte, a short header, a writable header; none crashes and the next request works', () => {
  const log = new RecordingLog();
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(4096), log });
  const noStatus = rig.chain([{ addr: 0x2800, len: 16 }, { addr: 0x10000, len: 512 }]);
  const short = rig.chain([{ addr: 0x2800, len: 8 }, { addr: 0x3800, len: 1, write: true }]);
  const writableHeader = rig.chain([{ addr: 0x2800, len: 16, write: true }, { addr: 0x3801, len: 1, write: true }]);
  const good = rig.request(IN, 0n, 512);
  rig.notify();
  assert.deepEqual(rig.used, [
    { id: noStatus, len: 0 }, { id: short, len: 1 }, { id: writableHeader, len: 1 }, { id: good.head, len: 513 },
  ]);
  assert.deepEqual([...rig.memory.read(0x3800, 2)], [BlkStatus.IOERR, BlkStatus.IOERR]);
  assert.equal(rig.status(good), BlkStatus.OK);
  assert.equal(log.errors.length, 3);
  assert.match(log.errors[0], /no device-writable status byte/);
});

test('host I/O failures (EIO, ENOSPC, a file that shrank) become IOERR for that request only', () => {
  const ops = new ControlledFileOps();
  const file = tempDisk(8192);
  const rig = new BlockRig({ driveId: 'd', path: file, fileOps: ops, cacheType: 'Writeback', log: new RecordingLog() });
  ops.failNext = errno('EIO', 'EIO: i/o error, read');
  const a = rig.request(IN, 0n, 512);
  rig.notify();
  ops.failNext = errno('ENOSPC', 'ENOSPC: no space left on device, write');
  const b = rig.request(OUT, 0n, 512, { data: Buffer.alloc(512) });
  rig.notify();
  ops.failNext = errno('EIO');
  const c = rig.request(FLUSH, 0n, 0);
  rig.notify();
  fs.truncateSync(file, 1024); // the file shrinks under the drive: reads past its end find nothing
  const d = rig.request(IN, 4n, 512);
  const e = rig.request(IN, 0n, 512);
  rig.notify();
  assert.deepEqual([a, b, c, d, e].map((r) => rig.status(r)), [BlkStatus.IOERR, BlkStatus.IOERR, BlkStatus.IOERR, BlkStatus.IOERR, BlkStatus.OK]);
  assert.equal(rig.device.metrics.ioErrors, 4);
});

test('after a reset the device ignores notifications until the driver activates it again', () => {
  const rig = new BlockRig({ driveId: 'd', path: tempDisk(4096) });
  rig.device.reset();
  rig.request(IN, 0n, 512);
  rig.notify();
  assert.equal(rig.used.length, 0, 'a reset device does not touch the rings');
});
