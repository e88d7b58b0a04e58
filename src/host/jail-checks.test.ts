import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jailChecks } from './jail-checks';

const files = (map: Record<string, string>) => (p: string): string | undefined => map[p];

test('doctor: cgroup v1 controllers, a v2 hierarchy without controllers, seccomp actions', () => {
  const checks = jailChecks(files({
    '/proc/mounts': 'cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n',
    '/sys/fs/cgroup/unified/cgroup.controllers': '',
    '/proc/sys/kernel/seccomp/actions_avail': 'kill_process kill_thread trap errno log allow',
    '/proc/self/status': 'Name: node\nSeccomp: 0\n',
  }));
  const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
  assert.equal(byName['jailer-cgroup-v1'].ok, true);
  assert.match(byName['jailer-cgroup-v1'].detail, /controllers cpu/);
  assert.equal(byName['jailer-cgroup-v2'].ok, false);
  assert.match(byName['jailer-cgroup-v2'].detail, /none: they are bound to v1/);
  assert.equal(byName.seccomp.ok, true);
});

test('doctor: no cgroups and no seccomp filters are reported as such', () => {
  const byName = Object.fromEntries(jailChecks(files({ '/proc/mounts': '' })).map((c) => [c.name, c]));
  assert.equal(byName['jailer-cgroup-v1'].ok, false);
  assert.equal(byName['jailer-cgroup-v2'].detail, 'no cgroup2 hierarchy mounted');
  assert.equal(byName.seccomp.ok, false);
  assert.match(byName.seccomp.detail, /CONFIG_SECCOMP_FILTER/);
});
