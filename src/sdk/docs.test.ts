import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

test('docs/sdk.md shows every example verbatim', () => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'sdk.md'), 'utf8');
  for (const f of fs.readdirSync(path.join(root, 'examples', 'sdk'))) {
    const src = fs.readFileSync(path.join(root, 'examples', 'sdk', f), 'utf8');
    assert.ok(doc.includes(`\`examples/sdk/${f}\`:\n\`\`\`ts\n${src}\`\`\``), f);
  }
});

test('the examples type-check against the package\'s declarations', () => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'examples', 'tsconfig.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
