/** What `sparkler doctor` reports for jailing: cgroups for the jailer, namespaces, seccomp. */
import * as fs from 'node:fs';
import { parseCgroupMounts } from '../jailer/cgroups';
import { ALLOWLISTS, nodeMajor } from '../seccomp/allowlist';

export interface JailCheck {
  name: string;
  ok: boolean;
  detail: string;
}

function read(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return undefined;
  }
}

export function jailChecks(readFile: (p: string) => string | undefined = read): JailCheck[] {
  const checks: JailCheck[] = [];
  const mounts = parseCgroupMounts(readFile('/proc/mounts') ?? '');
  const v1 = mounts.filter((m) => m.fstype === 'cgroup').flatMap((m) => m.controllers);
  const v2 = mounts.find((m) => m.fstype === 'cgroup2');
  const v2Controllers = v2 ? readFile(`${v2.dir}/cgroup.controllers`) ?? '' : undefined;
  checks.push({ name: 'jailer-cgroup-v1', ok: v1.length > 0, detail: v1.length ? `--cgroup-version 1: controllers ${v1.join(', ')}` : 'no cgroup v1 controllers mounted' });
  checks.push({
    name: 'jailer-cgroup-v2',
    ok: v2 !== undefined && v2Controllers !== '',
    detail: v2 === undefined ? 'no cgroup2 hierarchy mounted' : `--cgroup-version 2 at ${v2.dir}: controllers ${v2Controllers || '(none: they are bound to v1; only --parent-cgroup moves work)'}`,
  });
  const userns = readFile('/proc/sys/user/max_user_namespaces');
  checks.push({ name: 'namespaces', ok: fs.existsSync('/proc/self/ns/mnt') && fs.existsSync('/proc/self/ns/pid'), detail: `mount, pid and net namespaces${userns !== undefined ? `; user namespaces up to ${userns}` : ''}` });
  const actions = readFile('/proc/sys/kernel/seccomp/actions_avail');
  const seccompOk = actions !== undefined && actions.includes('trap') && /Seccomp:/.test(readFile('/proc/self/status') ?? '');
  checks.push({ name: 'seccomp', ok: seccompOk, detail: actions ? `filter actions: ${actions}` : 'the kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)' });
  const major = nodeMajor();
  checks.push({ name: 'seccomp-allowlist', ok: ALLOWLISTS[major] !== undefined, detail: ALLOWLISTS[major] ? `Node ${major}: ${ALLOWLISTS[major].length} system calls allowed` : `no allow-list for Node ${major}: the VMM needs --no-seccomp or --seccomp-filter` });
  return checks;
}
