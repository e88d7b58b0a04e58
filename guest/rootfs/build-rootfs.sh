#!/usr/bin/env bash
# Usage: build-rootfs.sh OUT WORKDIR
# Writes OUT: a 64 MiB ext4 image (sparse) of the staged busybox tree, made without root
# by mke2fs -d; /sbin/init and /init are the Sparkler init. Free space is left for tests.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: build-rootfs.sh OUT WORKDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "$1") work=$2
size=64M
echo "[rootfs] staging busybox and init" >&2
"$here/stage.sh" "$work/root"
echo "[rootfs] mke2fs -t ext4 -d ($size)" >&2
rm -f "$out"
# Fixed UUID, hash seed and time so the same inputs give the same image.
E2FSPROGS_FAKE_TIME=1 mke2fs -q -F -t ext4 -L sparkler-root \
  -U 5ba1e000-0000-4000-8000-000000000001 -E root_owner=0:0,hash_seed=5ba1e000-0000-4000-8000-000000000002 \
  -d "$work/root" "$out" "$size" >&2
# mke2fs -d copies the builder's uid/gid; a guest expects root to own its files.
if [ "$(id -u)" != 0 ] || [ "$(id -g)" != 0 ]; then
  echo "[rootfs] setting owner 0:0 on every inode (debugfs)" >&2
  (cd "$work/root" && find . -mindepth 1 | sed 's|^\.||' \
    | while IFS= read -r p; do printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"; done) >"$work/owners.cmd"
  debugfs -w -f "$work/owners.cmd" "$out" >/dev/null 2>"$work/debugfs.log" \
    || { cat "$work/debugfs.log" >&2; exit 1; }
fi
e2fsck -fn "$out" >/dev/null 2>&1 || { echo "[rootfs] e2fsck found problems in $out" >&2; exit 1; }
echo "[rootfs] done: $(du -h --apparent-size "$out" | cut -f1) image, $(du -h "$out" | cut -f1) on disk" >&2
