#!/usr/bin/env bash
# Builds the .deb with `dpkg-buildpackage -us -uc -b` from a snapshot of the
# source tree (the real debian/ packaging, unit tests included) and prints the
# directory holding oomguard_*.deb and build.log. The result is cached per
# source hash under CACHE_DIR, so the package test and the end-to-end test
# share one build; concurrent callers wait for it (flock).
# Run as root (CI), it builds as the unprivileged user nobody, as a Debian
# build chroot may: the package needs no root (Rules-Requires-Root: no) and its
# build-time tests must pass or skip without it.
# Usage: build-deb.sh SOURCE_ROOT CACHE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1 cache=$2

for tool in dpkg-buildpackage dh; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool missing (tools/deps.sh --test installs dpkg-dev, debhelper)" >&2; exit 1; }
done
mkdir -p "$cache"
hash=$("$here/pkg-source.sh" hash "$src")
out="$cache/deb-$hash"
exec 9>"$cache/.deb.lock"
flock 9
if [ ! -f "$out/ok" ]; then
  rm -rf "$out" "$out.tmp"
  work=$(mktemp -d /var/tmp/oomguard-deb.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  "$here/pkg-source.sh" copy "$src" "$work/oomguard"
  as=()
  if [ "$(id -u)" = 0 ]; then
    chown -R nobody:nogroup "$work"
    as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  fi
  echo "build-deb: dpkg-buildpackage -us -uc -b in $work/oomguard${as:+ as nobody}" >&2
  start=$(date +%s)
  if ! (cd "$work/oomguard" && "${as[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$work" LANG=C.UTF-8 \
          DEB_BUILD_OPTIONS="parallel=2" dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
    echo "build-deb: dpkg-buildpackage failed; last lines of the build log:" >&2
    tail -n 60 "$work/build.log" >&2
    exit 1
  fi
  echo "build-deb: built in $(( $(date +%s) - start )) s" >&2
  # Older builds are garbage now.
  rm -rf "$cache"/deb-*
  mkdir -p "$out.tmp"
  mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$work/build.log" "$out.tmp/"
  mv "$out.tmp" "$out"
  touch "$out/ok"
fi
echo "$out"
