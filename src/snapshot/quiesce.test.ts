/**
 * Async block requests in flight when a snapshot is taken: creation waits for the host I/O to
 * land (so the saved queues are exact) and, if it never does, fails with EDEVICEBUSY instead of
 * saving a half-done request or hanging the API (docs/reliability.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Vmm } from '../vmm/vmm';
import { quiesceDevices } from './create';

const vmmWith = (inFlight: () => number) => ({ devices: { inFlight } }) as unknown as Vmm;

test('requests in flight at snapshot: creation waits until they complete', async () => {
  let pending = 3;
  const completions = setInterval(() => { if (pending > 0) pending--; }, 5);
  const t0 = Date.now();
  await quiesceDevices(vmmWith(() => pending), 2000);
  clearInterval(completions);
  assert.equal(pending, 0);
  assert.ok(Date.now() - t0 >= 10, 'it waited for the completions');
});

test('a request that never completes: EDEVICEBUSY after the timeout, naming the count', async () => {
  await assert.rejects(quiesceDevices(vmmWith(() => 2), 50), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EDEVICEBUSY');
    assert.match(err.message, /2 requests in flight after 50 ms/);
    return true;
  });
});
