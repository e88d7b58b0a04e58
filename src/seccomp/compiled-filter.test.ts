/** The default filters compiled at build time: the same bytes as compiling the allow-list now, and never stale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../testing/temp-dir';
import { allowlistFor, defaultFilter, nodeMajor } from './allowlist';
import { compileFilter, encodeProgram } from './bpf';
import { readCompiledFilter, writeCompiledFilters } from './compiled-filter';

const compiledNow = () => Buffer.from(encodeProgram(compileFilter(defaultFilter(allowlistFor(nodeMajor())))));

test('the build wrote this Node\'s default filter, byte for byte the allow-list compiled now', () => {
  const shipped = readCompiledFilter(nodeMajor());
  assert.ok(shipped, 'dist/seccomp has a current compiled filter (`npm run build` writes it)');
  assert.deepEqual(Buffer.from(shipped), compiledNow());
});

test('a compiled filter older than its allow-list module is not used', () => {
  const dir = tempDir('sparkler-bpf-');
  const list = path.join(dir, `allowlist-node${nodeMajor()}.js`);
  fs.writeFileSync(list, '');
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(list, old, old);
  const [file] = writeCompiledFilters(dir);
  assert.deepEqual(Buffer.from(readCompiledFilter(nodeMajor(), dir)!), compiledNow());
  const older = new Date(Date.now() - 120_000);
  fs.utimesSync(file!, older, older);
  assert.equal(readCompiledFilter(nodeMajor(), dir), undefined, 'stale: the VMM compiles the list itself');
  assert.equal(readCompiledFilter(99, dir), undefined, 'no list for that Node');
});
