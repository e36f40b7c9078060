#!/usr/bin/env bash
# Prints the path of a cached Debian 12 minbase rootfs with systemd, dbus and
# oomguard's runtime dependencies, building it with debootstrap (~80 s) when the
# cache has no rootfs for the current package list. The cache key is a hash of
# the suite and the package list, so a changed list builds a fresh rootfs and a
# half-built one is never reused (it is built under a temporary name and renamed).
#
# Usage: make-rootfs.sh [CACHE_DIR]   (default /var/cache/oomguard-tests)
set -euo pipefail

cache=${1:-${OOMGUARD_TEST_CACHE:-/var/cache/oomguard-tests}}
suite=bookworm
mirror=${OOMGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# systemd + dbus: the system under test. procps: /bin/kill for ExecReload.
# The libraries: oomguard's Depends, so apt installs the .deb without network
# (libsdbus-c++1 already for the D-Bus API). Add new Depends here.
packages=systemd,systemd-sysv,dbus,procps,libtomlplusplus3,libsdbus-c++1,libstdc++6,libsystemd0
stamp="v1 $suite minbase $packages"
key=$(printf '%s' "$stamp" | sha256sum | cut -c1-12)
dir="$cache/rootfs-$suite-$key"

if [ -f "$dir/.oomguard-rootfs-stamp" ]; then
  echo "$dir"
  exit 0
fi

for tool in debootstrap; do
  command -v "$tool" >/dev/null || { echo "make-rootfs: $tool is not installed (tools/deps.sh --test)" >&2; exit 1; }
done
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # a concurrent run builds it once
if [ ! -f "$dir/.oomguard-rootfs-stamp" ]; then
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  echo "make-rootfs: debootstrap $suite into $tmp (first run only, ~80 s)" >&2
  start=$(date +%s)
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    echo "make-rootfs: debootstrap failed; last lines of $cache/debootstrap.log:" >&2
    tail -n 20 "$cache/debootstrap.log" >&2
    rm -rf "$tmp"
    exit 1
  fi
  # Leave what a booted container needs: a machine-id slot (systemd creates one
  # per boot), no apt caches.
  : >"$tmp/etc/machine-id"
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  echo "$stamp" >"$tmp/.oomguard-rootfs-stamp"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "make-rootfs: built in $(( $(date +%s) - start )) s" >&2
  # Older rootfs versions are garbage now.
  for old in "$cache"/rootfs-"$suite"-*; do
    [ "$old" = "$dir" ] || [ ! -d "$old" ] || rm -rf "$old"
  done
fi
echo "$dir"
