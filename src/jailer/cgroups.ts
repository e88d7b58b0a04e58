/**
 * The jail's cgroup: `<parent>/<id>` under the hierarchy of each controller named by --cgroup
 * (v1) or under the unified hierarchy (v2), each file written once, then the jailer moved in
 * (the VMM inherits it across fork and exec). Created directories are recorded for Undo.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CgroupSetting } from './args';
import { JailerError, errnoOf, osError } from './errors';
import { Undo } from './layout';

export interface CgroupMount {
  fstype: 'cgroup' | 'cgroup2';
  dir: string;
  /** v1: the controllers this hierarchy carries (from the mount options). */
  controllers: string[];
}

/** The cgroup hierarchies from /proc/mounts' text. */
export function parseCgroupMounts(mounts: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mounts.split('\n')) {
    const [, dir, fstype, options] = line.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    const controllers = fstype === 'cgroup' ? options.split(',').filter((o) => !['rw', 'ro', 'relatime', 'nosuid', 'nodev', 'noexec'].includes(o) && !o.includes('=')) : [];
    out.push({ fstype, dir: dir.replace(/\\040/g, ' '), controllers });
  }
  return out;
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (err) {
    throw new JailerError('EJAILCGROUP', `Failed to write to ${file}: ${osError(errnoOf(err))}`);
  }
}

function mkdirs(dir: string, undo: Undo): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      throw new JailerError('EJAILCGROUP', `Failed to create cgroup directory ${d}: ${osError(errnoOf(err))}`);
    }
    // cgroup directories are removed with rmdir, child first: record each one.
    undo.addCgroup(d);
  }
}

/** v1 cpuset: a new cgroup starts with empty cpus/mems and takes no task until they are set. */
function inheritCpuset(dir: string, undo: Undo): void {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    const own = path.join(dir, file);
    if (fs.readFileSync(own, 'utf8').trim() !== '') continue;
    const parentValue = fs.readFileSync(path.join(path.dirname(dir), file), 'utf8').trim();
    if (parentValue === '' && path.dirname(dir) !== dir) {
      inheritCpuset(path.dirname(dir), undo);
      write(own, fs.readFileSync(path.join(path.dirname(dir), file), 'utf8').trim());
    } else write(own, parentValue);
  }
}

export interface CgroupPlan {
  version: 1 | 2;
  id: string;
  parent: string;
  parentGiven: boolean;
  settings: readonly CgroupSetting[];
}

/** Writes the settings and moves `pid` into the jail's cgroups; the directories it made go to undo. */
export function applyCgroups(plan: CgroupPlan, mounts: readonly CgroupMount[], pid: number, undo: Undo): void {
  if (plan.version === 1) applyV1(plan, mounts, pid, undo);
  else applyV2(plan, mounts, pid, undo);
}

function applyV1(plan: CgroupPlan, mounts: readonly CgroupMount[], pid: number, undo: Undo): void {
  const byController = new Map<string, CgroupSetting[]>();
  for (const s of plan.settings) byController.set(s.controller, [...(byController.get(s.controller) ?? []), s]);
  for (const [controller, settings] of byController) {
    const mount = mounts.find((m) => m.fstype === 'cgroup' && m.controllers.includes(controller));
    if (!mount) throw new JailerError('EJAILCGROUP', `Cgroup v1 controller ${controller} is not mounted on this host.`);
    const dir = path.join(mount.dir, plan.parent, plan.id);
    mkdirs(dir, undo);
    if (mount.controllers.includes('cpuset')) inheritCpuset(dir, undo);
    for (const s of settings) write(path.join(dir, s.file), s.value);
  }
  // Moved last, once every controller is ready: the process is never in a half-made cgroup.
  for (const controller of byController.keys()) {
    const mount = mounts.find((m) => m.fstype === 'cgroup' && m.controllers.includes(controller))!;
    write(path.join(mount.dir, plan.parent, plan.id, 'tasks'), `${pid}`);
  }
}

function applyV2(plan: CgroupPlan, mounts: readonly CgroupMount[], pid: number, undo: Undo): void {
  const mount = mounts.find((m) => m.fstype === 'cgroup2');
  if (!mount) throw new JailerError('EJAILCGROUP', 'Cgroup v2 is not mounted on this host.');
  const parentDir = path.join(mount.dir, plan.parent);
  if (plan.settings.length === 0) {
    // Firecracker: with --parent-cgroup alone the process joins that cgroup if it exists.
    if (plan.parentGiven && fs.existsSync(parentDir)) {
      try {
        fs.writeFileSync(path.join(parentDir, 'cgroup.procs'), `${pid}`);
      } catch (err) {
        throw new JailerError('EJAILCGROUP', `Failed to move process to cgroup (${parentDir}): ${osError(errnoOf(err))}`);
      }
    }
    return;
  }
  const controllers = [...new Set(plan.settings.map((s) => s.controller))];
  const dir = path.join(parentDir, plan.id);
  mkdirs(dir, undo);
  // Each controller must be enabled in subtree_control of every ancestor of the jail's cgroup.
  const rel = path.relative(mount.dir, parentDir).split('/').filter(Boolean);
  for (let i = 0; i <= rel.length; i++) {
    const ancestor = path.join(mount.dir, ...rel.slice(0, i));
    const enabled = fs.readFileSync(path.join(ancestor, 'cgroup.subtree_control'), 'utf8').split(/\s+/);
    const wanted = controllers.filter((c) => !enabled.includes(c));
    if (wanted.length > 0) write(path.join(ancestor, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
  }
  for (const s of plan.settings) write(path.join(dir, s.file), s.value);
  try {
    fs.writeFileSync(path.join(dir, 'cgroup.procs'), `${pid}`);
  } catch (err) {
    throw new JailerError('EJAILCGROUP', `Failed to move process to cgroup (${dir}): ${osError(errnoOf(err))}`);
  }
}

/** --node N: the cpuset of NUMA node N (its CPU list from sysfs and the node as memory). */
export function numaCpuset(node: number, readFile: (p: string) => string = (p) => fs.readFileSync(p, 'utf8')): CgroupSetting[] {
  let cpus: string;
  try {
    cpus = readFile(`/sys/devices/system/node/node${node}/cpulist`).trim();
  } catch (err) {
    throw new JailerError('EJAILNODE', `Failed to read the CPUs of NUMA node ${node}: ${osError(errnoOf(err))}`);
  }
  return [
    { file: 'cpuset.mems', controller: 'cpuset', value: `${node}` },
    { file: 'cpuset.cpus', controller: 'cpuset', value: cpus },
  ];
}
