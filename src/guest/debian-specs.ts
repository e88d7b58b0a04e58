/**
 * The guest artifacts made from Debian's own binary packages (downloaded with apt, unpacked,
 * never installed on the host): Debian's cloud kernel and an initramfs for it, the busybox
 * rootfs with real tools, and a Debian 12 rootfs with systemd. See docs/guests.md.
 */
import * as path from 'node:path';
import type { ArtifactKind, ArtifactSpec } from './inputs';

/** The packages the tools rootfs adds to busybox (their shared libraries come along). */
export const TOOLS_PACKAGES = ['iperf3', 'socat', 'fio'];

/** Installed into the Debian rootfs on top of debootstrap's minbase. */
export const DEBIAN_ROOTFS_PACKAGES = ['systemd', 'systemd-sysv', 'udev', 'iperf3', 'socat', 'fio', 'curl', 'iproute2', 'python3', 'ca-certificates'];

export const DEBIAN_SUITE = 'bookworm';

type DebianKind = Extract<ArtifactKind, `debian-${string}` | 'tools-rootfs'>;

export const DEBIAN_SPECS: Record<DebianKind, ArtifactSpec> = {
  'debian-kernel': {
    kind: 'debian-kernel',
    files: ['debian/lib.sh', 'debian/kernel.sh'],
    packages: ['dpkg', 'kmod'],
    aptPackages: ['linux-image-cloud-amd64'],
    script: 'debian/kernel.sh',
    args: (out, work) => [out, work],
    env: (apt) => ({ DEBIAN_KERNEL_VERSION: apt['linux-image-cloud-amd64']! }),
    outputs: ['vmlinuz', 'config', 'release', 'modules'],
  },
  'debian-initrd': {
    kind: 'debian-initrd',
    files: ['debian/lib.sh', 'debian/build-initrd.sh', 'debian/initrd-init', 'init/init', 'rootfs/stage.sh'],
    packages: ['busybox-static', 'cpio'],
    after: ['debian-kernel'],
    script: 'debian/build-initrd.sh',
    args: (out, work, [kernel]) => [path.join(out, 'initrd.cpio.gz'), work, kernel!],
    outputs: ['initrd.cpio.gz'],
  },
  'tools-rootfs': {
    kind: 'tools-rootfs',
    files: ['debian/lib.sh', 'debian/build-tools-rootfs.sh', 'init/init', 'rootfs/stage.sh'],
    packages: ['busybox-static', 'e2fsprogs', 'dpkg', 'binutils', 'gcc'],
    aptPackages: TOOLS_PACKAGES,
    script: 'debian/build-tools-rootfs.sh',
    args: (out, work) => [path.join(out, 'rootfs.ext4'), work],
    env: () => ({ TOOLS_PACKAGES: TOOLS_PACKAGES.join(' ') }),
    outputs: ['rootfs.ext4'],
  },
  'debian-rootfs': {
    kind: 'debian-rootfs',
    files: [
      'debian/lib.sh', 'debian/build-debian-rootfs.sh', 'debian/overlay/usr/local/sbin/sparkler-cmd',
      'debian/overlay/usr/local/sbin/sparkler-net', 'debian/overlay/etc/systemd/system/sparkler-cmd.service',
      'debian/overlay/etc/systemd/system/sparkler-net.service',
    ],
    packages: ['e2fsprogs'],
    // debootstrap resolves minbase itself; these pin the packages that matter most.
    aptPackages: [...DEBIAN_ROOTFS_PACKAGES, 'libc6', 'debootstrap'],
    script: 'debian/build-debian-rootfs.sh',
    args: (out, work) => [path.join(out, 'rootfs.ext4'), work],
    env: () => ({ DEBIAN_SUITE, DEBIAN_PACKAGES: DEBIAN_ROOTFS_PACKAGES.join(',') }),
    outputs: ['rootfs.ext4'],
  },
};
