/**
 * `sparkler guest check --debian [--qemu]`: boots the Debian rootfs with Debian's cloud kernel
 * and its initramfs (in the emulated KVM host unless this host has hardware KVM) and checks
 * what the issue asks of it: PID 1 is systemd, `systemctl is-system-running --wait` says
 * running (or degraded, with the failed units printed), the root drive is ext4 read-write,
 * and sparkler.cmd's output and exit code come back. With --qemu the same kernel, initramfs
 * and image boot in QEMU's microvm machine in the same run, for the boot-time ratio.
 * Too slow for `npm test` (minutes under emulation), so it is a command.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { detectKvmHost } from '../host/kvm-host';
import { microvmArgs } from '../bench/qemu';
import { ensureDebianInitrd, ensureDebianKernel, ensureDebianRootfs } from './index';

const BIN = path.resolve(__dirname, '..', '..', 'bin', 'sparkler');
const BOOT_ARGS = 'console=ttyS0 reboot=k panic=1 pci=off quiet i8042.noaux i8042.nomux i8042.dumbkbd';
const EXIT_CODE = 7;
const MEM_MIB = 512;
const VCPUS = 2;

/** What the guest runs once multi-user.target is reached; every result line is tagged. */
export const CHECK_COMMAND = [
  'echo SPARKLER-CHECK pid1=$(cat /proc/1/comm)',
  'state=$(timeout 300 systemctl is-system-running --wait)',
  'echo SPARKLER-CHECK state=$state',
  '[ "$state" = running ] || systemctl --failed --no-legend --plain | sed "s/^/SPARKLER-CHECK failed-unit /"',
  'echo SPARKLER-CHECK root=$(findmnt -no FSTYPE,OPTIONS / | cut -d, -f1)',
  'systemd-analyze | sed "s/^/SPARKLER-CHECK analyze /"',
  'echo SPARKLER-CHECK multi-user-us=$(systemctl show -P ActiveEnterTimestampMonotonic multi-user.target)',
  `exit ${EXIT_CODE}`,
].join('\n');

export interface DebianCheck {
  pid1?: string;
  state?: string;
  failedUnits: string[];
  root?: string;
  exitCode?: number;
  /** systemd-analyze's kernel and userspace times (to the default target, graphical.target). */
  kernelS?: number;
  userspaceS?: number;
  /** When multi-user.target became active, on the guest's monotonic clock (from kernel start). */
  multiUserS?: number;
  problems: string[];
}

const seconds = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/([\d.]+)(min|ms|s)/g)) total += Number(n) * (unit === 'min' ? 60 : unit === 'ms' ? 0.001 : 1);
  return total;
};

