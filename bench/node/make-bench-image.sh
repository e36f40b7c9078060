#!/usr/bin/env bash
# Builds (or finds in the cache) the node benchmark's disk image: the node
# lab's cached Debian 12 tree (tests/node/make-image.sh builds it; not edited
# here) plus every guard under comparison, installed with chroot apt-get:
#   earlyoom 1.7, systemd-oomd 252, nohang 0.2, and the oomguard .deb under test.
# All guards are masked; the guest driver (bench/node/guest/bench.py) unmasks
# and starts one per episode. Prints the directory holding node.img, vmlinuz,
# initrd.img.
#
# Cache: CACHE_DIR/bench-image-<hash of this script, the base tree, the .deb>.
# Usage: make-bench-image.sh OOMGUARD_DEB [CACHE_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
deb=$(readlink -f "$1")
cache=${2:-${OOMGUARD_TEST_CACHE:-/var/cache/oomguard-tests}}
mirror=${OOMGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The base: the node lab's debootstrap tree (tests/node/make-image.sh builds
# it; only read here). Snapshotted once as bench-base-<its key>, because the
# lab deletes its older trees when its package list changes.
base=$(ls -d "$cache"/bench-base-* 2>/dev/null | head -1 || true)
if [ -z "$base" ]; then
  "$here/../../tests/node/make-image.sh" "$cache" >/dev/null
  rootfs=$(ls -d "$cache"/node-rootfs-* | while read -r d; do [ -f "$d/.ok" ] && echo "$d"; done | head -1)
  [ -n "$rootfs" ] || { echo "make-bench-image: no node-rootfs-* with .ok under $cache" >&2; exit 1; }
  base="$cache/bench-base-${rootfs##*node-rootfs-}"
  cp -a "$rootfs" "$base.tmp.$$" && mv "$base.tmp.$$" "$base"
fi
rootfs=$base
key=$( (cat "$0"; basename "$rootfs"; sha256sum <"$deb") | sha256sum | cut -c1-12)
image="$cache/bench-image-$key"
if [ -f "$image/ok" ]; then
  echo "$image"
  exit 0
fi
exec 9>"$cache/.bench-image.lock"
flock 9
if [ -f "$image/ok" ]; then
  echo "$image"
  exit 0
fi
start=$(date +%s)
tmp="$image.tmp.$$"
tree="$tmp/tree"
cleanup() {
  for m in proc sys dev/pts dev; do umount "$tree/$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
rm -rf --one-file-system "$tmp"
mkdir -p "$tmp"
cp -a "$rootfs" "$tree"
rm -f "$tree/.ok"

echo 0b5e1ab0000000000000000000000002 >"$tree/etc/machine-id"
echo node >"$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 node\n' >"$tree/etc/hosts"
: >"$tree/etc/fstab"
cat >"$tree/etc/apt/apt.conf.d/90oomguard-lab" <<'CONF'
APT::Install-Recommends "false";
Acquire::Languages "none";
CONF

# chroot apt-get: no service may start in the build tree.
printf '#!/bin/sh\nexit 101\n' >"$tree/usr/sbin/policy-rc.d"
chmod 0755 "$tree/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$tree/etc/resolv.conf"
echo "deb $mirror bookworm main" >"$tree/etc/apt/sources.list"
mount -t proc proc "$tree/proc"
mount --bind /dev "$tree/dev"
cp "$deb" "$tree/root/"
echo "make-bench-image: chroot apt-get install earlyoom systemd-oomd nohang $(basename "$deb")" >&2
chroot "$tree" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 apt-get update -q >"$tmp/apt.log" 2>&1
if ! chroot "$tree" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
    apt-get install -y -q --no-install-recommends earlyoom systemd-oomd nohang \
    "/root/$(basename "$deb")" >>"$tmp/apt.log" 2>&1; then
  tail -n 30 "$tmp/apt.log" >&2
  exit 1
fi
chroot "$tree" dpkg-query -W -f '${Package} ${Version}\n' earlyoom systemd-oomd nohang oomguard systemd linux-image-amd64 \
  >"$tmp/versions"
cat "$tmp/versions" >&2
chroot "$tree" apt-get clean
rm -rf "$tree"/var/lib/apt/lists/* "$tree/root/$(basename "$deb")" "$tree/usr/sbin/policy-rc.d"
for m in dev proc; do umount "$tree/$m"; done

mask() { for u in "$@"; do ln -sf /dev/null "$tree/etc/systemd/system/$u"; done; }
# Every guard masked: the driver enables exactly one per episode
# (`systemctl unmask` + start), so nothing acts that is not under test.
mask systemd-oomd.service systemd-oomd.socket earlyoom.service nohang.service nohang-desktop.service \
  oomguard.service low-memory-monitor.service
mask serial-getty@ttyS0.service getty@tty1.service
mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer
mask systemd-networkd-wait-online.service systemd-timesyncd.service systemd-firstboot.service
rm -f "$tree"/etc/systemd/system/multi-user.target.wants/{earlyoom,nohang,oomguard}.service

# kubelet's slice; systemd-oomd watches its pressure only in the oomd episodes
# (the driver writes the drop-in with ManagedOOMMemoryPressure=kill then).
cat >"$tree/etc/systemd/system/kubepods.slice" <<'UNIT'
[Unit]
Description=kubepods (benchmark)
[Slice]
MemoryAccounting=yes
UNIT

# The driver: mounts the bench disk (/dev/vdb) and runs bench.py, results on ttyS1.
cat >"$tree/usr/local/sbin/oomguard-bench" <<'SH'
#!/bin/sh
out=/dev/ttyS1
stty -F $out raw -echo 115200 2>/dev/null
echo "BENCH boot $(cut -d' ' -f1 /proc/uptime)" >$out
mkdir -p /lab
if mount -o ro /dev/vdb /lab; then
  python3 -u /lab/bench.py $out || echo "BENCH driver exit $?" >$out
else
  echo "BENCH fail: cannot mount /dev/vdb" >$out
fi
echo "BENCH end $(cut -d' ' -f1 /proc/uptime)" >$out
sync
systemctl --no-block poweroff
SH
chmod 0755 "$tree/usr/local/sbin/oomguard-bench"
cat >"$tree/etc/systemd/system/oomguard-bench.service" <<'UNIT'
[Unit]
Description=oomguard node benchmark driver
After=multi-user.target

[Service]
Type=oneshot
TimeoutStartSec=0
OOMPolicy=continue
# The driver is infrastructure: no guard and no kernel kill may take it.
OOMScoreAdjust=-1000
ExecStart=/usr/local/sbin/oomguard-bench
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
rm -f "$tree/etc/systemd/system/multi-user.target.wants/oomguard-lab.service"
ln -sf ../oomguard-bench.service "$tree/etc/systemd/system/multi-user.target.wants/oomguard-bench.service"

mkdir -p "$tmp/out"
cp -L "$tree"/boot/vmlinuz-* "$tmp/out/vmlinuz"
cp -L "$tree"/boot/initrd.img-* "$tmp/out/initrd.img"
cp "$tmp/versions" "$tmp/out/versions"
mke2fs -q -t ext4 -L node -d "$tree" -F "$tmp/out/node.img" 3G
touch "$tmp/out/ok"
rm -rf "$image"
mv "$tmp/out" "$image"
for old in "$cache"/bench-image-*; do
  [ "$old" = "$image" ] || rm -rf --one-file-system "$old"
done
echo "make-bench-image: image built in $(( $(date +%s) - start )) s" >&2
echo "$image"
