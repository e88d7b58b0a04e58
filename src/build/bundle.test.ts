import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { asciiOnly, TSC_IMPORT_STAR, writeBundle } from './bundle';
import { BUNDLE_FILE, CODE_CACHE_FILE, hasShippedFlags, loadBundle } from './launch';
import { native } from '../native';
import { unbundledLocation } from './bundle-lines';
import { tempDir } from '../testing/temp-dir';

/** A miniature dist/: an entry with a shebang, a module, JSON, and a module the bundle leaves out. */
function fakeDist(): string {
  const dir = tempDir('sparkler-bundle-test-');
  const put = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  };
  put('cli/main.js', "#!/usr/bin/env node\nconst x = require('./x');\nexports.main = (argv) => x.run(argv);\n");
  // Non-ASCII in a comment, a string, a template, a regular expression and an identifier.
  put('cli/text.js', '// d\u00e9j\u00e0 vu\nconst caf\u00e9 = 1;\nexports.text = { s: "\u00b5s \u2192 \u{1f680}", t: `\u00e9${caf\u00e9}`, re: /^\u00e9+$/.test("\u00e9\u00e9"), esc: "\\\\\u00e9" };\n');
  put('cli/x.js', [
    "const data = require('../data.json');",
    'exports.run = (argv) => ({',
    '  argv, file: __filename, dir: __dirname, data,',
    "  frame: new Error().stack.split('\\n')[1],",
    "  outside: require('../bench/thing').name,",
    "  text: require('./text').text,",
    "  star: [require('./star1').one, require('./star2').two],",
    '});',
  ].join('\n'));
  put('data.json', '{ "answer": 42 }\n');
  // `import * as path from 'node:path'` as tsc compiles it (helper shortened: the bundle replaces it).
  const star = (name: string) => `${TSC_IMPORT_STAR}function (mod) { return { fresh: mod }; };\nexports.${name} = __importStar(require('node:path'));\n`;
  put('cli/star1.js', star('one'));
  put('cli/star2.js', star('two'));
  put('bench/thing.js', 'exports.name = `from disk: ${__filename}`;\n');
  return dir;
}

test('the bundle holds the reachable modules, keeps their file names, and maps lines back', () => {
  const dir = fakeDist();
  const info = writeBundle(dir);
  assert.equal(info.modules, 6, 'main, x, text, star1, star2 and the JSON; bench/ is left out');
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
  const [one, two] = r.star as Record<string, unknown>[];
  assert.equal(one, two, 'one namespace object per imported module, shared by the importers');
  assert.equal(one.join, path.join);
  assert.equal(one.default, require('node:path'));
  assert.equal(Object.getPrototypeOf(one), require('node:path'), 'the module behind it: a read sees its current value, as through tsc\'s getters');
  assert.deepEqual(r.text, { s: '\u00b5s \u2192 \u{1f680}', t: '\u00e91', re: true, esc: '\\\u00e9' }, 'escaped non-ASCII means the same');
  const m = /\(?([^()\s]+):(\d+):\d+\)?$/.exec(String(r.frame).trim());
  assert.ok(m, String(r.frame));
  assert.equal(m[1], info.file, 'the frame is in the bundle');
  assert.deepEqual(unbundledLocation(m[1], Number(m[2])), { file: path.join(dir, 'cli', 'x.js'), line: 4 });
  assert.deepEqual(unbundledLocation('/elsewhere.js', 7), { file: '/elsewhere.js', line: 7 });
});

test('the bundle is pure ASCII, so that it can be mapped as a Latin-1 string', () => {
  const dir = fakeDist();
  const bytes = fs.readFileSync(writeBundle(dir).file);
  assert.equal(bytes.findIndex((b) => b > 0x7f), -1);
  const shipped = fs.readFileSync(path.resolve(__dirname, '..', BUNDLE_FILE));
  assert.equal(shipped.findIndex((b) => b > 0x7f), -1, 'dist/sparkler.bundle.js');
  assert.equal(shipped.includes('(this && this.__importStar)'), false, "tsc's __importStar was replaced by the shared one (did tsc change its helper?)");
  assert.throws(() => asciiOnly('const s = String.raw`\u00e9`;', 'raw.js'), /raw\.js: .*String\.raw/);
  assert.throws(() => asciiOnly('const s = "\\\u00e9";', 'slash.js'), /slash\.js: a backslash/);
  assert.equal(asciiOnly('plain', 'p.js'), 'plain');
});

