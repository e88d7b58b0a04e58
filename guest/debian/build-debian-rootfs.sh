#!/usr/bin/env bash
# Usage: build-debian-rootfs.sh OUT WORKDIR
# Writes OUT: an ext4 image of Debian ($DEBIAN_SUITE, default bookworm) made by debootstrap
# --variant=minbase with $DEBIAN_PACKAGES (comma-separated) included, systemd as init, root
# autologin on the ttyS0 console, the sparkler.cmd/sparkler.shell contract (overlay/) and
# static networking from ip=. No loop mount: the tree is built in WORKDIR (debootstrap needs
# root for its chroot) and packed by mke2fs -d. The mirror is the one this host's apt uses.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: build-debian-rootfs.sh OUT WORKDIR" >&2; exit 2; }
STEP=debian-rootfs
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
out=$(realpath -m "$1") work=$(realpath -m "$2")
suite=${DEBIAN_SUITE:-bookworm}
packages=${DEBIAN_PACKAGES:-systemd,systemd-sysv}
size=${DEBIAN_IMAGE_SIZE:-480M}
[ "$(id -u)" = 0 ] || { echo "[$STEP] debootstrap needs root (it runs package scripts in a chroot); run as root" >&2; exit 1; }
need apt-get apt; need mke2fs e2fsprogs
if ! command -v debootstrap >/dev/null 2>&1; then
  step "installing the missing host package debootstrap" apt-get install -y -q debootstrap
fi
# The mirror this host's apt already uses for $suite (from /etc/apt/sources.list*).
mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null \
  | awk -v s="$suite" '$2 == s && $3 == "main" { print $1; exit }')
[ -n "$mirror" ] || { echo "[$STEP] apt has no '$suite main' source: add one to /etc/apt/sources.list and run apt-get update" >&2; exit 1; }

root="$work/root"
step "debootstrap --variant=minbase $suite from $mirror (several minutes)" \
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror"

echo "[$STEP] configuring" >&2
cp -a "$here/overlay/." "$root/"
printf 'deb %s %s main\n' "$mirror" "$suite" >"$root/etc/apt/sources.list"
echo sparkler >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 sparkler\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# The root drive is mounted by the kernel/initramfs from root= with ro or rw as the VMM says.
echo '# The root drive is mounted from the kernel command line (root=, ro/rw).' >"$root/etc/fstab"
# Each boot of a copy gets its own machine id.
: >"$root/etc/machine-id"
chroot "$root" passwd -dq root
mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
UNIT
chroot "$root" systemctl enable -q sparkler-cmd.service sparkler-net.service serial-getty@ttyS0.service
# Services that only cost boot time in a microVM (no VGA consoles: the console is ttyS0).
chroot "$root" systemctl mask -q systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer getty@tty1.service getty-static.service 2>/dev/null || true

echo "[$STEP] trimming caches and documentation" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
echo "[$STEP] tree: $(du -sh "$root" | cut -f1)" >&2
step "mke2fs -t ext4 -d ($size)" make_ext4 "$root" "$out" "$size" sparkler-debian
echo "[$STEP] done: $(du -h --apparent-size "$out" | cut -f1) image, $(du -h "$out" | cut -f1) on disk" >&2
