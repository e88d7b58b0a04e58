#!/usr/bin/env bash
# Usage: build.sh OUT
# Builds the guest agent as a static x86-64 binary with Debian's gcc and glibc (libc6-dev).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: build.sh OUT" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
gcc -static -O2 -Wall -Wextra -Werror -o "$1" "$here/agent.c"
strip "$1"
