#!/usr/bin/env bash
# Run `apptainer ...` on a machine without Apptainer (Debian 12 or 13, as root): test
# infrastructure for CI and development machines only. On a cluster, the real `apptainer` on
# PATH is used and this script is never involved.
#
#   containers/apptainer-here.sh setup            # make the helper root once (about a minute)
#   containers/apptainer-here.sh mirror           # print the Debian mirror it builds from
#   containers/apptainer-here.sh ARGS...          # apptainer ARGS... (the root is made first)
#
# Debian 12 has no apptainer package; Debian unstable's apptainer needs its own glibc, so it
# runs in a minimal unstable root (debootstrap, from the mirror of this machine's own apt
# sources). Apptainer refuses a plain chroot, so the root is entered in a private mount
# namespace with pivot_root, with /proc, /sys, /dev and the folders the command needs bound at
# their own paths: the repository, $TMPDIR, the current directory and every absolute path
# among the arguments (and their parents), plus CELLBENCH_APPTAINER_BINDS (colon-separated).
#
# CELLBENCH_APPTAINER_ROOT  where the helper root lives (default: <repo>/.apptainer-root)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${CELLBENCH_APPTAINER_ROOT:-$REPO/.apptainer-root}
# every capability but CAP_SYS_RESOURCE, which this kind of machine's bounding set lacks
CAPABILITIES=CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_DAC_READ_SEARCH,CAP_FOWNER,CAP_FSETID,CAP_KILL,\
CAP_SETGID,CAP_SETUID,CAP_SETPCAP,CAP_LINUX_IMMUTABLE,CAP_NET_BIND_SERVICE,\
CAP_NET_BROADCAST,CAP_NET_ADMIN,CAP_NET_RAW,CAP_IPC_LOCK,CAP_IPC_OWNER,CAP_SYS_MODULE,\
CAP_SYS_RAWIO,CAP_SYS_CHROOT,CAP_SYS_PTRACE,CAP_SYS_PACCT,CAP_SYS_ADMIN,CAP_SYS_BOOT,\
CAP_SYS_NICE,CAP_SYS_TIME,CAP_SYS_TTY_CONFIG,CAP_MKNOD,CAP_LEASE,CAP_AUDIT_WRITE,\
CAP_AUDIT_CONTROL,CAP_SETFCAP,CAP_MAC_OVERRIDE,CAP_MAC_ADMIN,CAP_SYSLOG,CAP_WAKE_ALARM,\
CAP_BLOCK_SUSPEND,CAP_AUDIT_READ

apt_mirror() {
  # the first Debian archive of this machine's apt sources (deb822 or one-line format)
  local uri
  uri=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v security | head -n1 |
    awk '{print $2}')
  if [ -z "$uri" ]; then
    uri=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      grep -v security | head -n1 | awk '{print $2}')
  fi
  if [ -z "$uri" ]; then
    echo "apptainer-here: no Debian mirror in /etc/apt/sources*" >&2
    exit 1
  fi
  echo "$uri"
}

setup() {
  if [ -x "$ROOT/usr/bin/apptainer" ] && [ -f "$ROOT/.ready" ]; then
    return
  fi
  if ! command -v debootstrap > /dev/null; then
    apt-get install -y -qq debootstrap > /dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq debootstrap > /dev/null; }
  fi
  local mirror partial="$ROOT.partial"
  mirror=$(apt_mirror)
  echo "apptainer-here: making the helper root in $ROOT from $mirror (unstable)" >&2
  rm -rf "$partial"
  debootstrap --variant=minbase --include=apptainer,squashfuse,debootstrap,ca-certificates \
    sid "$partial" "$mirror" > "$partial.log" 2>&1 || {
    tail -n 20 "$partial.log" >&2
    exit 1
  }
  echo "127.0.0.1 localhost $(hostname)" > "$partial/etc/hosts"
  echo "root:100000:65536" > "$partial/etc/subuid"
  echo "root:100000:65536" > "$partial/etc/subgid"
  # apt inside: the unstable Release file of some mirrors carries an expired Valid-Until
  echo 'Acquire::Check-Valid-Until "false";' > "$partial/etc/apt/apt.conf.d/99no-valid-until"
  sed -i 's/^root default capabilities = .*/root default capabilities = file/' \
    "$partial/etc/apptainer/apptainer.conf"
  chroot "$partial" apptainer capability add --user root "$CAPABILITIES" 2> /dev/null
  rm -rf "$ROOT"
  mv "$partial" "$ROOT"
  rm -f "$partial.log"
  touch "$ROOT/.ready"
}

# the folders to bind into the helper root, one per line
binds() {
  printf '%s\n' "$REPO" "${TMPDIR:-/tmp}" "$PWD"
  local arg
  for arg in "$@"; do
    case "$arg" in
      /*) if [ -e "$arg" ]; then [ -d "$arg" ] && echo "$arg" || dirname "$arg"; fi ;;
      *=/* | *:/*) : ;;
    esac
  done
  if [ -n "${CELLBENCH_APPTAINER_BINDS:-}" ]; then
    tr ':' '\n' <<< "$CELLBENCH_APPTAINER_BINDS"
  fi
}

run() {
  setup
  local list
  list=$(binds "$@" | grep -v '^$' | sort -u)
  # a private mount namespace: nothing mounted here is seen outside
  exec unshare --mount --propagation private --fork -- bash -c '
    set -euo pipefail
    root=$1 cwd=$2 list=$3
    shift 3
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mkdir -p "$root/dev/pts" "$root/dev/shm"
    mount -t tmpfs tmpfs "$root/dev/shm"
    while IFS= read -r dir; do
      [ -d "$dir" ] || continue
      mkdir -p "$root$dir"
      mount --rbind "$dir" "$root$dir"
    done <<< "$list"
    cd "$root"
    mkdir -p .host
    pivot_root . .host
    umount -l /.host
    cd "$cwd"
    exec apptainer "$@"
  ' apptainer-here "$ROOT" "$PWD" "$list" "$@"
}

case "${1:-}" in
  setup) setup ;;
  mirror) apt_mirror ;;
  "") sed -n '2,16p' "$0" >&2; exit 2 ;;
  *) run "$@" ;;
esac
