import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { writeBundle } from './bundle';
import { BUNDLE_FILE, CODE_CACHE_FILE, loadBundle } from './launch';
import { unbundledLocation } from './bundle-lines';

/** A miniature dist/: an entry with a shebang, a module, JSON, and a module the bundle leaves out. */
function fakeDist(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-bundle-test-'));
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  put('cli/main.js', "#!/usr/bin/env node\nconst x = require('./x');\nexports.main = (argv) => x.run(argv);\n");
  put('cli/x.js', [
    "const data = require('../data.json');",
    'exports.run = (argv) => ({',
    '  argv, file: __filename, dir: __dirname, data,',
    "  frame: new Error().stack.split('\\n')[1],",
    "  outside: require('../bench/thing').name,",
    '});',
  ].join('\n'));
  put('data.json', '{ "answer": 42 }\n');
  put('bench/thing.js', 'exports.name = `from disk: ${__filename}`;\n');
  return dir;
}

test('the bundle holds the reachable modules, keeps their file names, and maps lines back', () => {
  const dir = fakeDist();
  const info = writeBundle(dir);
  assert.equal(info.modules, 3, 'main, x and the JSON; bench/ is left out');
  assert.equal(info.file, path.join(dir, BUNDLE_FILE));
  const loaded = loadBundle(dir, false);
  assert.ok(loaded);
  assert.equal(loaded.codeCache, 'absent');
  const r = loaded.main(['a']) as unknown as Record<string, unknown>;
  assert.deepEqual(r.argv, ['a']);
  assert.equal(r.file, path.join(dir, 'cli', 'x.js'));
  assert.equal(r.dir, path.join(dir, 'cli'));
  assert.deepEqual(r.data, { answer: 42 });
  assert.equal(r.outside, `from disk: ${path.join(dir, 'bench', 'thing.js')}`);
  const m = /\(?([^()\s]+):(\d+):\d+\)?$/.exec(String(r.frame).trim());
  assert.ok(m, String(r.frame));
  assert.equal(m[1], info.file, 'the frame is in the bundle');
  assert.deepEqual(unbundledLocation(m[1], Number(m[2])), { file: path.join(dir, 'cli', 'x.js'), line: 4 });
  assert.deepEqual(unbundledLocation('/elsewhere.js', 7), { file: '/elsewhere.js', line: 7 });
});

test('a bundle older than dist/ is not used', () => {
  const dir = fakeDist();
  writeBundle(dir);
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(dir, 'cli', 'main.js'), later, later);
  assert.equal(loadBundle(dir, false), undefined);
  assert.equal(loadBundle(fs.mkdtempSync(path.join(os.tmpdir(), 'sparkler-empty-')), false), undefined, 'no bundle at all');
});

test('a clean exit writes the code cache, the next start uses it, a rebuild drops it', () => {
  const dir = fakeDist();
  writeBundle(dir);
  const launch = require.resolve('./launch');
  const start = (exitCode: number) => spawnSync(process.execPath, ['-e',
    `const b = require(${JSON.stringify(launch)}).loadBundle(${JSON.stringify(dir)}, true); b.main([]); process.stdout.write(b.codeCache); process.exitCode = ${exitCode};`,
  ], { encoding: 'utf8' });
  const cache = path.join(dir, CODE_CACHE_FILE);
  assert.equal(start(1).stdout, 'absent');
  assert.equal(fs.existsSync(cache), false, 'a failed run trains nothing');
  assert.equal(start(0).stdout, 'absent');
  assert.ok(fs.statSync(cache).size > 0);
  assert.equal(start(0).stdout, 'accepted');
  fs.writeFileSync(cache, 'not a code cache');
  assert.equal(start(0).stdout, 'rejected');
  assert.equal(start(0).stdout, 'accepted', 'the refused cache was rewritten');
  writeBundle(dir);
  assert.equal(fs.existsSync(cache), false);
});

test('bin/sparkler runs the same CLI bundled and unbundled', () => {
  const dist = path.resolve(__dirname, '..');
  assert.ok(loadBundle(dist, false), `${path.join(dist, BUNDLE_FILE)} is missing or older than dist/: run npm run build`);
  const bin = path.resolve(dist, '..', 'bin', 'sparkler');
  const run = (env: Record<string, string>) => spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } });
  const bundled = run({});
  const unbundled = run({ SPARKLER_NO_BUNDLE: '1' });
  assert.equal(bundled.status, 0, bundled.stderr);
  assert.equal(bundled.stdout, unbundled.stdout);
  assert.match(bundled.stdout, /^Sparkler v\d+\.\d+\.\d+/);
});
