#!/usr/bin/env bash
# Builds the .deb with `dpkg-buildpackage -us -uc -b` from a snapshot of the
# source tree (the real debian/ packaging, unit tests included) and prints the
# directory holding oomguard_*.deb and build.log. The result is cached per
# source hash under CACHE_DIR, so the package test and the end-to-end test
# share one build; concurrent callers wait for it (flock).
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
  mkdir -p "$out.tmp"
  "$here/pkg-source.sh" copy "$src" "$out.tmp/oomguard"
  echo "build-deb: dpkg-buildpackage -us -uc -b in $out.tmp/oomguard" >&2
  start=$(date +%s)
  if ! (cd "$out.tmp/oomguard" && DEB_BUILD_OPTIONS="parallel=2" dpkg-buildpackage -us -uc -b) >"$out.tmp/build.log" 2>&1; then
    echo "build-deb: dpkg-buildpackage failed; last lines of $out.tmp/build.log:" >&2
    tail -n 40 "$out.tmp/build.log" >&2
    exit 1
  fi
  echo "build-deb: built in $(( $(date +%s) - start )) s" >&2
  rm -rf "$out.tmp/oomguard"
  # Older builds are garbage now.
  for old in "$cache"/deb-*; do
    [ "$old" = "$out.tmp" ] || rm -rf "$old"
  done
  mv "$out.tmp" "$out"
  touch "$out/ok"
fi
echo "$out"
