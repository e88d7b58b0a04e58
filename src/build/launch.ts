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
 *
 * For a VMM run the bundle's source is not read into the V8 heap: the addon maps the file and
 * hands it to V8 as an external string (native/memory.c mapFileLatin1), so the ~0.5 MiB that V8
 * keeps for lazy compilation are clean page-cache pages shared by every VMM, not Private_Dirty
 * in each. The bundler writes pure ASCII (which Latin-1 reads as is). Without the addon or the
 * call, or when V8 copied the bytes anyway, the file is read as before.
 */
// Named imports: `import * as` would give this file (outside the bundle) tsc's namespace
// objects, a getter closure per property of node:fs, node:path and node:vm kept for good.
import { readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Script } from 'node:vm';

export const BUNDLE_FILE = 'sparkler.bundle.js';
export const CODE_CACHE_FILE = 'sparkler.bundle.cache';
/**
 * How the bundle file begins (the bundler writes the CommonJS wrapper into the file, so that the
 * file is the script's whole source: a concatenation here would give V8 a new heap string).
 * The bundle's first line carries it, so bundle line numbers stay as written.
 */
export const BUNDLE_HEAD = '(function (exports, require, module, __filename, __dirname) {';
/** Where the launcher leaves the addon it loaded, for src/native.ts to reuse (one dlopen). */
export const ADDON_KEY = 'sparkler.addon';

/** The addon's mapFileLatin1: { text, copied } or -errno (see src/native.ts). */
export type MapFileLatin1 = (file: string) => { text: string; copied: boolean } | number;

type Main = (argv: string[]) => void;

const DIST_DIR = resolve(__dirname, '..');

/** A VMM run (Firecracker's flags, no subcommand), the runs worth training the cache on. */
function isVmmRun(argv: string[]): boolean {
  return argv.length > 0 && argv[0].startsWith('-') && !argv.some((a) => ['--version', '--help', '-h'].includes(a));
}

/** Writes the cache beside the bundle through a rename, so a concurrent start never reads half. */
function writeCodeCache(cacheFile: string, script: Script): void {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, script.createCachedData());
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only install keeps working without a cache.
    rmSync(tmp, { force: true });
  }
}

export interface LoadedBundle {
  main: Main;
  /** What V8 made of the code cache: used, refused (another Node or flags), or none yet. */
  codeCache: 'accepted' | 'rejected' | 'absent';
  /** The source as an external string over the mapped file, or read into the V8 heap. */
  source: 'mapped' | 'read';
}

/** The bundle's text: mapped when mapFile can (and V8 kept it external), else read. */
function bundleSource(file: string, mapFile: MapFileLatin1 | undefined): { text: string; mapped: boolean } {
  try {
    const r = mapFile?.(file);
    if (typeof r === 'object' && !r.copied) return { text: r.text, mapped: true };
  } catch {
    // read it instead
  }
  return { text: readFileSync(file, 'utf8'), mapped: false };
}

/**
 * The bundled CLI, or undefined when the bundle is missing, older than dist/ or of an older
 * format. With trainCache, a missing or refused cache is written when the process exits with
 * code 0; with retrainCache, an accepted one is rewritten too (the functions read from it and the
 * ones this run compiled: src/build/train-restore.ts adds the snapshot load's this way). With
 * mapFile (the addon's mapFileLatin1), the source is mapped rather than read.
 */
export function loadBundle(distDir: string, trainCache: boolean, mapFile?: MapFileLatin1, retrainCache = false): LoadedBundle | undefined {
  const file = join(distDir, BUNDLE_FILE);
  let source: { text: string; mapped: boolean };
  try {
    if (statSync(file).mtimeMs < statSync(join(distDir, 'cli', 'main.js')).mtimeMs) return undefined;
    source = bundleSource(file, mapFile);
  } catch {
    return undefined;
  }
  if (!source.text.startsWith(BUNDLE_HEAD)) return undefined;
  const cacheFile = join(distDir, CODE_CACHE_FILE);
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new Script(source.text, { filename: file, cachedData });
  const mod = { exports: {} as { main: Main } };
  script.runInThisContext()(mod.exports, require, mod, file, distDir);
  const codeCache = cachedData === undefined ? 'absent' : script.cachedDataRejected ? 'rejected' : 'accepted';
  if (trainCache && (codeCache !== 'accepted' || retrainCache)) {
    process.once('exit', (code) => {
      if (code === 0) writeCodeCache(cacheFile, script);
    });
  }
  return { main: mod.exports.main, codeCache, source: source.mapped ? 'mapped' : 'read' };
}

/**
 * The addon's mapFileLatin1, the addon loaded as src/native.ts would (and left for it), or
 * undefined when it cannot be loaded or predates the call.
 */
function addonMapFile(): MapFileLatin1 | undefined {
  const home = resolve(DIST_DIR, '..');
  for (const candidate of [join(home, 'build', 'Release', 'sparkler.node'), join(home, 'build', 'Debug', 'sparkler.node')]) {
    try {
      const addon = { exports: {} as { mapFileLatin1?: MapFileLatin1 } };
      process.dlopen(addon, candidate);
      (globalThis as Record<symbol, unknown>)[Symbol.for(ADDON_KEY)] = addon.exports;
      return addon.exports.mapFileLatin1;
    } catch {
      // the next candidate; src/native.ts reports the failure if the VMM needs the addon
    }
  }
  return undefined;
}

/**
 * The flags bin/sparkler starts node with (its shebang line, src/build/launcher.ts: one flag
 * only); V8 ties a code cache to the flags it was made under.
 */
export const SHIPPED_NODE_FLAGS: readonly string[] = ['--preserve-symlinks-main'];

/**
 * Whether this node runs with the shipped flags only. A run under other flags (--cpu-prof,
 * --trace-gc, NODE_OPTIONS) has the cache refused and must not replace it with one that every
 * ordinary start would refuse in turn.
 */
export function hasShippedFlags(execArgv: string[], env: NodeJS.ProcessEnv): boolean {
  return execArgv.every((flag) => SHIPPED_NODE_FLAGS.includes(flag)) && !env.NODE_OPTIONS?.trim();
}

export function launch(argv: string[]): void {
  const vmmRun = isVmmRun(argv);
  const train = vmmRun && hasShippedFlags(process.execArgv, process.env);
  const retrain = process.env.SPARKLER_TRAIN_CODE_CACHE === '1';
  const bundled = process.env.SPARKLER_NO_BUNDLE === '1' ? undefined : loadBundle(DIST_DIR, train, vmmRun ? addonMapFile() : undefined, retrain);
  const main: Main = bundled?.main ?? require('../cli/main').main;
  main(argv);
}
