#!/usr/bin/env bash
# Usage: kernel.sh OUT WORKDIR
# Unpacks Debian's cloud kernel (linux-image-cloud-amd64 at $DEBIAN_KERNEL_VERSION, which
# pins the versioned linux-image-*-cloud-amd64 package it depends on) into OUT: vmlinuz (a
# bzImage), config, System.map, release (the module folder name) and modules/<release>/ with
# modules.dep made by depmod. Nothing is compiled.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: kernel.sh OUT WORKDIR" >&2; exit 2; }
STEP=debian-kernel
. "$(dirname "$0")/lib.sh"
out=$(realpath -m "$1") work=$2
version=${DEBIAN_KERNEL_VERSION:?DEBIAN_KERNEL_VERSION must name the linux-image-cloud-amd64 version}
need apt-get apt; need dpkg-deb dpkg; need depmod kmod

step "downloading linux-image-cloud-amd64=$version" fetch_debs "$work/meta" "linux-image-cloud-amd64=$version"
image=$(dpkg-deb -f "$work"/meta/*.deb Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*-cloud-amd64\).*/\1/p' | head -n1)
[ -n "$image" ] || { echo "[$STEP] linux-image-cloud-amd64=$version names no linux-image-*-cloud-amd64 package" >&2; exit 1; }
step "downloading $image=$version (about 27 MB)" fetch_debs "$work/image" "$image=$version"
step "unpacking $image" unpack_debs "$work/image" "$work/root"

release=${image#linux-image-}
[ -f "$work/root/boot/vmlinuz-$release" ] || { echo "[$STEP] $image has no /boot/vmlinuz-$release" >&2; exit 1; }
cp "$work/root/boot/vmlinuz-$release" "$out/vmlinuz"
cp "$work/root/boot/config-$release" "$out/config"
cp "$work/root/boot/System.map-$release" "$out/System.map"
echo "$release" >"$out/release"
mkdir -p "$out/modules"
mv "$work/root/lib/modules/$release" "$out/modules/$release"
# The package leaves modules.dep to its postinst; make it here.
mkdir -p "$work/depmod/lib/modules"
ln -s "$out/modules/$release" "$work/depmod/lib/modules/$release"
step "depmod $release" depmod -b "$work/depmod" "$release"
echo "[$STEP] done: $release, vmlinuz $(du -h "$out/vmlinuz" | cut -f1), modules $(du -sh "$out/modules" | cut -f1)" >&2
