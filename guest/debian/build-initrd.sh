#!/usr/bin/env bash
# Usage: build-initrd.sh OUT WORKDIR KERNEL_DIR
# Writes OUT: a gzip cpio initramfs for the Debian cloud kernel in KERNEL_DIR (made by
# kernel.sh): the busybox tree of ../rootfs/stage.sh with debian/initrd-init as /init, the
# Sparkler init as /sbin/init, and the virtio modules it loads (with their dependencies).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: build-initrd.sh OUT WORKDIR KERNEL_DIR" >&2; exit 2; }
STEP=debian-initrd
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
out=$(realpath -m "$1") work=$2 kernel=$3
need cpio cpio; need gzip gzip
release=$(cat "$kernel/release")
moddir="$kernel/modules/$release"
root="$work/root"
step "staging busybox and init" "$here/../rootfs/stage.sh" "$root"
install -m 755 "$here/initrd-init" "$root/init"

# The module list and the resolver are the init's own, so what is packed is what it loads.
dest="$root/lib/modules/$release"
mkdir -p "$dest"
files=$(SPARKLER_INIT_LIB=1 bash -c '. "$1"; for m in $MODULES; do module_files "$m" "$2/modules.dep" || { echo "no module $m" >&2; exit 1; }; done' _ "$here/initrd-init" "$moddir" | sort -u)
for f in $files; do
  mkdir -p "$dest/$(dirname "$f")"
  cp "$moddir/$f" "$dest/$f"
done
# Only the lines for the packed modules, so the init never points at a missing file.
grep -F -f <(printf '%s:\n' $files) "$moddir/modules.dep" >"$dest/modules.dep"
echo "[$STEP] $(echo "$files" | wc -w) modules for $release" >&2
find "$root" -exec touch -h -d @0 {} +
step "packing cpio (newc) + gzip" bash -c 'cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet | gzip -9n >"$2"' _ "$root" "$out"
echo "[$STEP] done: $(du -h "$out" | cut -f1)" >&2
