/**
 * The jailer's flags, as Firecracker's jailer takes them (behaviours.md section 10): --id,
 * --exec-file, --uid, --gid, and the optional --chroot-base-dir, --netns, --daemonize,
 * --new-pid-ns, --cgroup-version, --cgroup (repeated), --parent-cgroup, --resource-limit
 * (repeated), --node, --version; everything after `--` goes to the VMM.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { JailerError } from './errors';

export const DEFAULT_CHROOT_BASE = '/srv/jailer';
/** RLIMIT_NOFILE when --resource-limit no-file is absent (Firecracker's default). */
export const DEFAULT_NO_FILE = 2048;

export interface CgroupSetting {
  /** The file in the jail's cgroup, e.g. cpu.shares. */
  file: string;
  /** Its controller (the part before the first '.'), e.g. cpu. */
  controller: string;
  value: string;
}

export interface JailerArgs {
  id: string;
  execFile: string;
  uid: number;
  gid: number;
  chrootBaseDir: string;
  netns?: string;
  daemonize: boolean;
  newPidNs: boolean;
  cgroupVersion: 1 | 2;
  cgroups: CgroupSetting[];
  /** Relative to the cgroup root; defaults to the exec file's name. */
  parentCgroup: string;
  /** True when --parent-cgroup was given (v2 then moves the process into it without --cgroup). */
  parentCgroupGiven: boolean;
  /** RLIMIT_NOFILE (soft = hard). */
  noFile: number;
  /** RLIMIT_FSIZE in bytes (soft = hard); undefined leaves it unlimited. */
  fsize?: number;
  /** --node: the NUMA node whose CPUs and memory the jail's cpuset gets. */
  numaNode?: number;
  vmmArgs: string[];
  version: boolean;
}

const ID_MAX = 64;

/** Firecracker's instance id rule and phrases: 1..64 characters from [A-Za-z0-9-]. */
export function validateId(id: string): void {
  const chars = [...id];
  if (chars.length < 1 || chars.length > ID_MAX) {
    throw new JailerError('EJAILID', `Invalid instance ID: Invalid len (${chars.length});  the length must be between 1 and ${ID_MAX}`);
  }
  const bad = chars.findIndex((c) => !/^[A-Za-z0-9-]$/.test(c));
  if (bad >= 0) throw new JailerError('EJAILID', `Invalid instance ID: Invalid char (${chars[bad]}) at position ${bad}`);
}

function wholeNumber(text: string, what: string, max = 0xffffffff): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > max) throw new JailerError('EJAILARG', `Invalid ${what}: ${text} is not a whole number from 0 to ${max}.`);
  return n;
}

/** `file=value` of --cgroup: the file names its controller (cpu.shares -> cpu). */
export function parseCgroupSetting(text: string): CgroupSetting {
  const eq = text.indexOf('=');
  const file = eq > 0 ? text.slice(0, eq) : '';
  const value = eq > 0 ? text.slice(eq + 1) : '';
  const dot = file.indexOf('.');
  if (!file || !value || dot <= 0 || file.includes('/') || file === '..') {
    throw new JailerError('EJAILCGROUP', `Invalid cgroup: ${text}; expected <controller>.<file>=<value>, e.g. cpu.shares=2.`);
  }
  return { file, controller: file.slice(0, dot), value };
}

function parseResourceLimit(text: string, into: { noFile: number; fsize?: number }): void {
  const [name, value, ...rest] = text.split('=');
  if (rest.length > 0 || value === undefined || value === '') {
    throw new JailerError('EJAILRLIMIT', `Invalid resource limit: ${text}; expected no-file=N or fsize=N.`);
  }
  const n = wholeNumber(value, `resource limit ${name}`, Number.MAX_SAFE_INTEGER);
  if (name === 'no-file') into.noFile = n;
  else if (name === 'fsize') into.fsize = n;
  else throw new JailerError('EJAILRLIMIT', `Invalid resource limit: unknown resource ${name}; use no-file or fsize.`);
}

