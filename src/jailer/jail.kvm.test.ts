/**
 * bin/sparkler-jailer for real (root, namespaces, cgroups, /dev/kvm): the chroot's layout, modes
 * and owners; the jailed VMM's credentials, no_new_privs, namespaces, root, limits and cgroup;
 * its API through the chroot's socket; a tiny guest booted inside the jail; the error texts of
 * Firecracker's jailer tests; nothing left behind by a failure. Each jail's cgroup is made
 * beneath the cgroup this test runs in, so no process leaves its enclosing cgroup.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kvmUnavailableReason } from '../testing/kvm-available';
import { tempDir } from '../testing/temp-dir';
import { tinyKernel } from '../testing/tiny-guests';
import { waitFor, waitForSocket } from '../testing/wait';
import { request } from '../api/testing';

const HOME = path.resolve(__dirname, '..', '..');
const JAILER = path.join(HOME, 'bin', 'sparkler-jailer');
const SPARKLER = path.join(HOME, 'bin', 'sparkler');
const UID = 1234;
const GID = 1235;
const rootSkip = process.getuid?.() === 0 ? undefined : 'the jailer needs root';
const kvmSkip = rootSkip ?? kvmUnavailableReason();
const base = tempDir('sparkler-jail-');
fs.chmodSync(base, 0o755);

const started: number[] = [];
const cgroupDirs: string[] = [];
after(() => {
  for (const pid of started) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  const deadline = Date.now() + 3000;
  for (const dir of cgroupDirs.reverse()) {
    while (Date.now() < deadline) {
      try { fs.rmdirSync(dir); break; } catch (err) { if ((err as NodeJS.ErrnoException).code === 'ENOENT') break; }
    }
  }
});

interface JailerRun { code: number | null; out: string; child: ChildProcess }

/** Runs the jailer to its exit (a forked VMM may keep the pipes open: the exit is what counts). */
function jailer(args: string[], opts: { untilExit?: boolean } = {}): Promise<JailerRun> & { child: ChildProcess; output: () => string } {
  const child = spawn(JAILER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => { out += c; });
  child.stderr!.on('data', (c) => { out += c; });
  const done = new Promise<JailerRun>((resolve) => child.on('exit', (code) => resolve({ code, out, child })));
  void opts;
  return Object.assign(done, { child, output: () => out });
}

function chroot(id: string): string {
  return path.join(base, 'sparkler', id, 'root');
}

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return status(pid).State?.[0] !== 'Z';
  } catch {
    return false;
  }
}

/** This process's cgroup v1 path for `controller` (relative to the hierarchy's root). */
function ownCgroupV1(controller: string): string {
  const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
  assert.ok(line, `no cgroup v1 ${controller} line in /proc/self/cgroup`);
  return line.split(':')[2].replace(/^\//, '');
}

function ownCgroupV2(): string {
  const line = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.startsWith('0::'));
  return (line ?? '0::/').slice(3).replace(/^\//, '');
}

function mountDir(fstype: string, controller?: string): string | undefined {
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, dir, type, options] = line.split(' ');
    if (type === fstype && (!controller || options.split(',').includes(controller))) return dir;
  }
  return undefined;
}

function mode(p: string): string {
  const st = fs.lstatSync(p);
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
}

const common = (id: string): string[] => ['--id', id, '--exec-file', SPARKLER, '--uid', `${UID}`, '--gid', `${GID}`, '--chroot-base-dir', base];

