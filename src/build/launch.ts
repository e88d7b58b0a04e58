/**
 * What bin/sparkler runs. The VMM's modules, joined by the build into dist/sparkler.bundle.js
 * (src/build/bundle.ts), are compiled through a V8 code cache kept beside the bundle
 * (dist/sparkler.bundle.cache): one file read and almost no parsing or compiling, instead of
 * ~115 module loads. Measured in the emulated KVM host, where every file-system call crosses
 * TCG: process start -> guest init 23.6 s unbundled against 4.7 s bundled with the cache.
 *
 * The cache is trained at build time (src/build/train-code-cache.ts) when KVM is usable there;
 * otherwise, and whenever V8 rejects it (another Node version or V8 flags), the first VMM run
 * that ends cleanly writes it. Without a bundle, with a bundle older than dist/, or with
 * SPARKLER_NO_BUNDLE=1, the modules load from dist/ one by one as before.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

export const BUNDLE_FILE = 'sparkler.bundle.js';
export const CODE_CACHE_FILE = 'sparkler.bundle.cache';

type Main = (argv: string[]) => void;

const DIST_DIR = path.resolve(__dirname, '..');

/** A VMM run (Firecracker's flags, no subcommand), the runs worth training the cache on. */
function isVmmRun(argv: string[]): boolean {
  return argv.length > 0 && argv[0].startsWith('-') && !argv.some((a) => ['--version', '--help', '-h'].includes(a));
}

/** Writes the cache beside the bundle through a rename, so a concurrent start never reads half. */
function writeCodeCache(cacheFile: string, script: vm.Script): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, script.createCachedData());
    fs.renameSync(tmp, cacheFile);
  } catch {
    // A read-only install keeps working without a cache.
    fs.rmSync(tmp, { force: true });
  }
}

export interface LoadedBundle {
  main: Main;
  /** What V8 made of the code cache: used, refused (another Node or flags), or none yet. */
  codeCache: 'accepted' | 'rejected' | 'absent';
}

/**
 * The bundled CLI, or undefined when the bundle is missing or older than dist/. With
 * trainCache, a missing or refused cache is written when the process exits with code 0.
 */
export function loadBundle(distDir: string, trainCache: boolean): LoadedBundle | undefined {
  const file = path.join(distDir, BUNDLE_FILE);
  let source: string;
  try {
    if (fs.statSync(file).mtimeMs < fs.statSync(path.join(distDir, 'cli', 'main.js')).mtimeMs) return undefined;
    source = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const cacheFile = path.join(distDir, CODE_CACHE_FILE);
  let cachedData: Buffer | undefined;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // The wrapper shares the bundle's first line, so bundle line numbers stay as written.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  const mod = { exports: {} as { main: Main } };
  script.runInThisContext()(mod.exports, require, mod, file, distDir);
  const codeCache = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
  if (trainCache && codeCache !== 'accepted') {
    process.once('exit', (code) => {
      if (code === 0) writeCodeCache(cacheFile, script);
    });
  }
  return { main: mod.exports.main, codeCache };
}

export function launch(argv: string[]): void {
  const bundled = process.env.SPARKLER_NO_BUNDLE === '1' ? undefined : loadBundle(DIST_DIR, isVmmRun(argv));
  const main: Main = bundled?.main ?? require('../cli/main').main;
  main(argv);
}
