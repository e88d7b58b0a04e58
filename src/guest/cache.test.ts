import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { buildOnce, cacheRoot, type Builder } from './cache';
import { tempDir } from '../testing/temp-dir';

const HASH = 'ab'.repeat(32);
const tempRoot = () => tempDir('sparkler-cache-');

/** A builder that writes one output file and counts its calls. */
function countingBuilder(delayMs = 0): Builder & { calls: number } {
  const b = Object.assign(
    async (out: string) => {
      b.calls++;
      await new Promise((r) => setTimeout(r, delayMs));
      writeFileSync(path.join(out, 'thing'), `built ${b.calls}`);
    },
    { calls: 0 },
  );
  return b;
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$']);
  return Number.parseInt(r.stdout.toString(), 10);
}

test('the cache root comes from SPARKLER_CACHE, else /var/cache/sparkler', () => {
  const saved = process.env['SPARKLER_CACHE'];
  try {
    process.env['SPARKLER_CACHE'] = '/tmp/somewhere';
    assert.equal(cacheRoot(), '/tmp/somewhere');
    delete process.env['SPARKLER_CACHE'];
    assert.equal(cacheRoot(), '/var/cache/sparkler');
  } finally {
    if (saved === undefined) delete process.env['SPARKLER_CACHE'];
    else process.env['SPARKLER_CACHE'] = saved;
  }
});

test('an artifact is built once into <root>/<kind>/<hash> and then reused', async () => {
  const root = tempRoot();
  const build = countingBuilder();
  const dir = await buildOnce({ root, kind: 'thing', hash: HASH, build, outputs: ['thing'] });
  assert.equal(dir, path.join(root, 'thing', HASH));
  assert.equal(readFileSync(path.join(dir, 'thing'), 'utf8'), 'built 1');
  assert.equal(await buildOnce({ root, kind: 'thing', hash: HASH, build, outputs: ['thing'] }), dir);
  assert.equal(build.calls, 1);
  assert.deepEqual(readdirSync(path.join(root, 'tmp')), [], 'no temp folder or lock is left');
});

test('concurrent requests for the same artifact build it once', async () => {
  const root = tempRoot();
  const build = countingBuilder(100);
  const opts = { root, kind: 'thing', hash: HASH, build, outputs: ['thing'], pollMs: 10 };
  const dirs = await Promise.all([buildOnce(opts), buildOnce(opts), buildOnce(opts)]);
  assert.equal(new Set(dirs).size, 1);
  assert.equal(build.calls, 1);
});

test('a failed build leaves neither an artifact nor a temp folder', async () => {
  const root = tempRoot();
  const failing: Builder = async (out) => {
    writeFileSync(path.join(out, 'thing'), 'half');
    throw new Error('make failed');
  };
  await assert.rejects(buildOnce({ root, kind: 'thing', hash: HASH, build: failing, outputs: ['thing'] }), /make failed/);
  assert.equal(existsSync(path.join(root, 'thing', HASH)), false);
  assert.deepEqual(readdirSync(path.join(root, 'tmp')), []);
});

test('a build that forgets an output is refused', async () => {
  const root = tempRoot();
  const build = countingBuilder();
  await assert.rejects(buildOnce({ root, kind: 'thing', hash: HASH, build, outputs: ['thing', 'other'] }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EGUESTBUILD');
    assert.match(err.message, /other/);
    return true;
  });
  assert.equal(existsSync(path.join(root, 'thing', HASH)), false);
});

test('the lock and temp folder of a killed build are cleaned up', async () => {
  const root = tempRoot();
  const dead = deadPid();
  mkdirSync(path.join(root, 'tmp'), { recursive: true });
  writeFileSync(path.join(root, 'tmp', `thing-${HASH}.lock`), `${dead}\n`);
  mkdirSync(path.join(root, 'tmp', `thing-${HASH}.${dead}.abcdef`, 'out'), { recursive: true });
  const build = countingBuilder();
  const dir = await buildOnce({ root, kind: 'thing', hash: HASH, build, outputs: ['thing'], pollMs: 10 });
  assert.equal(readFileSync(path.join(dir, 'thing'), 'utf8'), 'built 1');
  assert.deepEqual(readdirSync(path.join(root, 'tmp')), []);
});

test('a waiter returns the artifact that a live lock holder places', async () => {
  const root = tempRoot();
  mkdirSync(path.join(root, 'tmp'), { recursive: true });
  // Our own pid is alive: the lock looks held by a running build.
  const lock = path.join(root, 'tmp', `thing-${HASH}.lock`);
  writeFileSync(lock, `${process.pid}\n`);
  const build = countingBuilder();
  const waiting = buildOnce({ root, kind: 'thing', hash: HASH, build, outputs: ['thing'], pollMs: 10 });
  await new Promise((r) => setTimeout(r, 50));
  await fsp.mkdir(path.join(root, 'thing', HASH), { recursive: true });
  assert.equal(await waiting, path.join(root, 'thing', HASH));
  assert.equal(build.calls, 0);
});