/** Reads the tagged lines of one boot's console and says what is wrong. */
export function parseDebianCheck(consoleText: string): DebianCheck {
  const text = consoleText.replace(/\r/g, '');
  const tag = (key: string) => new RegExp(`SPARKLER-CHECK ${key}=(\\S*)`).exec(text)?.[1];
  const analyze = [...text.matchAll(/SPARKLER-CHECK analyze (.*)/g)].map((m) => m[1]!).join('\n');
  const exit = /SPARKLER-CMD-EXIT=(\d+)/.exec(text)?.[1];
  const multiUserUs = tag('multi-user-us');
  const r: DebianCheck = {
    pid1: tag('pid1'),
    state: tag('state'),
    failedUnits: [...text.matchAll(/SPARKLER-CHECK failed-unit (.*)/g)].map((m) => m[1]!.trim()),
    root: /SPARKLER-CHECK root=(\S+ \S+)/.exec(text)?.[1],
    exitCode: exit === undefined ? undefined : Number(exit),
    kernelS: seconds(/Startup finished in ([\d.a-z ]+?) \(kernel\)/.exec(analyze)?.[1]),
    userspaceS: seconds(/\+ ([\d.a-z ]+?) \(userspace\)/.exec(analyze)?.[1]),
    multiUserS: multiUserUs === undefined || !/^\d+$/.test(multiUserUs) ? undefined : Number(multiUserUs) / 1e6,
    problems: [],
  };
  if (r.pid1 !== 'systemd') r.problems.push(`PID 1 is ${r.pid1 ?? 'unknown'}, not systemd`);
  if (r.state !== 'running' && r.state !== 'degraded') r.problems.push(`the system state is '${r.state ?? 'unknown'}', not running or degraded`);
  if (r.state === 'degraded' && r.failedUnits.length === 0) r.problems.push('degraded, but no failed unit was listed');
  if (r.root !== 'ext4 rw') r.problems.push(`the root filesystem is '${r.root ?? 'unknown'}', not ext4 rw`);
  if (r.exitCode !== EXIT_CODE) r.problems.push(`sparkler.cmd's exit code came back as ${r.exitCode ?? 'nothing'}, not ${EXIT_CODE}`);
  return r;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export async function checkDebian(opts: { qemu: boolean; log: (line: string) => void }): Promise<number> {
  const { vmlinuz } = await ensureDebianKernel();
  const initrd = await ensureDebianInitrd();
  const rootfs = await ensureDebianRootfs();
  const dir = mkdtempSync(path.join(tmpdir(), 'sparkler-guest-check-'));
  try {
    const cmdline = `${BOOT_ARGS} sparkler.cmd=${Buffer.from(CHECK_COMMAND).toString('base64')}`;
    const lines = ['#!/bin/sh'];
    const image = (name: string) => {
      const copy = path.join(dir, `${name}.ext4`);
      copyFileSync(rootfs, copy); // each boot writes to its own copy
      return copy;
    };
    const config = path.join(dir, 'vm.json');
    writeFileSync(config, JSON.stringify({
      'boot-source': { kernel_image_path: vmlinuz, initrd_path: initrd, boot_args: cmdline },
      'machine-config': { vcpu_count: VCPUS, mem_size_mib: MEM_MIB },
      drives: [{ drive_id: 'root', path_on_host: image('sparkler'), is_root_device: true, is_read_only: false }],
    }));
    const out = (name: string) => path.join(dir, `${name}.out`);
    lines.push(`timeout 900 ${q(BIN)} --no-api --boot-timer --config-file ${q(config)} >${q(out('sparkler'))} 2>&1 </dev/null`);
    if (opts.qemu) {
      const args = microvmArgs({ kernel: vmlinuz, initrd, cmdline: `${cmdline} root=/dev/vda rw`, vcpus: VCPUS, memMiB: MEM_MIB })
        .map((a) => (a === 'microvm,x-option-roms=off' ? 'microvm,x-option-roms=off,acpi=on' : a));
      args.push('-drive', `id=root,file=${image('qemu')},format=raw,if=none`, '-device', 'virtio-blk-device,drive=root');
      lines.push(`timeout 900 qemu-system-x86_64 ${args.map(q).join(' ')} >${q(out('qemu'))} 2>&1 </dev/null`);
    }
    const script = path.join(dir, 'boots.sh');
    writeFileSync(script, `${lines.join('\n')}\n`, { mode: 0o755 });
    const started = Date.now();
    if (detectKvmHost().kind === 'hardware') {
      const { spawnSync } = await import('node:child_process');
      spawnSync('sh', [script], { stdio: 'inherit' });
    } else {
      opts.log('booting in the emulated KVM host (several minutes)');
      const { runInEmuHost } = await import('../emuhost');
      const r = await runInEmuHost(['sh', script], { stdio: 'pipe', timeoutMs: 40 * 60_000, memoryMiB: 3072, retriesIfWedged: 1, attemptTimeoutMs: 30 * 60_000 });
      if (r.code !== 0) opts.log(`the emulated host run ended with code ${r.code}: ${(r.stderr ?? '').slice(-2000)}`);
    }
    opts.log(`boots took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    let failed = false;
    const results: Record<string, DebianCheck> = {};
    for (const vmm of opts.qemu ? ['sparkler', 'qemu'] : ['sparkler']) {
      let text = '';
      try {
        text = readFileSync(out(vmm), 'utf8');
      } catch { /* no output: reported below */ }
      const r = parseDebianCheck(text);
      results[vmm] = r;
      const timer = /Guest-boot-time = +(\d+) us/.exec(text)?.[1];
      process.stdout.write(`${vmm}: PID 1 ${r.pid1 ?? '?'}, state ${r.state ?? '?'}, root ${r.root ?? '?'}, sparkler.cmd exit ${r.exitCode ?? '?'}`
        + `, kernel ${r.kernelS?.toFixed(2) ?? '?'} s + userspace ${r.userspaceS?.toFixed(2) ?? '?'} s, multi-user.target at ${r.multiUserS?.toFixed(2) ?? '?'} s`
        + `${timer ? `, boot timer ${(Number(timer) / 1e6).toFixed(2)} s` : ''}\n`);
      for (const unit of r.failedUnits) process.stdout.write(`${vmm}:   failed unit: ${unit}\n`);
      for (const p of r.problems) process.stdout.write(`${vmm}:   PROBLEM: ${p}\n`);
      if (r.problems.length > 0) {
        failed = true;
        process.stdout.write(`${vmm}: console tail:\n${text.slice(-3000)}\n`);
      }
    }
    const s = results['sparkler'], qm = results['qemu'];
    if (s?.multiUserS !== undefined && qm?.multiUserS !== undefined) {
      process.stdout.write(`boot to multi-user.target (guest monotonic clock): Sparkler ${s.multiUserS.toFixed(2)} s, QEMU microvm ${qm.multiUserS.toFixed(2)} s, ratio ${(s.multiUserS / qm.multiUserS).toFixed(2)}\n`);
    }
    return failed ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
