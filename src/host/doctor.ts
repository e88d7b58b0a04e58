/** `sparkler doctor`: what this host can do, one line per capability. */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { detectKvmHost } from './kvm-host';
import { jailChecks } from './jail-checks';

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

function readable(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function hostChecks(): Check[] {
  const kvm = detectKvmHost();
  const checks: Check[] = [{ name: 'kvm', ok: kvm.kind !== 'none', detail: `${kvm.kind}: ${kvm.summary}` }];
  let kvmAccess = 'not present';
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    kvmAccess = 'read-write';
  } catch (err) {
    kvmAccess = fs.existsSync('/dev/kvm') ? `not accessible (${(err as NodeJS.ErrnoException).code})` : 'not present';
  }
  checks.push({ name: 'kvm-access', ok: kvmAccess === 'read-write', detail: `/dev/kvm ${kvmAccess}` });
  const cpuinfo = readable('/proc/cpuinfo') ?? '';
  const virtFlags = ['vmx', 'svm'].filter((f) => new RegExp(`\\b${f}\\b`).test(cpuinfo));
  checks.push({ name: 'cpu-virtualisation', ok: virtFlags.length > 0, detail: virtFlags.length ? `CPU flags: ${virtFlags.join(', ')}` : 'CPU has no vmx/svm flag' });
  checks.push(tapCheck());
  const uffdSysctl = readable('/proc/sys/vm/unprivileged_userfaultfd');
  const uffdDev = fs.existsSync('/dev/userfaultfd');
  checks.push({
    name: 'userfaultfd',
    ok: uffdDev || uffdSysctl !== undefined,
    detail: `${uffdDev ? '/dev/userfaultfd present' : 'no /dev/userfaultfd'}; vm.unprivileged_userfaultfd=${uffdSysctl ?? 'n/a'}`,
  });
  const controllers = readable('/sys/fs/cgroup/cgroup.controllers');
  checks.push({
    name: 'cgroups',
    ok: controllers !== undefined,
    detail: controllers !== undefined ? `cgroup v2, controllers: ${controllers || '(none delegated)'}` : 'no cgroup v2 hierarchy at /sys/fs/cgroup',
  });
  const qemu = hasCommand('qemu-system-x86_64');
  checks.push({ name: 'emulated-kvm-host', ok: qemu, detail: qemu ? 'qemu-system-x86_64 present: `sparkler emuhost` can run' : 'qemu-system-x86_64 missing (apt-get install qemu-system-x86)' });
  checks.push(...jailChecks());
  return checks;
}

export async function run(argv: string[]): Promise<number> {
  const checks = hostChecks();
  if (argv.includes('--json')) {
    process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
    return 0;
  }
  for (const c of checks) process.stdout.write(`${c.ok ? 'ok  ' : 'no  '} ${c.name.padEnd(20)} ${c.detail}\n`);
  const kvm = detectKvmHost();
  if (kvm.kind === 'pvm') {
    process.stdout.write('\nStock Linux guests boot here only inside the emulated KVM host: `bin/sparkler emuhost -- <command>`.\n');
  }
  return 0;
}

/**
 * Whether this process can create a TAP as a network interface will open one (IFF_TAP |
 * IFF_NO_PI | IFF_VNET_HDR): a transient device with a unique name, gone again at close.
 */
function tapCheck(): Check {
  if (!fs.existsSync('/dev/net/tun')) return { name: 'tap', ok: false, detail: '/dev/net/tun missing (modprobe tun)' };
  try {
    const { Tap } = require('../devices/virtio/net/tap') as typeof import('../devices/virtio/net/tap');
    const { native } = require('../native') as typeof import('../native');
    Tap.open(`spkdoc${process.pid % 1_000_000}`, native()).close();
    return { name: 'tap', ok: true, detail: 'a TAP device with a virtio-net header can be created' };
  } catch (err) {
    return { name: 'tap', ok: false, detail: `cannot create a TAP device: ${(err as Error).message} (needs CAP_NET_ADMIN, or a persistent TAP made with \`ip tuntap add\` for this user)` };
  }
}
