import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CHROOT_BASE, DEFAULT_NO_FILE, parseCgroupSetting, parseJailerArgs } from './args';
import { parseCgroupMounts, numaCpuset } from './cgroups';
import { osError } from './errors';
import { vmmArgv } from './jailer';
import { splitDev } from './layout';
import { parseLdd, shebangInterpreter } from './runtime';

const REQUIRED = ['--id', 'vm1', '--exec-file', '/usr/bin/sparkler', '--uid', '1234', '--gid', '1235'];

test('defaults: chroot base /srv/jailer, cgroup v1, parent cgroup = exec file name, no-file 2048', () => {
  const a = parseJailerArgs(REQUIRED);
  assert.equal(a.chrootBaseDir, DEFAULT_CHROOT_BASE);
  assert.equal(a.cgroupVersion, 1);
  assert.equal(a.parentCgroup, 'sparkler');
  assert.equal(a.parentCgroupGiven, false);
  assert.equal(a.noFile, DEFAULT_NO_FILE);
  assert.equal(a.fsize, undefined);
  assert.deepEqual([a.uid, a.gid, a.daemonize, a.newPidNs], [1234, 1235, false, false]);
  assert.deepEqual(a.vmmArgs, []);
});

test('everything after -- goes to the VMM; repeated --cgroup and --resource-limit accumulate', () => {
  const a = parseJailerArgs([...REQUIRED, '--cgroup-version', '2', '--cgroup', 'cpu.weight=10', '--cgroup', 'cpuset.cpus=0-1',
    '--resource-limit', 'no-file=1024', '--resource-limit', 'fsize=2097151', '--parent-cgroup', 'a/b', '--netns', '/var/run/netns/x',
    '--daemonize', '--new-pid-ns', '--node', '0', '--', '--api-sock', 'api.sock', '--id', 'ignored-by-us']);
  assert.equal(a.cgroupVersion, 2);
  assert.deepEqual(a.cgroups, [
    { file: 'cpu.weight', controller: 'cpu', value: '10' },
    { file: 'cpuset.cpus', controller: 'cpuset', value: '0-1' },
  ]);
  assert.deepEqual([a.noFile, a.fsize, a.parentCgroup, a.parentCgroupGiven, a.netns, a.numaNode], [1024, 2097151, 'a/b', true, '/var/run/netns/x', 0]);
  assert.ok(a.daemonize && a.newPidNs);
  assert.deepEqual(a.vmmArgs, ['--api-sock', 'api.sock', '--id', 'ignored-by-us']);
});

test("the instance id: Firecracker's phrases for a bad length and a bad character", () => {
  assert.throws(() => parseJailerArgs(['--id', '', ...REQUIRED.slice(2)]), { message: 'Invalid instance ID: Invalid len (0);  the length must be between 1 and 64' });
  assert.throws(() => parseJailerArgs(['--id', 'a'.repeat(65), ...REQUIRED.slice(2)]), { message: /Invalid len \(65\)/ });
  assert.throws(() => parseJailerArgs(['--id', 'ab_c', ...REQUIRED.slice(2)]), { message: 'Invalid instance ID: Invalid char (_) at position 2' });
  assert.equal(parseJailerArgs(['--id', 'a'.repeat(64), ...REQUIRED.slice(2)]).id.length, 64);
});

test('missing required flags, unknown flags and bad values are JailerErrors with a sentence', () => {
  for (const name of ['id', 'exec-file', 'uid', 'gid']) {
    const i = REQUIRED.indexOf(`--${name}`);
    const argv = [...REQUIRED.slice(0, i), ...REQUIRED.slice(i + 2)];
    assert.throws(() => parseJailerArgs(argv), { code: 'EJAILARG', message: `Arguments parsing error: Argument '${name}' required, but not found.` });
  }
  assert.throws(() => parseJailerArgs([...REQUIRED, '--bogus']), { code: 'EJAILARG' });
  assert.throws(() => parseJailerArgs([...REQUIRED.slice(0, 6), '--uid', 'x1', '--gid', '0']), { code: 'EJAILARG', message: /Invalid uid: x1/ });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--cgroup-version', '3']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--cgroup', 'nodot=1']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--cgroup', 'cpu.shares']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--cgroup', '../x.y=1']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--parent-cgroup', '/abs']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--parent-cgroup', 'a/../..']), { code: 'EJAILCGROUP' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--resource-limit', 'stack=1']), { code: 'EJAILRLIMIT' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--resource-limit', 'no-file=x']), { code: 'EJAILARG' });
  assert.throws(() => parseJailerArgs([...REQUIRED, '--resource-limit', 'no-file']), { code: 'EJAILRLIMIT' });
  assert.equal(parseJailerArgs(['--version']).version, true);
});

