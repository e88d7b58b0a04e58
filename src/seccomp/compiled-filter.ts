/**
 * The default filters compiled at build time (as Firecracker compiles its filters with
 * seccompiler-bin when it is built): `npm run build` writes each Node major's allow-list as BPF
 * bytes beside this module, and a VMM start reads them instead of loading the allow-list and
 * compiling its rules on the way to the API socket. A file older than the allow-list's compiled
 * module is stale (a `tsc` without the build step): the VMM compiles the list itself then.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const fileFor = (dir: string, major: number): string => path.join(dir, `default-filter-node${major}.bpf`);

/**
 * A Node major version (the running one's by default): allow-lists and their compiled filters
 * are per major. Here rather than in allowlist.ts, which re-exports it, so that reading the
 * compiled filter does not load the allow-list.
 */
export function nodeMajor(version: string = process.versions.node): number {
  return Number(version.split('.')[0]);
}

/** Writes every allow-list's compiled filter into `dir` (dist/seccomp); the files written. */
export function writeCompiledFilters(dir: string = __dirname): string[] {
  const { ALLOWLISTS, defaultFilter } = require('./allowlist') as typeof import('./allowlist');
  const { compileFilter, encodeProgram } = require('./bpf') as typeof import('./bpf');
  return Object.entries(ALLOWLISTS).map(([major, list]) => {
    const file = fileFor(dir, Number(major));
    fs.writeFileSync(`${file}.tmp`, encodeProgram(compileFilter(defaultFilter(list))));
    fs.renameSync(`${file}.tmp`, file);
    return file;
  });
}

/** The build's compiled default filter for Node `major`, or undefined when there is none or it is stale. */
export function readCompiledFilter(major: number = nodeMajor(), dir: string = __dirname): Uint8Array | undefined {
  try {
    const file = fileFor(dir, major);
    if (fs.statSync(file).mtimeMs < fs.statSync(path.join(dir, `allowlist-node${major}.js`)).mtimeMs) return undefined;
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}
