/**
 * `sparkler --snapshot-version`, `sparkler --describe-snapshot FILE`, and the `snapshot`
 * subcommand: `merge` (a Diff memory file onto its base), `describe` (a file's header and
 * what it holds, as JSON) and `clones` (the clones benchmark, clones-bench.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { decodeSnapshotFile, decodeSnapshotHeader, SNAPSHOT_FORMAT_VERSION } from './file-format';
import { mergeDiffOnto } from './memory-file';
import type { SnapshotState } from './state';

const fail = (message: string): number => {
  process.stderr.write(`sparkler: ${message}\n`);
  return 1;
};

/** Firecracker prints versions as `vMAJOR.MINOR.PATCH`; a Sparkler format version is its major. */
const versionText = (v: number): string => `v${v}.0.0`;

export function printSnapshotVersion(file: string | undefined): number {
  if (file === undefined) {
    process.stdout.write(`${versionText(SNAPSHOT_FORMAT_VERSION)}\n`);
    return 0;
  }
  try {
    const fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(24);
    const n = fs.readSync(fd, head, 0, 24, 0);
    fs.closeSync(fd);
    process.stdout.write(`${versionText(decodeSnapshotHeader(head.subarray(0, n), `The snapshot file ${file}`).version)}\n`);
    return 0;
  } catch (err) {
    return fail((err as Error).message);
  }
}

export async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'merge') {
    const { values } = parseArgs({ args: rest, options: { 'memory-path': { type: 'string' }, 'diff-path': { type: 'string' } }, strict: true });
    if (!values['memory-path'] || !values['diff-path']) return fail('snapshot merge needs --memory-path BASE and --diff-path DIFF.');
    try {
      const bytes = mergeDiffOnto(values['memory-path'], values['diff-path']);
      process.stdout.write(`merged ${bytes} bytes of ${values['diff-path']} onto ${values['memory-path']}\n`);
      return 0;
    } catch (err) {
      return fail((err as Error).message);
    }
  }
  if (command === 'describe' && rest.length === 1) {
    try {
      const { header, state } = decodeSnapshotFile(fs.readFileSync(rest[0]), `The snapshot file ${rest[0]}`);
      const s = state as SnapshotState;
      const memoryBytes = s.memory.regions.reduce((n, r) => n + r.size, 0);
      process.stdout.write(`${JSON.stringify({
        format_version: header.version, arch: 'x86_64', vmm_version: s.vmmVersion, created_at: s.createdAt,
        snapshot_type: s.snapshotType, vcpus: s.vcpus.length, memory_mib: memoryBytes / (1024 * 1024),
      }, null, 2)}\n`);
      return 0;
    } catch (err) {
      return fail((err as Error).message);
    }
  }
  if (command === 'clones') {
    const { REPO_ROOT } = require('../bench/context') as typeof import('../bench/context');
    return (require('./clones-bench') as typeof import('./clones-bench')).clonesCommand(rest, path.join(REPO_ROOT, 'bin', 'sparkler'));
  }
  return fail('usage: sparkler snapshot merge --memory-path BASE --diff-path DIFF | sparkler snapshot describe FILE | sparkler snapshot clones [--count N] [--pool] [--in-flight K] [--json]');
}