test('with the addon, the launcher maps the bundle as an external string, and it runs', () => {
  const dir = fakeDist();
  writeBundle(dir);
  const mapFile = native().mapFileLatin1;
  assert.ok(mapFile, 'the addon has mapFileLatin1');
  const loaded = loadBundle(dir, false, mapFile);
  assert.ok(loaded);
  assert.equal(loaded.source, 'mapped', 'V8 kept the mapped bytes (copied: false)');
  const r = loaded.main(['b']) as unknown as Record<string, unknown>;
  assert.deepEqual(r.argv, ['b']);
  assert.equal(r.file, path.join(dir, 'cli', 'x.js'));
  const maps = fs.readFileSync('/proc/self/maps', 'utf8');
  assert.match(maps, new RegExp(`r--p .* ${path.join(dir, BUNDLE_FILE).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\n`), 'the file is mapped read-only');
  // Without the call, or when it fails or V8 copied, the file is read.
  assert.equal(loadBundle(dir, false, () => -38)?.source, 'read');
  assert.equal(loadBundle(dir, false, () => { throw new Error('no'); })?.source, 'read');
  assert.equal(loadBundle(dir, false, (f) => ({ text: fs.readFileSync(f, 'latin1'), copied: true }))?.source, 'read');
});

test('the code cache is only written by a node started with the shipped flags', () => {
  assert.equal(hasShippedFlags(['--preserve-symlinks-main'], {}), true);
  assert.equal(hasShippedFlags([], {}), true);
  assert.equal(hasShippedFlags(['--preserve-symlinks-main', '--cpu-prof'], {}), false, 'a profiling run would leave a cache ordinary starts refuse');
  assert.equal(hasShippedFlags(['--preserve-symlinks-main'], { NODE_OPTIONS: '--max-old-space-size=64' }), false);
  assert.equal(hasShippedFlags(['--preserve-symlinks-main'], { NODE_OPTIONS: ' ' }), true);
});

test('a bundle older than dist/ is not used', () => {
  const dir = fakeDist();
  writeBundle(dir);
  const later = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(dir, 'cli', 'main.js'), later, later);
  assert.equal(loadBundle(dir, false), undefined);
  assert.equal(loadBundle(tempDir('sparkler-empty-'), false), undefined, 'no bundle at all');
});

for (const mapped of [false, true]) {
  test(`a clean exit writes the code cache, the next start uses it, a rebuild drops it (source ${mapped ? 'mapped' : 'read'})`, () => {
    const dir = fakeDist();
    writeBundle(dir);
    const launch = require.resolve('./launch');
    const mapFile = mapped ? `require(${JSON.stringify(require.resolve('../native'))}).native().mapFileLatin1` : 'undefined';
    const start = (exitCode: number) => spawnSync(process.execPath, ['-e',
      `const b = require(${JSON.stringify(launch)}).loadBundle(${JSON.stringify(dir)}, true, ${mapFile}); b.main([]); process.stdout.write(\`\${b.codeCache} \${b.source}\`); process.exitCode = ${exitCode};`,
    ], { encoding: 'utf8' });
    const cache = path.join(dir, CODE_CACHE_FILE);
    const how = mapped ? 'mapped' : 'read';
    assert.equal(start(1).stdout, `absent ${how}`);
    assert.equal(fs.existsSync(cache), false, 'a failed run trains nothing');
    assert.equal(start(0).stdout, `absent ${how}`);
    assert.ok(fs.statSync(cache).size > 0);
    assert.equal(start(0).stdout, `accepted ${how}`);
    fs.writeFileSync(cache, 'not a code cache');
    assert.equal(start(0).stdout, `rejected ${how}`);
    assert.equal(start(0).stdout, `accepted ${how}`, 'the refused cache was rewritten');
    writeBundle(dir);
    assert.equal(fs.existsSync(cache), false);
  });
}

test('retraining rewrites an accepted cache with what the run compiled; without it an accepted cache is kept', () => {
  const dir = fakeDist();
  writeBundle(dir);
  const launch = require.resolve('./launch');
  const cache = path.join(dir, CODE_CACHE_FILE);
  // A run that calls main (compiling x.run) only when asked: the retrained cache then holds more.
  const start = (retrain: boolean, run: boolean) => spawnSync(process.execPath, ['-e',
    `const b = require(${JSON.stringify(launch)}).loadBundle(${JSON.stringify(dir)}, true, undefined, ${retrain}); ${run ? 'b.main([]);' : ''} process.stdout.write(b.codeCache);`,
  ], { encoding: 'utf8' });
  assert.equal(start(false, false).stdout, 'absent');
  const first = fs.readFileSync(cache);
  assert.equal(start(false, true).stdout, 'accepted');
  assert.deepEqual(fs.readFileSync(cache), first, 'an accepted cache is not rewritten');
  assert.equal(start(true, true).stdout, 'accepted');
  assert.ok(fs.readFileSync(cache).length > first.length, 'the retrained cache adds the functions this run compiled');
  assert.equal(start(false, false).stdout, 'accepted');
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
  assert.match(bundled.stdout, /^Firecracker v\d+\.\d+\.\d+ \(Sparkler v\d+\.\d+\.\d+\)/);
});
