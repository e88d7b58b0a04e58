import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DriveConfig } from '../../../config/drive';
import { tempDir } from '../../../testing/temp-dir';
import type { DeviceContext } from '../device-context';
import { blockSpec } from './spec';

const quiet = { error: () => {}, warn: () => {} };
const context: DeviceContext = {
  log: quiet, host: quiet, clock: { nowNs: () => 0n }, timers: { setTimeout: () => 0, clearTimeout: () => {} },
  fds: { watch: () => ({ setEvents: () => {}, close: () => {} }) },
};

function drive(id: string, root: boolean, file: string): DriveConfig {
  return { driveId: id, pathOnHost: file, isRootDevice: root, isReadOnly: false, cacheType: 'Unsafe', ioEngine: 'Sync' };
}

test('drives: the root drive first with its root= parameters; a second root drive is refused', () => {
  const file = path.join(tempDir('sparkler-blockspec-'), 'a.img');
  fs.writeFileSync(file, Buffer.alloc(512));
  assert.deepEqual(blockSpec.instances({ drives: [drive('data', false, file), drive('root', true, file)] }).map((d) => d.driveId), ['root', 'data']);
  assert.throws(() => blockSpec.instances({ drives: [drive('a', true, file), drive('b', true, file)] }), /Only one drive can be the root device; `b` is a second one/);
  const created = blockSpec.create(drive('root', true, file), context);
  assert.equal(created.cmdline, 'root=/dev/vda rw');
  assert.equal(created.metricsGroup, 'block_root');
  assert.deepEqual(created.gauges, ['in_flight']);
  created.dispose();
});

test('PATCH after boot: Firecracker\'s phrases for an empty update and a file that cannot be opened', () => {
  const file = path.join(tempDir('sparkler-blockspec-'), 'a.img');
  fs.writeFileSync(file, Buffer.alloc(512));
  const created = blockSpec.create(drive('d', false, file), context);
  assert.throws(() => created.update!({ driveId: 'd' }), /^DriveConfigError: Running method expected different backend/);
  assert.throws(() => created.update!({ driveId: 'd', pathOnHost: 'foo.bar' }),
    /Error manipulating the backing file: No such file or directory \(os error 2\) foo\.bar/);
  fs.writeFileSync(file, Buffer.alloc(4096));
  created.update!({ driveId: 'd', pathOnHost: file });
  created.dispose();
});
