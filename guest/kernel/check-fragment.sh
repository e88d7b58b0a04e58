#!/bin/sh
# Usage: check-fragment.sh FRAGMENT DOTCONFIG
# Kconfig silently drops an option whose dependencies are unmet, so after olddefconfig we
# check that every option of the fragment kept its value. Exits 1 and names the ones that
# did not survive; exits 2 on bad usage or unreadable files.
set -eu
if [ $# -ne 2 ] || [ ! -r "$1" ] || [ ! -r "$2" ]; then
  echo "usage: check-fragment.sh FRAGMENT DOTCONFIG (both readable files)" >&2
  exit 2
fi
awk -v frag="$1" '
  # First file (.config): remember each symbol value; "is not set" counts as n.
  FNR == NR {
    if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) got[substr($0, 1, RLENGTH - 1)] = substr($0, RLENGTH + 1)
    else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) got[$2] = "n"
    next
  }
  # Second file (fragment): compare. Wanting n is satisfied by an absent symbol too.
  {
    sym = ""
    if (match($0, /^CONFIG_[A-Za-z0-9_]+=/)) { sym = substr($0, 1, RLENGTH - 1); want = substr($0, RLENGTH + 1) }
    else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) { sym = $2; want = "n" }
    if (sym == "") next
    have = (sym in got) ? got[sym] : ""
    if (want == "n" ? (have == "" || have == "n") : (have == want)) next
    shown = have == "" ? "absent (dependencies unmet?)" : (have == "n" ? "not set" : have)
    bad[++nbad] = sprintf("  %s: wanted %s, got %s", sym, want == "n" ? "not set" : want, shown)
  }
  END {
    if (nbad == 0) exit 0
    printf "check-fragment: %d option(s) of %s did not survive into .config:\n", nbad, frag > "/dev/stderr"
    for (i = 1; i <= nbad; i++) print bad[i] > "/dev/stderr"
    exit 1
  }
' "$2" "$1"