test('--cgroup: the controller is the file name before the first dot', () => {
  assert.deepEqual(parseCgroupSetting('cpu.cfs_period_us=200000'), { file: 'cpu.cfs_period_us', controller: 'cpu', value: '200000' });
  assert.deepEqual(parseCgroupSetting('cpu.weight.nice=10'), { file: 'cpu.weight.nice', controller: 'cpu', value: '10' });
  assert.deepEqual(parseCgroupSetting('memory.max=1=2'), { file: 'memory.max', controller: 'memory', value: '1=2' });
});

test('cgroup hierarchies from /proc/mounts: v1 controllers from the options, v2 without', () => {
  const m = parseCgroupMounts([
    'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
    'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0',
    'cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,xattr,name=systemd 0 0',
    'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
  ].join('\n'));
  assert.deepEqual(m, [
    { fstype: 'cgroup', dir: '/sys/fs/cgroup/cpu,cpuacct', controllers: ['cpu', 'cpuacct'] },
    { fstype: 'cgroup', dir: '/sys/fs/cgroup/systemd', controllers: ['xattr'] },
    { fstype: 'cgroup2', dir: '/sys/fs/cgroup/unified', controllers: [] },
  ]);
});

test('--node N: cpuset.mems N and the node\'s CPU list', () => {
  assert.deepEqual(numaCpuset(1, (p) => (p === '/sys/devices/system/node/node1/cpulist' ? '4-7\n' : '')), [
    { file: 'cpuset.mems', controller: 'cpuset', value: '1' },
    { file: 'cpuset.cpus', controller: 'cpuset', value: '4-7' },
  ]);
  assert.throws(() => numaCpuset(9, () => { throw Object.assign(new Error('x'), { errno: -2 }); }), { code: 'EJAILNODE', message: /os error 2/ });
});

test('the runtime: a script\'s interpreter and ldd\'s libraries (the loader included)', () => {
  assert.equal(shebangInterpreter('#!/usr/bin/node --preserve-symlinks-main\n...'), '/usr/bin/node');
  assert.equal(shebangInterpreter('\x7fELF...'), undefined);
  assert.deepEqual(parseLdd([
    '\tlinux-vdso.so.1 (0x00007ffc)',
    '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f3d)',
    '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3c)',
    '\t/lib64/ld-linux-x86-64.so.2 (0x00007f3d)',
  ].join('\n')), ['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
});

test('the VMM command line carries the id and the three start times before the user\'s flags', () => {
  assert.deepEqual(vmmArgv('/sparkler', 'vm1', { startUs: 10, startCpuUs: 20 }, 30, ['--api-sock', 'a']), [
    '/sparkler', '--id', 'vm1', '--start-time-us', '10', '--start-time-cpu-us', '20', '--parent-cpu-time-us', '30', '--api-sock', 'a',
  ]);
});

test('device numbers: glibc major()/minor(), minors above 255 included; os error texts', () => {
  assert.deepEqual(splitDev(0x0a01 | (0x1 << 20)), { major: 10, minor: 257 });
  assert.deepEqual(splitDev((10 << 8) | 232), { major: 10, minor: 232 });
  assert.equal(osError(-2), 'No such file or directory (os error 2)');
  assert.equal(osError(16), 'Resource busy (os error 16)');
});

test('bin/sparkler-jailer: written by the build, runs src/jailer/main.ts (--version, an error exits 1)', async () => {
  const { spawnSync } = await import('node:child_process');
  const path = await import('node:path');
  const { jailerLauncherSource } = await import('../build/launcher');
  assert.match(jailerLauncherSource('/usr/bin/node'), /dist', 'jailer', 'main\.js'/);
  const bin = path.resolve(__dirname, '..', '..', 'bin', 'sparkler-jailer');
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /^Jailer v\d+\.\d+\.\d+\n$/);
  const bad = spawnSync(bin, ['--id', 'x'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.equal(bad.stderr, "Jailer error: Arguments parsing error: Argument 'exec-file' required, but not found.\n");
});
