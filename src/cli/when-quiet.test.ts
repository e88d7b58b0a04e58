import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { whenQuiet } from './when-quiet';

test('the work runs once, quietMs after the last poke', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let runs = 0;
    const q = whenQuiet(100, () => { runs++; });
    mock.timers.tick(90);
    q.poke(); // a request: wait again
    mock.timers.tick(90);
    assert.equal(runs, 0, 'a client talking defers it');
    mock.timers.tick(10);
    assert.equal(runs, 1);
    q.poke();
    mock.timers.tick(500);
    assert.equal(runs, 1, 'once only');
  } finally {
    mock.timers.reset();
  }
});

test('cancel() stops it for good', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    let runs = 0;
    const q = whenQuiet(100, () => { runs++; });
    q.cancel();
    q.poke();
    mock.timers.tick(1000);
    assert.equal(runs, 0);
  } finally {
    mock.timers.reset();
  }
});