export function parseJailerArgs(argv: string[]): JailerArgs {
  const split = argv.indexOf('--');
  const own = split >= 0 ? argv.slice(0, split) : argv;
  const vmmArgs = split >= 0 ? argv.slice(split + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      strict: true,
      allowPositionals: false,
      options: {
        id: { type: 'string' },
        'exec-file': { type: 'string' },
        uid: { type: 'string' },
        gid: { type: 'string' },
        'chroot-base-dir': { type: 'string' },
        netns: { type: 'string' },
        daemonize: { type: 'boolean' },
        'new-pid-ns': { type: 'boolean' },
        'cgroup-version': { type: 'string' },
        cgroup: { type: 'string', multiple: true },
        'parent-cgroup': { type: 'string' },
        'resource-limit': { type: 'string', multiple: true },
        node: { type: 'string' },
        version: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new JailerError('EJAILARG', `Arguments parsing error: ${(err as Error).message}`);
  }
  const v = parsed.values;
  const base = {
    daemonize: v.daemonize ?? false,
    newPidNs: v['new-pid-ns'] ?? false,
    vmmArgs,
    version: v.version ?? false,
  };
  if (base.version) {
    return { ...base, id: '', execFile: '', uid: 0, gid: 0, chrootBaseDir: DEFAULT_CHROOT_BASE, cgroupVersion: 1, cgroups: [], parentCgroup: '', parentCgroupGiven: false, noFile: DEFAULT_NO_FILE };
  }
  for (const name of ['id', 'exec-file', 'uid', 'gid'] as const) {
    if (v[name] === undefined) throw new JailerError('EJAILARG', `Arguments parsing error: Argument '${name}' required, but not found.`);
  }
  const id = v.id as string;
  validateId(id);
  const execFile = v['exec-file'] as string;
  const version = v['cgroup-version'] ?? '1';
  if (version !== '1' && version !== '2') throw new JailerError('EJAILCGROUP', `Invalid cgroup version: ${version}; use 1 or 2.`);
  const limits: { noFile: number; fsize?: number } = { noFile: DEFAULT_NO_FILE };
  for (const l of v['resource-limit'] ?? []) parseResourceLimit(l, limits);
  const parent = v['parent-cgroup'];
  if (parent !== undefined && (parent === '' || path.isAbsolute(parent) || parent.split('/').includes('..'))) {
    throw new JailerError('EJAILCGROUP', `Invalid parent cgroup: ${parent}; name a path relative to the cgroup root, without "..".`);
  }
  if (v.netns !== undefined && v.netns === '') throw new JailerError('EJAILARG', 'Invalid netns: the path is empty.');
  const args: JailerArgs = {
    ...base,
    id,
    execFile,
    uid: wholeNumber(v.uid as string, 'uid'),
    gid: wholeNumber(v.gid as string, 'gid'),
    chrootBaseDir: v['chroot-base-dir'] ?? DEFAULT_CHROOT_BASE,
    cgroupVersion: version === '2' ? 2 : 1,
    cgroups: (v.cgroup ?? []).map(parseCgroupSetting),
    parentCgroup: parent ?? path.basename(execFile),
    parentCgroupGiven: parent !== undefined,
    noFile: limits.noFile,
    vmmArgs,
  };
  if (v.netns !== undefined) args.netns = v.netns;
  if (limits.fsize !== undefined) args.fsize = limits.fsize;
  if (v.node !== undefined) args.numaNode = wholeNumber(v.node, 'node', 1023);
  return args;
}

export const JAILER_USAGE = `usage: sparkler-jailer --id ID --exec-file FILE --uid UID --gid GID [--chroot-base-dir DIR]
       [--netns PATH] [--daemonize] [--new-pid-ns] [--cgroup-version 1|2] [--cgroup FILE=VALUE]...
       [--parent-cgroup PATH] [--resource-limit no-file=N|fsize=N]... [--node N] [--version]
       [-- VMM FLAGS...]
`;
