#!/usr/bin/env bash
# Usage: build-tools-rootfs.sh OUT WORKDIR
# Writes OUT: the busybox rootfs (../rootfs/stage.sh, Sparkler init) plus the programs of the
# Debian packages in $TOOLS_PACKAGES (iperf3 socat fio) and exactly the shared libraries they
# load (their ELF NEEDED closure), all unpacked from Debian packages; under 64 MiB.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: build-tools-rootfs.sh OUT WORKDIR" >&2; exit 2; }
STEP=tools-rootfs
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
out=$(realpath -m "$1") work=$(realpath -m "$2")
tools=${TOOLS_PACKAGES:-iperf3 socat fio}
need apt-get apt; need apt-cache apt; need dpkg-deb dpkg; need readelf binutils; need mke2fs e2fsprogs
size=64M

# The tools and every library package they depend on, directly or through other libraries.
# Non-library dependencies (perl, python3, adduser...) serve maintainer scripts or extras.
is_lib() { case $1 in lib*|zlib1g) return 0 ;; *) return 1 ;; esac; }
wanted=" " frontier=$tools
for p in $tools; do wanted="$wanted$p "; done
while [ -n "$frontier" ]; do
  next=""
  for dep in $(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances $frontier 2>/dev/null | sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<][^ ]*\)$/\2/p' | sort -u); do
    dep=${dep%:any}
    is_lib "$dep" || continue
    case $wanted in *" $dep "*) continue ;; esac
    wanted="$wanted$dep " next="$next $dep"
  done
  frontier=$next
done
step "downloading$(echo "$wanted" | wc -w | sed 's/^/ /') packages: $tools and their libraries" fetch_debs "$work/debs" $wanted
step "unpacking" unpack_debs "$work/debs" "$work/pool"

root="$work/root"
step "staging busybox and init" "$here/../rootfs/stage.sh" "$root"
# The tools' programs (and fio's engine plugins, if any), at their Debian paths.
for p in $tools; do
  dpkg-deb -c "$work"/debs/"${p}"_*.deb | awk '{print $6}' | sed 's|^\./||' \
    | grep -E '^(usr/)?s?bin/|/fio/' | while read -r f; do
      [ -f "$work/pool/$f" ] || [ -L "$work/pool/$f" ] || continue
      mkdir -p "$root/$(dirname "$f")"; cp -a "$work/pool/$f" "$root/$f"
    done
done

# Copies each NEEDED library (and its own NEEDED, ...) from the pool, symlinks resolved.
libdirs="lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu"
# A library outside the standard folders (ceph's, found through RUNPATH) keeps its folder.
find_lib() {
  local d f
  for d in $libdirs; do [ -e "$work/pool/$d/$1" ] && { echo "$d/$1"; return 0; }; done
  f=$(cd "$work/pool" && find . -name "$1" | sed 's|^\./||' | head -n1)
  [ -n "$f" ] && echo "$f"
}
queue=$(find "$root" -type f -perm -u+x ! -name busybox ! -name init)
queue="$queue $(find "$root" -type f -name '*.so*')"
seen=" "
while [ -n "${queue// /}" ]; do
  next=""
  for elf in $queue; do
    for so in $(LC_ALL=C readelf -d "$elf" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      case $seen in *" $so "*) continue ;; esac
      seen="$seen$so "
      rel=$(find_lib "$so") || { echo "[$STEP] no package provides $so (needed by ${elf#$root/})" >&2; exit 1; }
      mkdir -p "$root/$(dirname "$rel")"
      cp -L "$work/pool/$rel" "$root/$rel"
      next="$next $root/$rel"
    done
  done
  queue=$next
done
# ICU's locale data (30 MB) comes in only through libnbd -> libxml2 -> libicuuc, for charset
# conversions that fio never asks for; it would not fit in 64 MiB. An empty stub of the same
# name and symbol satisfies the loader, and ICU reports missing data (an error code, not a
# crash) should anything ever ask.
icudata=$(find "$root" -name 'libicudata.so.*' | head -n1)
if [ -n "$icudata" ]; then
  need gcc gcc
  sym=$(LC_ALL=C readelf --dyn-syms -W "$icudata" | awk '$7 != "UND" && $8 ~ /^icudt[0-9]+_dat$/ {print $8; exit}')
  [ -n "$sym" ] || { echo "[$STEP] no icudt*_dat symbol in ${icudata#$root/}" >&2; exit 1; }
  echo "const unsigned char $sym[32] __attribute__((aligned(16)));" >"$work/icudata-stub.c"
  step "replacing ${icudata#$root/} with an empty stub" \
    gcc -shared -nostdlib -Wl,-soname,"$(basename "$icudata")" -o "$icudata" "$work/icudata-stub.c"
fi

# The dynamic loader, at the path the programs name.
mkdir -p "$root/lib64" "$root/lib/x86_64-linux-gnu"
cp -L "$work/pool/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$root/lib/x86_64-linux-gnu/"
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
find "$root" -exec touch -h -d @0 {} +
echo "[$STEP] programs and $(echo "$seen" | wc -w) libraries staged: $(du -sh "$root" | cut -f1)" >&2
step "mke2fs -t ext4 -d ($size)" make_ext4 "$root" "$out" "$size" sparkler-tools
echo "[$STEP] done: $(du -h --apparent-size "$out" | cut -f1) image, $(du -h "$out" | cut -f1) on disk" >&2