test('--new-pid-ns with a v1 cgroup and rlimits: layout, credentials, namespaces, cgroup, limits; a tiny guest boots through the chroot\'s API socket', { skip: kvmSkip }, async () => {
  const id = 'jail-pidns';
  const memory = mountDir('cgroup', 'memory');
  const parent = path.join(ownCgroupV1('memory'), `sparkler-jail-test-${process.pid}`);
  const run = jailer([...common(id), '--new-pid-ns', '--parent-cgroup', parent, '--cgroup', 'memory.limit_in_bytes=1073741824',
    '--resource-limit', 'no-file=1024', '--resource-limit', 'fsize=2097151', '--', '--api-sock', 'api.socket']);
  const root = chroot(id);
  if (memory) cgroupDirs.push(path.join(memory, parent), path.join(memory, parent, id));
  const r = await run;
  assert.equal(r.code, 0, r.out);
  const pid = Number(fs.readFileSync(path.join(root, 'sparkler.pid'), 'utf8'));
  started.push(pid);
  await waitForSocket(path.join(root, 'api.socket'), 'the API socket in the chroot');

  // Layout (Firecracker's test_default_chroot_hierarchy, with sparkler for firecracker).
  assert.equal(mode(root), `700 ${UID}:${GID}`);
  for (const d of ['dev', 'dev/net', 'run']) assert.equal(mode(path.join(root, d)), `700 ${UID}:${GID}`, d);
  for (const [node, rdev] of [['dev/kvm', [10, 232]], ['dev/net/tun', [10, 200]], ['dev/urandom', [1, 9]]] as const) {
    const st = fs.statSync(path.join(root, node));
    assert.ok(st.isCharacterDevice(), node);
    assert.equal(mode(path.join(root, node)), `600 ${UID}:${GID}`, node);
    assert.deepEqual([Math.floor(st.rdev / 256) & 0xfff, st.rdev & 0xff], rdev, node);
  }
  assert.equal(mode(path.join(root, 'sparkler')), `755 ${UID}:${GID}`);
  assert.ok(fs.statSync(path.join(root, 'sparkler')).isFile());
  assert.ok(fs.statSync(path.join(root, 'api.socket')).isSocket());
  assert.equal(fs.statSync(path.join(root, 'api.socket')).uid, UID);

  // The process: dropped credentials, no_new_privs, pid 1 of its own pid namespace.
  const s = status(pid);
  assert.equal(s.Uid, `${UID}\t${UID}\t${UID}\t${UID}`);
  assert.equal(s.Gid, `${GID}\t${GID}\t${GID}\t${GID}`);
  assert.equal(s.Groups, '');
  assert.equal(s.NoNewPrivs, '1');
  assert.deepEqual(s.NStgid.split(/\s+/), [`${pid}`, '1']);
  // The default seccomp filter on every thread, Node's own included.
  const threads = fs.readdirSync(`/proc/${pid}/task`);
  assert.ok(threads.length >= 5);
  for (const t of threads) assert.match(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'), /Seccomp:\s*2\n/, `thread ${t}`);
  for (const ns of ['mnt', 'pid']) assert.notEqual(fs.readlinkSync(`/proc/${pid}/ns/${ns}`), fs.readlinkSync(`/proc/self/ns/${ns}`), ns);
  assert.equal(fs.readlinkSync(`/proc/${pid}/ns/net`), fs.readlinkSync('/proc/self/ns/net'));
  // Its root is the chroot: the same directory, and nothing else of the host.
  assert.equal(fs.statSync(`/proc/${pid}/root/`).ino, fs.statSync(root).ino);
  assert.deepEqual(fs.readdirSync(`/proc/${pid}/root/`).sort(), ['api.socket', 'build', 'dev', 'dist', 'lib', 'lib64', 'package.json', 'run', 'sparkler', 'sparkler.pid', 'usr']);
  assert.equal(fs.existsSync(`/proc/${pid}/root/etc`), false);
  // The runtime is read-only inside.
  const mounts = fs.readFileSync(`/proc/${pid}/mounts`, 'utf8').split('\n').filter((l) => / \/(usr|lib|lib64|dist|build)\//.test(l) || / \/(dist) /.test(l));
  assert.ok(mounts.length >= 3, fs.readFileSync(`/proc/${pid}/mounts`, 'utf8'));
  for (const m of mounts) assert.match(m.split(' ')[3], /^ro,/, m);
  // Limits (soft = hard) and the cgroup.
  const limits = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
  assert.match(limits, /Max open files\s+1024\s+1024/);
  assert.match(limits, /Max file size\s+2097151\s+2097151/);
  if (memory) {
    const dir = path.join(memory, parent, id);
    assert.equal(fs.readFileSync(path.join(dir, 'memory.limit_in_bytes'), 'utf8').trim(), '1073741824');
    assert.ok(fs.readFileSync(path.join(dir, 'tasks'), 'utf8').split('\n').includes(`${pid}`));
  }

  // The API through the chroot's socket, and a tiny guest booted from a file inside the jail.
  const sock = path.join(root, 'api.socket');
  const info = await request(sock, 'GET', '/');
  assert.equal(info.status, 200);
  assert.equal((info.json as { id: string }).id, id);
  fs.writeFileSync(path.join(root, 'hello.elf'), tinyKernel());
  fs.chownSync(path.join(root, 'hello.elf'), UID, GID);
  assert.equal((await request(sock, 'PUT', '/boot-source', { kernel_image_path: 'hello.elf', boot_args: 'console=ttyS0' })).status, 204);
  assert.equal((await request(sock, 'PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 32 })).status, 204);
  assert.equal((await request(sock, 'PUT', '/actions', { action_type: 'InstanceStart' })).status, 204);
  // The guest prints OK and resets: the jailed VMM exits (its stdout is the jailer's, inherited).
  await waitFor(() => !alive(pid), 'the jailed VMM to exit after the guest reset', 20_000);
  assert.match(run.output(), /OK/);
});

test('without --new-pid-ns or --daemonize the jailer execs the VMM in place: the pid file holds the jailer\'s pid', { skip: rootSkip }, async () => {
  const id = 'jail-inplace';
  const run = jailer([...common(id), '--', '--api-sock', 'api.socket', '--no-seccomp']);
  const root = chroot(id);
  await waitFor(() => fs.existsSync(path.join(root, 'sparkler.pid')), 'the pid file');
  const pid = Number(fs.readFileSync(path.join(root, 'sparkler.pid'), 'utf8'));
  started.push(pid);
  assert.equal(pid, run.child.pid);
  await waitForSocket(path.join(root, 'api.socket'), 'the API socket');
  const s = status(pid);
  assert.equal(s.NStgid, `${pid}`);
  assert.equal(s.NoNewPrivs, '1');
  assert.equal(s.Uid.split('\t')[0], `${UID}`);
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) assert.match(fs.readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'), /Seccomp:\s*0\n/, '--no-seccomp');
  assert.match(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'), /Max open files\s+2048\s+2048/);
  assert.match(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'), /Max file size\s+unlimited\s+unlimited/);
  // Argument order as Firecracker's jailer passes it; the environment is empty.
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.deepEqual(argv.slice(2, 5), ['/sparkler', '--id', id]);
  assert.deepEqual([argv[5], argv[7], argv[9]], ['--start-time-us', '--start-time-cpu-us', '--parent-cpu-time-us']);
  assert.equal(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'), '');
  process.kill(pid, 'SIGKILL');
  assert.equal((await run).code, null);
});

test('--daemonize: a new session, stdio on /dev/null, the jailer exits 0; v2 --parent-cgroup alone moves the VMM into it', { skip: rootSkip }, async () => {
  const id = 'jail-daemon';
  const unified = mountDir('cgroup2');
  const parent = path.join(ownCgroupV2(), `sparkler-jail-v2-${process.pid}`);
  const extra: string[] = [];
  if (unified) {
    fs.mkdirSync(path.join(unified, parent));
    cgroupDirs.push(path.join(unified, parent));
    extra.push('--cgroup-version', '2', '--parent-cgroup', parent);
  }
  const r = await jailer([...common(id), '--daemonize', ...extra, '--', '--api-sock', 'api.socket']);
  assert.equal(r.code, 0, r.out);
  const root = chroot(id);
  const pid = Number(fs.readFileSync(path.join(root, 'sparkler.pid'), 'utf8'));
  started.push(pid);
  await waitForSocket(path.join(root, 'api.socket'), 'the API socket');
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  assert.equal(stat[3], `${pid}`, 'session id == pid');
  for (const fd of [0, 1, 2]) assert.equal(fs.readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null');
  if (unified) assert.ok(fs.readFileSync(path.join(unified, parent, 'cgroup.procs'), 'utf8').split('\n').includes(`${pid}`));
  process.kill(pid, 'SIGKILL');
});

test("bad exec files and destinations get Firecracker's texts and exit 1; a failed jail leaves nothing behind", { skip: rootSkip }, async () => {
  const missing = await jailer([...common('bad1').map((a) => (a === SPARKLER ? '/nonexistent/sparkler' : a))]);
  assert.equal(missing.code, 1);
  assert.match(missing.out, /Failed to canonicalize path \/nonexistent\/sparkler: No such file or directory \(os error 2\)/);
  const dir = await jailer([...common('bad2').map((a) => (a === SPARKLER ? base : a))]);
  assert.equal(dir.code, 1);
  assert.match(dir.out, new RegExp(`${base} is not a file`));
  const empty = await jailer(['--id', '', '--exec-file', SPARKLER, '--uid', '1', '--gid', '1']);
  assert.equal(empty.code, 1);
  assert.match(empty.out, /Invalid instance ID: Invalid len \(0\);  the length must be between 1 and 64/);

  // A symlink or a hard link where the exec file is copied to.
  const linkRoot = chroot('bad-symlink');
  fs.mkdirSync(linkRoot, { recursive: true });
  fs.symlinkSync('/etc/passwd', path.join(linkRoot, 'sparkler'));
  const sym = await jailer(common('bad-symlink'));
  assert.equal(sym.code, 1);
  assert.match(sym.out, new RegExp(`Failed to open ${path.join(linkRoot, 'sparkler')}`));
  const hardRoot = chroot('bad-hardlink');
  fs.mkdirSync(hardRoot, { recursive: true });
  fs.writeFileSync(path.join(base, 'victim'), 'x');
  fs.linkSync(path.join(base, 'victim'), path.join(hardRoot, 'sparkler'));
  const hard = await jailer(common('bad-hardlink'));
  assert.equal(hard.code, 1);
  assert.match(hard.out, new RegExp(`Detected hard link at: ${path.join(hardRoot, 'sparkler')}`));
  assert.equal(fs.readFileSync(path.join(base, 'victim'), 'utf8'), 'x');

  // A cgroup file the kernel does not have: the chroot and the cgroup made for it are removed.
  const memory = mountDir('cgroup', 'memory');
  if (memory) {
    const parent = path.join(ownCgroupV1('memory'), `sparkler-jail-bad-${process.pid}`);
    const bad = await jailer([...common('bad-cgroup'), '--parent-cgroup', parent, '--cgroup', 'memory.no_such_file=1']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /Failed to write to .*memory\.no_such_file/);
    assert.equal(fs.existsSync(path.join(base, 'sparkler', 'bad-cgroup')), false);
    assert.equal(fs.existsSync(path.join(memory, parent)), false);
  }
});

const cpuSkip = rootSkip ?? (mountDir('cgroup', 'cpu') && mountDir('cgroup', 'cpuset') && ownCgroupV1('cpu') === ownCgroupV1('cpuset') ? undefined : 'needs cgroup v1 cpu and cpuset, with this process in the same path of both');
test('v1 cpu and cpuset cgroups: a new cpuset cgroup gets its parent\'s memory nodes, each file holds its value, tasks the pid', { skip: cpuSkip }, async () => {
  const cpuMount = mountDir('cgroup', 'cpu')!;
  const cpusetMount = mountDir('cgroup', 'cpuset')!;
  const id = 'jail-cpuset';
  const parent = path.join(ownCgroupV1('cpu'), `sparkler-jail-cpuset-${process.pid}`);
  cgroupDirs.push(path.join(cpuMount, parent), path.join(cpuMount, parent, id), path.join(cpusetMount, parent), path.join(cpusetMount, parent, id));
  const firstCpu = fs.readFileSync(path.join(cpusetMount, ownCgroupV1('cpuset'), 'cpuset.cpus'), 'utf8').trim().split(/[-,]/)[0];
  const run = jailer([...common(id), '--new-pid-ns', '--parent-cgroup', parent, '--cgroup', 'cpu.shares=2', '--cgroup', 'cpu.cfs_period_us=200000', '--cgroup', `cpuset.cpus=${firstCpu}`, '--', '--api-sock', 'api.socket', '--no-seccomp']);
  const r = await run;
  assert.equal(r.code, 0, r.out);
  const pid = Number(fs.readFileSync(path.join(chroot(id), 'sparkler.pid'), 'utf8'));
  started.push(pid);
  const read = (m: string, f: string) => fs.readFileSync(path.join(m, parent, id, f), 'utf8').trim();
  assert.equal(read(cpuMount, 'cpu.shares'), '2');
  assert.equal(read(cpuMount, 'cpu.cfs_period_us'), '200000');
  assert.equal(read(cpusetMount, 'cpuset.cpus'), firstCpu);
  assert.equal(read(cpusetMount, 'cpuset.mems'), fs.readFileSync(path.join(cpusetMount, ownCgroupV1('cpuset'), 'cpuset.mems'), 'utf8').trim());
  for (const m of [cpuMount, cpusetMount]) assert.ok(read(m, 'tasks').split('\n').includes(`${pid}`));
  process.kill(pid, 'SIGKILL');
  await waitFor(() => !alive(pid), 'the VMM to die');
});
