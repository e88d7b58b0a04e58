import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestCmdline, guestCommand, parseRtt, procCpuSeconds, qemuNetArgs, sparklerNetConfig, TAP, VCPU_THREAD } from './net-run';
import { netEntries } from './net';
import type { BenchContext } from './context';

const plan = { bzImage: '/k/bzImage', initrd: '/k/initrd', memMiB: 256, bytes: 64 * 1024 * 1024 };

test('both VMMs get the same kernel, initramfs and command line; QEMU a virtio-net-device on the TAP with vhost off', () => {
  const q = qemuNetArgs(plan);
  const cfg = sparklerNetConfig(plan) as { 'boot-source': { boot_args: string; kernel_image_path: string }; 'network-interfaces': Array<{ host_dev_name: string }> };
  assert.equal(q[q.indexOf('-append') + 1], cfg['boot-source'].boot_args);
  assert.equal(q[q.indexOf('-kernel') + 1], cfg['boot-source'].kernel_image_path);
  assert.ok(q.includes(`tap,id=n0,ifname=${TAP},script=no,downscript=no,vhost=off`));
  assert.ok(q.some((a) => a.startsWith('virtio-net-device,netdev=n0')));
  assert.equal(cfg['network-interfaces'][0].host_dev_name, TAP);
  assert.ok(guestCmdline(plan.bytes).length < 2048, 'fits the x86 kernel command line');
  assert.match(guestCommand(plan.bytes), /count=1024 .*\| nc 172\.16\.0\.1/);
});

test("busybox ping's summary gives the average; /proc/PID/stat's utime + stime in seconds, a name with spaces and ) included", () => {
  assert.equal(parseRtt('5 packets transmitted\nround-trip min/avg/max = 0.215/0.301/0.433 ms\n'), 0.301);
  assert.equal(parseRtt('5 packets transmitted\nround-trip min/avg/max = 0.215/0.301/0.433 ms\n', 'min'), 0.215);
  assert.equal(parseRtt('ping: sendto: Network unreachable'), undefined);
  const stat = '1234 (node (v) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 11 0 100 0 0';
  assert.equal(procCpuSeconds(1234, 100, () => stat), 3);
  assert.ok(['fc_vcpu 0', 'CPU 0/KVM', 'fc_vcpu 12'].every((n) => VCPU_THREAD.test(n)));
  assert.ok(!['node', 'qemu-system-x86', 'libuv-worker', 'fc_api'].some((n) => VCPU_THREAD.test(n)));
});

test('entries: medians per direction with Sparkler/QEMU ratios; a failed run is a problem, not a sample', () => {
  const ctx = { qemu: 'qemu-system-x86_64', problems: [] as string[] } as unknown as BenchContext;
  const samples = [
    { vmm: 'sparkler' as const, run: 0, upMiBps: 20, downMiBps: 10, upCpuSPerGiB: 4, downCpuSPerGiB: 6, rttMs: 0.5 },
    { vmm: 'qemu' as const, run: 0, upMiBps: 10, downMiBps: 10, upCpuSPerGiB: 2, downCpuSPerGiB: 6, rttMs: 0.25 },
    { vmm: 'sparkler' as const, run: 1, error: 'the guest did not finish' },
  ];
  const e = netEntries(ctx, samples, 'here', 64 * 1024 * 1024);
  const by = (n: string) => e.find((x) => x.name === n)!;
  assert.equal(by('net_throughput_mibps/guest_to_host').ratio, 2);
  assert.equal(by('net_throughput_mibps/guest_to_host').better, 'higher');
  assert.equal(by('net_vmm_cpu_s_per_gib/guest_to_host').ratio, 2);
  assert.equal(by('net_rtt_ms').ratio, 2);
  assert.equal(by('net_throughput_mibps/host_to_guest').sparkler?.runs, 1);
  assert.equal(ctx.problems.length, 1);
});
