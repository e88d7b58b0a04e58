# Shared by the guest/debian/ build scripts (sourced, not run).
# Everything comes from Debian packages fetched with apt from the mirrors this host's apt is
# configured with (/etc/apt/sources.list*); nothing is installed on the host except, when
# missing, the one build tool a script names.

# Fails naming the Debian package that provides a missing command.
need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || { echo "[$STEP] '$1' is missing: install the Debian package '$2' (apt-get install -y $2)" >&2; exit 1; }
}

# Runs a step and, when it fails, says which one.
step() { # step DESCRIPTION CMD...
  local what=$1; shift
  echo "[$STEP] $what" >&2
  "$@" || { local rc=$?; echo "[$STEP] failed while: $what (exit code $rc)" >&2; exit "$rc"; }
}

# Downloads .deb files (PACKAGE or PACKAGE=VERSION) into DIR. Running as root, apt would drop
# to its sandbox user, which cannot write to our temp folder: download as the caller instead.
fetch_debs() { # fetch_debs DIR PACKAGE...
  local dir=$1; shift
  mkdir -p "$dir"
  (cd "$dir" && apt-get -q -o APT::Sandbox::User="$(id -un)" download "$@" >&2) || {
    echo "[$STEP] apt-get download $* failed: check the network and run 'apt-get update'" >&2
    return 1
  }
}

# Unpacks every .deb in DIR into ROOT (no maintainer scripts run).
unpack_debs() { # unpack_debs DIR ROOT
  local deb
  mkdir -p "$2"
  for deb in "$1"/*.deb; do dpkg-deb -x "$deb" "$2" || return 1; done
}

# Makes an ext4 image OUT of SIZE from the tree DIR without mounting anything (mke2fs -d),
# with every inode owned by root, then checks it.
make_ext4() { # make_ext4 DIR OUT SIZE LABEL
  local dir=$1 out=$2 size=$3 label=$4
  rm -f "$out"
  # -T default: 4 KiB blocks (mke2fs would pick 1 KiB ones for an image this small, which
  # costs speed and caps what --size can grow it to).
  E2FSPROGS_FAKE_TIME=1 mke2fs -q -F -t ext4 -T default -L "$label" -E root_owner=0:0 -d "$dir" "$out" "$size" >&2 || return 1
  if [ "$(id -u)" != 0 ]; then
    (cd "$dir" && find . -mindepth 1 | sed 's|^\.||' \
      | while IFS= read -r p; do printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"; done) >"$out.owners"
    debugfs -w -f "$out.owners" "$out" >/dev/null 2>&1 || return 1
    rm -f "$out.owners"
  fi
  e2fsck -fn "$out" >/dev/null 2>&1 || { echo "[$STEP] e2fsck found problems in $out" >&2; return 1; }
}
