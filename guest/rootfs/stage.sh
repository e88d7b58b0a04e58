#!/usr/bin/env bash
# Usage: stage.sh DIR
# Fills DIR with a busybox-static userland and the Sparkler init: the tree that both the
# initramfs and the ext4 rootfs are made from. Needs no root: ownership is set later by the
# archive tools (cpio -R 0:0, debugfs).
# Env: BUSYBOX (default /bin/busybox, from Debian's busybox-static).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: stage.sh DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
dir=$1
bb=${BUSYBOX:-/bin/busybox}

[ -x "$bb" ] || { echo "stage: $bb missing: install it with 'apt-get install busybox-static'" >&2; exit 1; }
# A dynamically linked busybox would find no libc in the guest.
if LC_ALL=C readelf -l "$bb" 2>/dev/null | grep -q 'program interpreter'; then
  echo "stage: $bb is dynamically linked; install 'busybox-static' instead of 'busybox'" >&2
  exit 1
fi

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys tmp run root mnt var/log
chmod 1777 tmp
cp "$bb" bin/busybox
chmod 755 bin/busybox
# One symlink per applet at the path busybox itself reports (bin/sh, sbin/mount, ...).
for applet in $(bin/busybox --list-full); do
  [ -e "$applet" ] || [ -L "$applet" ] || ln -s /bin/busybox "$applet"
done
# Our init replaces busybox's init applet.
rm -f init sbin/init
install -m 755 "$here/../init/init" init
install -m 755 "$here/../init/init" sbin/init
# The SDK's guest agent (vsock port 52), static: the guest has no libc.
"$here/../agent/build.sh" sbin/sparkler-agent

printf 'root:x:0:0:root:/root:/bin/sh\n' >etc/passwd
printf 'root:x:0:\n' >etc/group
printf 'sparkler\n' >etc/hostname
# Fixed timestamps so the same inputs give the same archive.
find . -exec touch -h -d @0 {} +
