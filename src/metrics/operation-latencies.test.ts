import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from './metrics';
import { OperationLatencies } from './operation-latencies';

test('latencies_us: the latest duration of each operation, repeated on every line; a failed operation is not recorded', async () => {
  const metrics = new Metrics();
  const latencies = new OperationLatencies();
  latencies.register(metrics);
  await latencies.time('pause_vm', () => new Promise((r) => setTimeout(r, 20)));
  await assert.rejects(latencies.time('resume_vm', () => { throw new Error('no'); }));
  const first = metrics.line().latencies_us as Record<string, number>;
  assert.ok(first.pause_vm >= 15_000 && first.pause_vm < 2_000_000, `${first.pause_vm} us`);
  assert.equal(first.vmm_pause_vm, first.pause_vm);
  assert.equal(first.resume_vm, 0);
  assert.equal(first.full_create_snapshot, 0);
  const second = metrics.line().latencies_us as Record<string, number>;
  assert.equal(second.pause_vm, first.pause_vm, 'a level, not a delta');
});
