import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../ratelimit/fake-clock';
import { whenQuiet } from './when-quiet';

test('the work runs once, quietMs after the last poke', () => {
  const clock = new FakeClock();
  let runs = 0;
  const q = whenQuiet(100, () => { runs++; }, clock);
  clock.advance(90);
  q.poke(); // a request: wait again
  clock.advance(90);
  assert.equal(runs, 0, 'a client talking defers it');
  clock.advance(10);
  assert.equal(runs, 1);
  q.poke();
  clock.advance(500);
  assert.equal(runs, 1, 'once only');
});

test('cancel() stops it for good', () => {
  const clock = new FakeClock();
  let runs = 0;
  const q = whenQuiet(100, () => { runs++; }, clock);
  q.cancel();
  q.poke();
  clock.advance(1000);
  assert.equal(runs, 0);
});
