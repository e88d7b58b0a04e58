/**
 * The content-addressed artifact cache: <root>/<kind>/<sha256>/ holds one finished artifact.
 * A build runs in <root>/tmp/<kind>-<hash>.<pid>.<random>/ and its output folder is renamed
 * into place, so a folder that exists is complete and an interrupted build leaves only a
 * temp folder (removed by the next build once its owner is dead). A lock file makes a
 * concurrent build of the same artifact wait instead of doing the work twice; correctness
 * does not depend on it, only on the atomic rename.
 */
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import { SparklerError } from '../errors';

export function cacheRoot(): string {
  return path.resolve(process.env['SPARKLER_CACHE'] ?? '/var/cache/sparkler');
}

export function artifactDir(root: string, kind: string, hash: string): string {
  return path.join(root, kind, hash);
}

/** Builds outDir from scratch; workDir is scratch space removed afterwards. */
export type Builder = (outDir: string, workDir: string) => Promise<void>;

export interface BuildOnceOptions {
  root: string;
  kind: string;
  hash: string;
  build: Builder;
  /** Files the build must leave in outDir; checked before the rename. */
  outputs: readonly string[];
  /** How often a waiting process looks at the lock again. */
  pollMs?: number;
  log?: (line: string) => void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await fsp.readFile(file, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Takes the lock, or waits while a live process holds it. Returns false when the artifact
 * appeared while waiting (nothing left to do).
 */
async function acquireLock(lock: string, done: () => boolean, opts: BuildOnceOptions): Promise<boolean> {
  let announced = false;
  for (;;) {
    if (done()) return false;
    try {
      await fsp.writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readPid(lock);
    if (holder !== undefined && !isAlive(holder)) {
      await fsp.rm(lock, { force: true }); // left by a build that was killed
      continue;
    }
    if (!announced) {
      opts.log?.(`waiting for the ${opts.kind} build of process ${holder ?? '?'} (lock ${lock})`);
      announced = true;
    }
    await sleep(opts.pollMs ?? 500);
  }
}

/** Removes temp folders of this artifact whose builder process is gone. */
async function removeStaleTemps(tmpRoot: string, prefix: string): Promise<void> {
  for (const name of await fsp.readdir(tmpRoot)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number.parseInt(name.slice(prefix.length), 10);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      await fsp.rm(path.join(tmpRoot, name), { recursive: true, force: true });
    }
  }
}

/** Returns the artifact folder, building it first when it is not in the cache. */
export async function buildOnce(opts: BuildOnceOptions): Promise<string> {
  const final = artifactDir(opts.root, opts.kind, opts.hash);
  if (existsSync(final)) return final;
  const tmpRoot = path.join(opts.root, 'tmp');
  try {
    await fsp.mkdir(path.dirname(final), { recursive: true });
    await fsp.mkdir(tmpRoot, { recursive: true });
  } catch (err) {
    throw new SparklerError('EGUESTCACHE', `Cannot create the guest artifact cache at ${opts.root}; set SPARKLER_CACHE to a writable folder.`, { cause: err });
  }
  const lock = path.join(tmpRoot, `${opts.kind}-${opts.hash}.lock`);
  if (!(await acquireLock(lock, () => existsSync(final), opts))) return final;
  const prefix = `${opts.kind}-${opts.hash}.`;
  let temp: string | undefined;
  try {
    if (existsSync(final)) return final;
    await removeStaleTemps(tmpRoot, prefix);
    temp = await fsp.mkdtemp(path.join(tmpRoot, `${prefix}${process.pid}.`));
    const out = path.join(temp, 'out');
    const work = path.join(temp, 'work');
    await fsp.mkdir(out);
    await fsp.mkdir(work);
    await opts.build(out, work);
    const missing = opts.outputs.filter((f) => !existsSync(path.join(out, f)));
    if (missing.length > 0) {
      throw new SparklerError('EGUESTBUILD', `The ${opts.kind} build finished without producing ${missing.join(', ')}.`);
    }
    try {
      await fsp.rename(out, final);
    } catch (err) {
      // Someone placed the same artifact first (e.g. after stealing a stale lock): keep theirs.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(final)) throw err;
    }
    return final;
  } finally {
    if (temp !== undefined) await fsp.rm(temp, { recursive: true, force: true });
    // Only remove the lock if it is still ours.
    if ((await readPid(lock)) === process.pid) await fsp.rm(lock, { force: true });
  }
}
