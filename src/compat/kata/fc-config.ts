/**
 * What Kata Containers' Firecracker driver hands the VMM, rebuilt from its source
 * (kata-containers/kata-containers src/runtime/virtcontainers/fc.go): the jailer's command line
 * (fcInit), the chroot paths (setPaths), and the config file it writes before starting the VMM
 * (fcInitConfiguration -> fcSetVMBaseConfig, fcSetBootSource, fcSetVMRootfs, createDiskPool,
 * fcSetLogger, fcSetMetrics, then the queued devices: fcAddNetDevice, fcAddVsock).
 */
import * as path from 'node:path';

/** fc.go constants. */
export const KATA = {
  socket: 'firecracker.socket',
  kernel: 'vmlinux',
  rootfs: 'rootfs',
  diskPoolSize: 8,
  hybridVsock: 'kata.hvsock',
  guestCid: 3,
  logFifo: 'logs.fifo',
  metricsFifo: 'metrics.fifo',
  config: 'fcConfig.json',
  /** vSockPort in kata's kata_agent.go: the agent's port on the hybrid vsock. */
  agentPort: 1024,
} as const;

/**
 * fcInitConfiguration's kernel command line: the user's `kernel_params` from
 * configuration-fc.toml first, then fcKernelParams (with commonVirtioblkKernelRootParams) and,
 * without debug, the no-console pair.
 */
export function kataKernelParams(debug: boolean, userParams: readonly string[] = []): string {
  const params = [
    'root=/dev/vda1', 'rootflags=data=ordered,errors=remount-ro ro', 'rootfstype=ext4',
    'pci=off', 'reboot=k', 'panic=1', 'iommu=off', 'net.ifnames=0', 'random.trust_cpu=on', 'acpi=off',
  ];
  return [...userParams, ...params, ...(debug ? ['console=ttyS0'] : ['8250.nr_uarts=0', 'agent.log_vport=1025'])].join(' ');
}

/** setPaths: <chroot_base>/<basename(hypervisor)>/<id>/root, and the sockets in it. */
export function kataPaths(chrootBase: string, hypervisorPath: string, id: string) {
  const vmPath = path.join(chrootBase, path.basename(hypervisorPath), id);
  const jailerRoot = path.join(vmPath, 'root');
  return { vmPath, jailerRoot, socketPath: path.join(jailerRoot, 'run', KATA.socket), hybridSocketPath: path.join(jailerRoot, KATA.hybridVsock) };
}

/** fcInit, jailed: the jailer's arguments. */
export function kataJailerArgs(o: { id: string; hypervisorPath: string; chrootBase: string; netns?: string; configInJail: string }): string[] {
  const args = ['--id', o.id, '--node', '0', '--exec-file', o.hypervisorPath, '--uid', '0', '--gid', '0', '--chroot-base-dir', o.chrootBase, '--daemonize'];
  if (o.netns) args.push('--netns', o.netns);
  return [...args, '--', '--config-file', o.configInJail];
}

/** kata's revertBytes: a kata rate (scaled by 1000) to Firecracker's (scaled by 1024). */
export function revertBytes(n: number): number {
  const a = Math.floor(n / 1000);
  return a === 0 ? n : 1024 * revertBytes(a) + (n % 1000);
}

export interface KataVm {
  memMiB: number;
  vcpus: number;
  debug: boolean;
  /** configuration-fc.toml `kernel_params`. */
  kernelParams?: readonly string[];
  /** The tap inside the netns, and the rate limits in bits/s (0: none). */
  net?: { ifaceId: string; tap: string; mac: string; rxBits: number; txBits: number };
}

/**
 * The fcConfig.json Kata marshals (json.MarshalIndent of types.FcConfig): every path as the jail
 * sees it. An unset Kata rate limiter is still sent, as an empty object.
 */
export function kataFcConfig(vm: KataVm): Record<string, unknown> {
  const bucket = (bits: number) => (bits > 0 ? { bandwidth: { size: revertBytes(bits / 8), refill_time: 1000 } } : {});
  const drives = [
    { drive_id: 'rootfs', is_read_only: true, is_root_device: false, path_on_host: `/${KATA.rootfs}` },
    ...Array.from({ length: KATA.diskPoolSize }, (_, i) => ({ drive_id: `drive_${i}`, is_read_only: false, is_root_device: false, path_on_host: `/drive_${i}` })),
  ];
  return {
    'boot-source': { kernel_image_path: `/${KATA.kernel}`, boot_args: kataKernelParams(vm.debug, vm.kernelParams) },
    drives,
    logger: { level: vm.debug ? 'Debug' : 'Error', log_path: `/${KATA.logFifo}` },
    'machine-config': { mem_size_mib: vm.memMiB, smt: false, vcpu_count: vm.vcpus },
    metrics: { metrics_path: `/${KATA.metricsFifo}` },
    'network-interfaces': vm.net
      ? [{ guest_mac: vm.net.mac, host_dev_name: vm.net.tap, iface_id: vm.net.ifaceId, rx_rate_limiter: bucket(vm.net.rxBits), tx_rate_limiter: bucket(vm.net.txBits) }]
      : [],
    vsock: { guest_cid: KATA.guestCid, uds_path: `/${KATA.hybridVsock}`, vsock_id: 'root' },
  };
}
