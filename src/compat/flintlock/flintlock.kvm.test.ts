/**
 * flintlock's Firecracker provider replayed against bin/sparkler on the local /dev/kvm with a
 * tiny guest that writes the boot timer and resets: `--id --boot-timer --no-api --config-file C
 * --metadata M` (create.go), the log and metrics files it creates first (ensureState), stdout and
 * stderr to files, stdin empty. The guest reading the metadata over MMDS is in
 * src/e2e/orchestrators.e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { kvmUnavailableReason } from '../../testing/kvm-available';
import { tempDir } from '../../testing/temp-dir';
import { tinyKernel } from '../../testing/tiny-guests';
import { SPARKLER } from '../replay';
import { flintlockArgs, flintlockConfig, flintlockMetadata } from './flintlock';

const skip = kvmUnavailableReason();

test('flintlock: --id <uid> --boot-timer --no-api --config-file --metadata; Debug log with level and origin to its file, metrics to its file, the boot time logged, exit 0', { skip }, async () => {
  const state = tempDir('sparkler-flintlock-');
  const file = (n: string) => path.join(state, n);
  fs.writeFileSync(file('vmlinux'), tinyKernel());
  fs.writeFileSync(file('root.img'), Buffer.alloc(1 << 20));
  // ensureState: the log and metrics files exist (empty) before the VMM starts.
  fs.writeFileSync(file('firecracker.log'), '');
  fs.writeFileSync(file('firecracker.metrics'), '');
  fs.writeFileSync(file('firecracker.cfg'), JSON.stringify(flintlockConfig({
    vcpus: 2, memMiB: 128, kernel: file('vmlinux'), cmdline: 'console=ttyS0 reboot=k panic=1 pci=off', rootVolume: file('root.img'),
    logPath: file('firecracker.log'), metricsPath: file('firecracker.metrics'),
  })));
  fs.writeFileSync(file('metadata.json'), JSON.stringify(flintlockMetadata({ 'meta-data': 'instance_id: ns/vm\n', 'user-data': '#cloud-config\n' })));
  const uid = '01HZX4M6Q8E2J0RYV5T1C9B3KD';
  // startFirecracker: stdout/stderr appended to files, stdin an empty buffer.
  const out = fs.openSync(file('firecracker.stdout'), 'a');
  const err = fs.openSync(file('firecracker.stderr'), 'a');
  const child = spawn(SPARKLER, flintlockArgs(uid, file('firecracker.cfg'), file('metadata.json')), { stdio: ['pipe', out, err] });
  child.stdin!.end();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const log = fs.readFileSync(file('firecracker.log'), 'utf8');
  const context = `exit ${code}\nlog:\n${log}\nstderr:\n${fs.readFileSync(file('firecracker.stderr'), 'utf8')}`;
  assert.equal(code, 0, context);
  assert.match(fs.readFileSync(file('firecracker.stdout'), 'utf8'), /^OK$/m);
  // show_level and show_log_origin: [<id>:<thread>:<LEVEL>:<file>:<line>].
  assert.match(log, new RegExp(`\\[${uid}:main:INFO:[\\w/.-]+:\\d+\\] `), context);
  assert.match(log, /Guest-boot-time\s*=\s*\d+ us/, context);
  const metrics = fs.readFileSync(file('firecracker.metrics'), 'utf8').split('\n').filter(Boolean);
  assert.ok(metrics.length > 0 && metrics.every((l) => 'block' in JSON.parse(l)), context);
});
