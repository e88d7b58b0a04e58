import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLAG_ADDRESS, FLAG_THEN_HALT_GUEST, formatClones, percentiles, pipedPoolSpawn, privateKib } from './clones-bench';

test('percentiles: median of odd and even counts, p95 as the nearest rank', () => {
  assert.deepEqual(percentiles([3, 1, 2]), { median: 2, p95: 3, min: 1, max: 3 });
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual(percentiles(xs), { median: 50.5, p95: 95, min: 1, max: 100 });
  assert.ok(Number.isNaN(percentiles([]).median));
});

test('privateKib adds Private_Dirty and Private_Clean of smaps_rollup', () => {
  const text = 'Rss:               40000 kB\nPss:               30000 kB\nPrivate_Clean:      1200 kB\nPrivate_Dirty:     20000 kB\n';
  assert.equal(privateKib(text), 21200);
});

test('the clone guest spins on the flag byte, then writes its mark and halts', () => {
  // mov $FLAG_ADDRESS,%ebx is the instruction after mov $0x3f8,%dx.
  assert.equal(FLAG_THEN_HALT_GUEST.readUInt8(4), 0xbb);
  assert.equal(FLAG_THEN_HALT_GUEST.readUInt32LE(5), FLAG_ADDRESS);
  assert.equal(FLAG_THEN_HALT_GUEST.subarray(-3).toString('hex'), 'f4ebfd', 'hlt; jmp back to the hlt');
});

test('formatClones puts fresh processes and the warm pool side by side', () => {
  const base = {
    count: 100, inFlight: 1, memMib: 128, allApisReadyMs: 0, spawnToAllRunningMs: 0, firstLoadToAllRunningMs: 0,
    loadMs: percentiles([10, 12]), loadRoundTripMs: percentiles([11, 13]), clonePrivateKib: percentiles([900]),
    idleVmPrivateKib: 9000, privateRatio: 0.1, loadAverage: [1, 1, 1],
  };
  const text = formatClones([
    { ...base, mode: 'fresh', allApisReadyMs: 12000, firstLoadToAllRunningMs: 1500 },
    { ...base, mode: 'pool', allApisReadyMs: 13000, firstLoadToAllRunningMs: 1400 },
  ]);
  const row = (label: string) => text.split('\n').find((l) => l.trimStart().startsWith(label))!.trim().split(/\s{2,}/);
  assert.deepEqual(row('request -> all running').slice(1), ['1500', '1400']);
  assert.deepEqual(row('processes up').slice(1), ['12000', '13000']);
  assert.match(text, /fresh processes\s+warm pool/);
});

test('pipedPoolSpawn keeps the pool launch, pipes the output and records the child by --id', () => {
  const seen: string[] = [];
  const spawn = pipedPoolSpawn((id, child) => { seen.push(id); child.kill('SIGKILL'); });
  const child = spawn(process.execPath, ['-e', '0', '--id', 'vmm-7'], { detached: true, stdio: ['ignore', 'ignore', 'inherit'] });
  assert.deepEqual(seen, ['vmm-7']);
  assert.ok(child.stdout && child.stderr, 'stdout and stderr are pipes, not dropped');
});
