#!/usr/bin/env bash
# Usage: build.sh OUTDIR WORKDIR
# Builds the Sparkler microVM kernel from Debian's linux-source-6.1 tarball: allnoconfig plus
# microvm.config, olddefconfig, a check that the fragment survived, then vmlinux and bzImage.
# Writes vmlinux, bzImage, config and System.map into OUTDIR (created). WORKDIR holds the
# source tree and can be deleted afterwards. Progress goes to stderr; stdout stays quiet.
# Env: LINUX_TARBALL (default /usr/src/linux-source-6.1.tar.xz), JOBS (default nproc).
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: build.sh OUTDIR WORKDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=$1 work=$2
tarball=${LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
jobs=${JOBS:-$(nproc)}
start=$SECONDS
say() { echo "[kernel] $*" >&2; }

if [ ! -r "$tarball" ]; then
  say "missing $tarball: install it with 'apt-get install linux-source-6.1'"
  exit 1
fi
mkdir -p "$out" "$work"

say "extracting $tarball"
tar -xf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n 1)
[ -n "$src" ] || { say "no linux-source-* folder in $tarball"; exit 1; }

# Fixed build identity so the same inputs give the same banner.
export KBUILD_BUILD_USER=sparkler KBUILD_BUILD_HOST=sparkler
export KBUILD_BUILD_TIMESTAMP='1970-01-01 00:00:00 UTC'
kmake() { make -C "$src" ARCH=x86_64 "$@"; }

say "configuring: allnoconfig + microvm.config, then olddefconfig"
log="$work/build.log"
kmake allnoconfig KCONFIG_ALLCONFIG="$here/microvm.config" >"$log" 2>&1 \
  || { tail -n 40 "$log" >&2; say "allnoconfig failed"; exit 1; }
kmake olddefconfig >>"$log" 2>&1 || { tail -n 40 "$log" >&2; say "olddefconfig failed"; exit 1; }
if ! "$here/check-fragment.sh" "$here/microvm.config" "$src/.config"; then
  say "the config fragment guest/kernel/microvm.config does not apply to this kernel (see above)"
  exit 1
fi

say "make -j$jobs vmlinux bzImage (a progress line every 200 steps; full log: $log)"
# Condense make's output: keep it all in the log, echo a counter and the current file.
# (A shell loop, not awk: mawk buffers its input and would print late.)
progress() {
  local n=0 line
  while IFS= read -r line; do
    n=$((n + 1))
    if ((n % 200 == 0)); then echo "[kernel] make: $n steps, at ${line##* }" >&2; fi
  done
}
if ! kmake -j"$jobs" vmlinux bzImage 2>&1 | tee -a "$log" | progress; then
  tail -n 60 "$log" >&2
  say "make failed (full log: $log)"
  exit 1
fi

cp "$src/vmlinux" "$out/vmlinux"
cp "$src/arch/x86/boot/bzImage" "$out/bzImage"
cp "$src/.config" "$out/config"
cp "$src/System.map" "$out/System.map"
say "done in $((SECONDS - start)) s: $(du -h "$out/vmlinux" | cut -f1) vmlinux, $(du -h "$out/bzImage" | cut -f1) bzImage"
