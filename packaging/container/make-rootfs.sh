#!/bin/sh
# The root filesystem of packaging/container/Containerfile, from local inputs:
# the oomguard .deb unpacked, plus the files of every Debian package in its
# Depends closure as installed on this host (a Debian 12 system that has the
# .deb installed, e.g. the node lab's VM), plus busybox-static's sh, date and
# stat for the DaemonSet's liveness probe. No network, no registry.
# Usage: make-rootfs.sh OOMGUARD_DEB OUT_TAR
set -eu
deb=$1
out=$2
root=$(mktemp -d)
trap 'rm -rf "$root" "$root.files"' EXIT
dpkg-deb -x "$deb" "$root"

# The closure of its shared-library Depends (lib*: what the binary loads; not
# the dbus system bus or systemd a host install wants, which a pod does not
# run), by name (versions and :arch dropped; of alternatives the first installed).
closure=""
todo=$(dpkg-deb -f "$deb" Depends)
while [ -n "$todo" ]; do
  next=""
  for alt in $(printf '%s' "$todo" | tr ',' '\n' | sed 's/([^)]*)//g; s/ //g; s/:any//g'); do
    case "$alt" in lib*) ;; *) continue ;; esac
    pick=""
    for p in $(printf '%s' "$alt" | tr '|' ' '); do
      if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then pick=$p; break; fi
    done
    [ -n "$pick" ] || { echo "make-rootfs: no installed package for $alt" >&2; exit 1; }
    case " $closure " in *" $pick "*) continue ;; esac
    closure="$closure $pick"
    next="$next,$(dpkg-query -W -f='${Depends},${Pre-Depends}' "$pick")"
  done
  todo=$(printf '%s' "$next" | sed 's/^,*//; s/,,*/,/g; s/,$//')
done
echo "make-rootfs: packages:$closure busybox-static" >&2

# One list, one tar: a process per file is minutes on a slow machine.
list="$root.files"
dpkg-query -L $closure | while read -r f; do
  case "$f" in /usr/share/doc/* | /usr/share/man/* | /usr/share/lintian/*) continue ;; esac
  [ -d "$f" ] && continue  # directories (and merged-/usr links to them) come with their files
  if [ -f "$f" ] || [ -L "$f" ]; then printf '%s\n' "${f#/}"; fi
done >"$list"
tar -C / --no-recursion -T "$list" -cf - | tar -C "$root" -xf -
rm -f "$list"
mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/etc"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for a in sh date stat test cat ls; do ln -sf busybox "$root/bin/$a"; done
# The loader's cache, so the libraries under both lib directories are found.
ldconfig -r "$root" 2>/dev/null || true
tar -C "$root" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 -cf "$out" .
