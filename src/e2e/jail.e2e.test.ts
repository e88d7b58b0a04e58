/**
 * End to end: in the emulated KVM host, where the mounts are ours, the jailer starts the VMM
 * with cgroup v2 (controllers enabled on a cgroup2 hierarchy), a memory limit and the default
 * seccomp filter; a Linux guest with a root drive boots inside the chroot, runs a command and
 * reboots, which ends the jailed VMM with 0. The guest also has a network interface on a TAP the
 * host made for the jail's uid, and a vsock device whose Unix socket appears inside the chroot, so
 * the filter covers what those devices call. Checked from outside while it runs: every thread
 * at Seccomp 2, the uid, the cgroup files, the vsock socket.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ensureInitrd, ensureKernel, ensureRootfs } from '../guest';
import { tempDir } from '../testing/temp-dir';
import { detectKvmHost } from '../host/kvm-host';
import { e2eUnavailableReason, where } from './harness';

const skip = e2eUnavailableReason() ?? (process.getuid?.() === 0 ? undefined : 'the jailer needs root');
const HOME = path.resolve(__dirname, '..', '..');
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd';
const GUEST_MAC = '06:00:ac:10:00:02';
const GUEST_CMD = 'echo jailed-guest-says-$((6*7)); cat /proc/partitions | grep -c vda; echo net-mac=$(cat /sys/class/net/eth0/address)';

describe(`a Linux guest booted inside the jail (in ${where()})`, { skip }, () => {
  const dir = tempDir('sparkler-jail-e2e-');
  let out = '';
  let facts: Record<string, string> = {};

  before(async () => {
    const kernel = await ensureKernel();
    const initrd = await ensureInitrd();
    const rootfs = await ensureRootfs();
    const cmd = Buffer.from(GUEST_CMD).toString('base64');
    const config = {
      'boot-source': { kernel_image_path: 'vmlinux', initrd_path: 'initrd', boot_args: `${BOOT_ARGS} sparkler.cmd=${cmd}` },
      'machine-config': { vcpu_count: 1, mem_size_mib: 128 },
      drives: [{ drive_id: 'rootfs', path_on_host: 'rootfs.img', is_root_device: false, is_read_only: true }],
      'network-interfaces': [{ iface_id: 'eth0', host_dev_name: 'sjail0', guest_mac: GUEST_MAC }],
      vsock: { guest_cid: 3, uds_path: 'v.sock' },
    };
    fs.writeFileSync(path.join(dir, 'vm.json'), JSON.stringify(config));
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    // The chroot lives on a tmpfs of the (emulated) host: device nodes need a local filesystem.
    const script = [
      '#!/bin/sh',
      'set -u',
      'BASE=/run/sparkler-jail-e2e; mkdir -p $BASE; mount -t tmpfs tmpfs $BASE',
      // cgroup v2 with its controllers where the host has no v2 hierarchy at /sys/fs/cgroup yet.
      '[ -f /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true',
      'CG=$(awk \'$3=="cgroup2"{print $2; exit}\' /proc/mounts)',
      `echo "$CG" > ${q(path.join(dir, 'cgroup-root'))}`,
      'ROOT=$BASE/sparkler/e2e/root; mkdir -p $ROOT',
      // The TAP is the host's to make (as with Firecracker); the jailed uid may attach to it.
      'ip tuntap add sjail0 mode tap user 1234 && ip link set sjail0 up',
      `cp ${q(kernel)} $ROOT/vmlinux; cp ${q(initrd)} $ROOT/initrd; cp ${q(rootfs)} $ROOT/rootfs.img; cp ${q(path.join(dir, 'vm.json'))} $ROOT/vm.json`,
      'chown 1234:1234 $ROOT/vmlinux $ROOT/initrd $ROOT/rootfs.img $ROOT/vm.json',
      `${q(path.join(HOME, 'bin', 'sparkler-jailer'))} --id e2e --exec-file ${q(path.join(HOME, 'bin', 'sparkler'))} --uid 1234 --gid 1234 --chroot-base-dir $BASE` +
        ` --cgroup-version 2 --parent-cgroup sparkler-e2e --cgroup memory.max=1073741824 --cgroup pids.max=256` +
        ` -- --no-api --config-file vm.json >${q(path.join(dir, 'vmm.out'))} 2>&1 </dev/null &`,
      'J=$!',
      'for i in $(seq 1 600); do [ -f $ROOT/sparkler.pid ] && break; sleep 0.1; done; sleep 2',
      'P=$(cat $ROOT/sparkler.pid)',
      `{ echo "pid=$P jailer=$J"; grep -h Seccomp: /proc/$P/task/*/status | sort | uniq -c; grep Uid: /proc/$P/status;` +
        ` echo "memory.max=$(cat $CG/sparkler-e2e/e2e/memory.max)"; echo "pids.max=$(cat $CG/sparkler-e2e/e2e/pids.max)";` +
        ` echo "procs=$(cat $CG/sparkler-e2e/e2e/cgroup.procs | tr '\\n' ' ')"; [ -S $ROOT/v.sock ] && echo vsock=socket; } > ${q(path.join(dir, 'facts'))} 2>&1`,
      `wait $J; echo "code=$?" >> ${q(path.join(dir, 'facts'))}`,
      'ip link del sjail0 2>/dev/null',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'jail.sh'), script, { mode: 0o755 });
    if (detectKvmHost().kind === 'hardware') {
      const { spawnSync } = await import('node:child_process');
      spawnSync('sh', [path.join(dir, 'jail.sh')], { stdio: 'inherit', timeout: 10 * 60_000 });
    } else {
      const { runInEmuHost } = await import('../emuhost');
      const r = await runInEmuHost(['sh', path.join(dir, 'jail.sh')], { stdio: 'pipe', timeoutMs: 15 * 60_000, retriesIfWedged: 3, attemptTimeoutMs: 4 * 60_000 });
      if (r.code !== 0) throw new Error(`The emulated KVM host run failed with code ${r.code}: ${r.stderr ?? ''}${r.stdout ?? ''}`);
    }
    out = fs.existsSync(path.join(dir, 'vmm.out')) ? fs.readFileSync(path.join(dir, 'vmm.out'), 'utf8') : '';
    const text = fs.existsSync(path.join(dir, 'facts')) ? fs.readFileSync(path.join(dir, 'facts'), 'utf8') : '';
    facts = { text, ...Object.fromEntries(text.split(/\s+/).filter((w) => /^[\w.]+=/.test(w)).map((w) => w.split('=', 2) as [string, string])) };
  });

  test('the guest boots in the jail, runs its command, sees its drive, and its reboot ends the VMM with 0', () => {
    const context = `facts:\n${facts.text}\nvmm:\n${out.slice(-3000)}`;
    assert.match(out, /jailed-guest-says-42/, context);
    assert.match(out, /SPARKLER-CMD-EXIT=0/, context);
    assert.match(out, /^1\r?$/m, `the guest sees vda: ${context}`);
    assert.match(out, new RegExp(`net-mac=${GUEST_MAC}`), `the guest has its network interface: ${context}`);
    assert.equal(facts.code, '0', context);
  });

  test('while it ran: Seccomp 2 on every thread, uid 1234, the v2 cgroup holds the VMM with its limits', () => {
    const context = facts.text;
    assert.match(facts.text, /^\s*\d+ Seccomp:\s+2\s*$/m, context);
    assert.doesNotMatch(facts.text, /Seccomp:\s+[01]/, context);
    assert.match(facts.text, /Uid:\s+1234\s+1234/, context);
    assert.equal(facts['memory.max'], '1073741824', context);
    assert.equal(facts['pids.max'], '256', context);
    assert.equal(facts.vsock, 'socket', `the vsock device's Unix socket is in the chroot: ${context}`);
    assert.ok(facts.text.includes(`procs=${facts.pid} `) || facts.text.includes(` ${facts.pid} `), context);
  });
});
