#!/usr/bin/env bash
# Usage: build-initrd.sh OUT WORKDIR
# Writes OUT: a gzip-compressed cpio (newc) initramfs of the staged busybox tree with /init.
# /dev/console is not in the archive (mknod needs root): the kernel's built-in initramfs
# already provides it, and init reopens the console after mounting devtmpfs.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: build-initrd.sh OUT WORKDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "$1") work=$2
echo "[initrd] staging busybox and init" >&2
"$here/stage.sh" "$work/root"
echo "[initrd] packing cpio (newc) + gzip" >&2
(cd "$work/root" && find . -mindepth 1 | LC_ALL=C sort \
  | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n >"$out"
echo "[initrd] done: $(du -h "$out" | cut -f1)" >&2
