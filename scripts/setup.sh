#!/usr/bin/env bash
# Sets up Sparkler on Debian 12 (root): the Debian packages it needs, then `npm ci`, which builds
# the native addon (node-gyp) and compiles the TypeScript. Safe to run again: it installs only
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# What each package is for:
#   build-essential python3       the native addon (node-gyp)
#   linux-source-6.1 flex bison bc libelf-dev libssl-dev dwarves cpio xz-utils kmod
#                                 the microVM guest kernel, built from Debian's source
#   busybox-static e2fsprogs      the guest initramfs and ext4 root filesystem
#   debootstrap                   the Debian 12 guest rootfs (guest rootfs --debian)
#   acpica-tools curl             tests: ACPI tables disassembled by iasl; the API driven by curl
#   qemu-system-x86               the emulated KVM host (hosts without hardware KVM) and the
#                                 QEMU side of the benchmarks
PACKAGES=(build-essential python3 linux-source-6.1 flex bison bc libelf-dev libssl-dev dwarves
  cpio xz-utils kmod busybox-static e2fsprogs qemu-system-x86 acpica-tools curl debootstrap)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ] || [ ! -f build/Release/sparkler.node ]; then
  echo "setup: npm ci (native addon + TypeScript)" >&2
  npm ci --no-audit --no-fund
else
  # node-gyp runs at install only: an addon older than its C sources is rebuilt here.
  if [ -n "$(find native binding.gyp -newer build/Release/sparkler.node -print -quit)" ]; then
    echo "setup: rebuilding the native addon (native/ changed since it was built)" >&2
    npx --no-install node-gyp rebuild >/dev/null
  fi
  npm run --silent build
fi
