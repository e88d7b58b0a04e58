/**
 * Joins the VMM's compiled modules into one file, dist/sparkler.bundle.js, which bin/sparkler
 * loads (src/build/launch.ts). Run by `npm run build` after tsc: `node dist/build/bundle.js`.
 *
 * A VMM start loads about 115 CommonJS modules from dist/: for each one Node resolves the path
 * (several stat calls), reads the file, wraps and compiles it (strace: ~500 statx and ~180
 * openat). In one file that is one read and one compile, and with the V8 code cache the launcher
 * keeps beside it, most parsing and compiling is skipped too. On the 9p root of the emulated
 * KVM host each of those file-system calls is a round trip through TCG: seconds per start.
 *
 * Every module keeps its original __filename and __dirname (the addon and the logger find their
 * files from them); built-ins, and the modules left out (the subcommands other than the VMM:
 * bench, emuhost, guest, doctor, demo), load through Node's own require as before.
 *
 * The file is pure ASCII (any other character is written as a \uXXXX escape), so that the
 * launcher can hand the mapped file to V8 as a Latin-1 external string; and it is replaced by a
 * rename, never rewritten in place, because running VMMs map it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUNDLE_FILE, BUNDLE_HEAD, CODE_CACHE_FILE } from './launch';
import { BUNDLE_LINE_MAP_KEY, BundleLineMap } from './bundle-lines';

/** Module folders and files under dist/ left out (loaded from disk if ever required). */
const EXCLUDE = [/^bench\//, /^build\/(bundle|launch|launcher|train-code-cache)\.js$/, /^emuhost\//, /^guest\//, /^e2e\//, /^testing\//, /^host\/doctor\.js$/, /^cli\/demo\.js$/, /^api\/openapi\.js$/, /^pool\//, /^cli\/exec\.js$/, /^snapshot\/(cli|uffd-handler)\.js$/, /^api\/wire\/json-schema\.js$/, /\.test\.js$/];

const REQUIRE_RE = /\brequire\((['"])(\.{1,2}\/[^'"]*)\1\)/g;

function resolveFile(fromDir: string, request: string): string | undefined {
  const base = path.resolve(fromDir, request);
  for (const candidate of [base, `${base}.js`, `${base}.json`, path.join(base, 'index.js')]) {
    try {
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // try the next form
    }
  }
  return undefined;
}

export interface BundleInfo {
  file: string;
  modules: number;
  bytes: number;
}

/** Every module reachable from dist/cli/main.js through relative requires, minus EXCLUDE. */
function collectModules(distDir: string, entry: string) {
  const modules = new Map<string, { source: string; requires: Record<string, string> }>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (modules.has(file)) continue;
    const source = fs.readFileSync(file, 'utf8');
    const requires: Record<string, string> = {};
    modules.set(file, { source, requires });
    if (file.endsWith('.json')) continue;
    for (const m of source.matchAll(REQUIRE_RE)) {
      const target = resolveFile(path.dirname(file), m[2]);
      if (!target) continue;
      const rel = path.relative(distDir, target);
      const inDist = !rel.startsWith('..');
      if (inDist && EXCLUDE.some((re) => re.test(rel))) continue;
      if (!inDist && !target.endsWith('package.json')) continue;
      requires[m[2]] = target;
      queue.push(target);
    }
  }
  return modules;
}

/**
 * The source with every non-ASCII character (UTF-16 unit) written as \uXXXX, which means the same
 * in strings, templates, regular expressions, comments and identifiers (an astral character
 * becomes its surrogate pair: fine except in an identifier). Throws where an escape would change
 * the meaning: a raw template (String.raw) or a character after a backslash.
 */
export function asciiOnly(source: string, where: string): string {
  if (!/[^\x00-\x7f]/.test(source)) return source;
  if (source.includes('String.raw')) throw new Error(`${where}: non-ASCII text and String.raw: escaping could change a raw string`);
  return source.replace(/[^\x00-\x7f]/g, (ch, offset: number) => {
    let slashes = 0;
    while (source[offset - 1 - slashes] === '\\') slashes++;
    if (slashes % 2 === 1) throw new Error(`${where}: a backslash before a non-ASCII character; write it as \\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
    return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** How tsc (esModuleInterop) starts its __importStar helper in every module with `import * as`. */
export const TSC_IMPORT_STAR = 'var __importStar = (this && this.__importStar) || ';

/**
 * One __importStar for the whole bundle, in place of each module's own: tsc's makes a new
 * namespace object per import site, with a getter closure (and its context) per property of the
 * imported module, so the ten `import * as fs` alone kept ~1,000 closures alive (~0.15 MiB of
 * V8 heap in every VMM). This one makes one namespace per imported module object, and makes it
 * in O(1): an object whose prototype is the module, with `default` as its one own property. A
 * read (`fs.readFileSync`) finds the module's current value through the prototype, which is
 * the live binding tsc's getters give, without building ~150 getters for node:fs, node:http,
 * node:net and node:path on the way to the API socket (~0.4 ms and ~40 KB of young heap).
 * `Object.keys(ns)` lists only `default` (for-in sees the rest); no VMM code lists a namespace.
 * One line: bundle line numbers stay as counted.
 */
const SHARED_IMPORT_STAR = 'const __importStarShared = (() => { const made = new WeakMap(); return (mod) => { if (mod && mod.__esModule) return mod; if (mod === null || (typeof mod !== "object" && typeof mod !== "function")) return { default: mod }; let ns = made.get(mod); if (ns === undefined) made.set(mod, ns = Object.create(mod, { default: { enumerable: true, value: mod } })); return ns; }; })();';

/** The module table and a tiny CommonJS loader over it; exports the entry's exports. */
const LOADER = (entry: string) => `
const __cache = Object.create(null);
const __path = require('node:path');
// node:module (and the internals it pulls in) only for a require from outside the bundle.
let __module;
const __requireFrom = (file) => (__module ??= require('node:module')).createRequire(file);
function __load(file) {
  const hit = __cache[file];
  if (hit) return hit.exports;
  const [fn, requires] = __defs[file];
  const module = { exports: {}, id: file, filename: file, loaded: false, children: [], paths: [] };
  __cache[file] = module;
  let outside;
  const req = (id) => {
    const inside = requires[id];
    if (inside !== undefined) return __load(inside);
    // A built-in is the same module from anywhere: no per-module createRequire (a Module object
    // and its node_modules path list each) just to reach node:fs.
    if (id.startsWith('node:')) return require(id);
    outside ??= __requireFrom(file);
    return outside(id);
  };
  req.resolve = (id) => requires[id] ?? (outside ??= __requireFrom(file)).resolve(id);
  req.main = require.main;
  fn.call(module.exports, module.exports, req, module, file, __path.dirname(file));
  module.loaded = true;
  return module.exports;
}
module.exports = __load(${JSON.stringify(entry)});
`;

/**
 * Writes `<outDir>/sparkler.bundle.js` from the compiled modules in distDir (outDir defaults to
 * distDir) and removes a code cache left by an older bundle. The file is one function expression
 * taking (exports, require, module, __filename, __dirname), like a wrapped CommonJS module
 * (BUNDLE_HEAD); the launcher compiles it as it is.
 */
export function writeBundle(distDir: string, outDir = distDir): BundleInfo {
  const entry = path.join(distDir, 'cli', 'main.js');
  const modules = collectModules(distDir, entry);
  const parts: string[] = [
    `${BUNDLE_HEAD}'use strict';`,
    '// Generated by src/build/bundle.ts from dist/ at build time: every VMM module in one file.',
    'const __defs = Object.create(null);',
    SHARED_IMPORT_STAR,
  ];
  // Where each module's first line lands in the bundle, so that log origins name the module.
  const lineMap: BundleLineMap = { starts: [], files: [] };
  let line = parts.length + 1;
  for (const [file, { source, requires }] of modules) {
    // The shebang becomes an empty line so that line numbers stay those of the module.
    const body = file.endsWith('.json')
      ? `module.exports = ${source.trim()};`
      : source.replace(/^#!.*/, '').replaceAll(TSC_IMPORT_STAR, 'var __importStar = __importStarShared || ');
    lineMap.starts.push(line + 1);
    lineMap.files.push(file);
    const part = `__defs[${JSON.stringify(file)}] = [function (exports, require, module, __filename, __dirname) {\n${body}\n}, ${JSON.stringify(requires)}];`;
    parts.push(asciiOnly(part, file));
    line += part.split('\n').length;
  }
  parts.push(asciiOnly(`globalThis[Symbol.for(${JSON.stringify(BUNDLE_LINE_MAP_KEY)})] = { bundle: __filename, ...${JSON.stringify(lineMap)} };`, 'the line map'));
  parts.push(asciiOnly(LOADER(entry), 'the loader'));
  parts.push('})');
  const file = path.join(outDir, BUNDLE_FILE);
  // The old cache goes first (a start in between compiles without one), then the new file is
  // renamed over the old: a running VMM keeps its mapping of the old file intact.
  fs.rmSync(path.join(outDir, CODE_CACHE_FILE), { force: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, parts.join('\n'));
  fs.renameSync(tmp, file);
  return { file, modules: modules.size, bytes: fs.statSync(file).size };
}

if (require.main === module) {
  const distDir = path.resolve(__dirname, '..');
  const filters = (require('../seccomp/compiled-filter') as typeof import('../seccomp/compiled-filter')).writeCompiledFilters(path.join(distDir, 'seccomp'));
  process.stdout.write(`seccomp: ${filters.map((f) => path.relative(process.cwd(), f)).join(', ')}\n`);
  const b = writeBundle(distDir);
  process.stdout.write(`bundle: ${b.modules} modules, ${(b.bytes / 1024).toFixed(0)} KiB -> ${path.relative(process.cwd(), b.file)}\n`);
  const launcher = require('./launcher').writeLauncher(path.resolve(distDir, '..')) as string;
  process.stdout.write(`launcher: ${path.relative(process.cwd(), launcher)} (${fs.readFileSync(launcher, 'latin1').split('\n')[0]})\n`);
  process.stdout.write(`jailer: ${path.relative(process.cwd(), require('./launcher').writeJailerLauncher(path.resolve(distDir, '..')) as string)}\n`);
  const trained = require('./train-code-cache').trainCodeCache(distDir) as string;
  process.stdout.write(`code cache: ${trained}\n`);
  // The snapshot load's functions too (an async run of two VMMs, so a child of this build).
  const restore = require('node:child_process').spawnSync(process.execPath, [path.join(distDir, 'build', 'train-restore.js')], { encoding: 'utf8', timeout: 120_000 });
  process.stdout.write(`code cache: ${(restore.stdout || `restore not trained (${restore.error?.message ?? restore.stderr})`).trim()}\n`);
}
