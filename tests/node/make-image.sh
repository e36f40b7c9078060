#!/usr/bin/env bash
# Builds (or finds in the cache) the disk image of the lab's node: Debian 12
# with its own kernel, systemd on pure cgroup v2, and oomguard's runtime
# dependencies pre-installed, so that `apt-get install ./oomguard_*.deb` in the
# VM only unpacks and configures the package under test. Prints the directory
# holding node.img, vmlinuz and initrd.img.
#
# Two cache levels under CACHE_DIR (default /var/cache/oomguard-tests):
#   node-rootfs-<hash of the package list>   the debootstrap tree (~2.5 min)
#   node-image-<hash of this script>         the ext4 image made from a copy of
#                                            it with the lab's settings (~20 s)
# so a changed package list or a changed setting below rebuilds what it must.
# Both are built under temporary names and renamed: a half-built one is never used.
# No loop mounts: `mke2fs -d` writes the tree into the image.
#
# Usage: make-image.sh [CACHE_DIR]
set -Eeuo pipefail  # -E: the ERR trap below also fires inside functions

cache=${1:-${OOMGUARD_TEST_CACHE:-/var/cache/oomguard-tests}}
suite=bookworm
mirror=${OOMGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The node: kernel + initrd (initramfs-tools builds one with the virtio
# modules), systemd as PID 1, udev, dbus (the bus oomguard joins), procps
# (/bin/kill for ExecReload).
# oomguard's Depends, so apt installs the .deb from the disk without a download.
# Add new Depends here (the test says so when apt wants one).
# The lab driver: python3 (json; python3-minimal lacks it), strace (to see the
# PSI trigger the daemon writes and the wakes it gets).
packages=systemd,systemd-sysv,dbus,udev,kmod,procps,linux-image-amd64,initramfs-tools
packages+=,libtomlplusplus3,libsdbus-c++1,libstdc++6,libsystemd0
packages+=,python3,strace
# The runtime scenarios (issue 13): containerd 1.6 and runc with the CRI plugin,
# busybox-static for the images built in the VM (no registry), and the CRI
# client playing kubelet (python3-grpcio, python3-protobuf; its api_pb2.py is
# generated on the host by protoc 3.21, the same protobuf as the VM's).
packages+=,containerd,runc,busybox-static,python3-grpcio,python3-protobuf
rootfs_key=$(printf '%s' "v1 $suite minbase $packages" | sha256sum | cut -c1-12)
image_key=$( (cat "$0"; echo "$rootfs_key") | sha256sum | cut -c1-12)
rootfs="$cache/node-rootfs-$rootfs_key"
image="$cache/node-image-$image_key"

# Every step that fails says where: under set -e a silent exit left the lab's
# report with the first line of stderr only.
trap 'echo "make-image: failed (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

# prune_older PREFIX KEEP: of the cache entries PREFIX*, keep KEEP and the newest
# other one, remove the rest. A loop, not `ls | grep -v | tail`: on a cold cache
# grep finds nothing, exits 1, and pipefail ended the script there.
prune_older() {
  local prefix=$1 keep=$2 other="" old
  while read -r old; do
    [ "$old" = "$keep" ] && continue
    if [ -z "$other" ]; then other=$old; continue; fi
    # A leftover that cannot go (busy, another filesystem) must not fail a good build.
    rm -rf --one-file-system "$old" || echo "make-image: cannot prune $old; left in place" >&2
  done < <(ls -dt "$prefix"* 2>/dev/null)
}

if [ -f "$image/ok" ]; then
  echo "$image"
  exit 0
fi
for tool in debootstrap mke2fs; do
  command -v "$tool" >/dev/null || { echo "make-image: $tool is not installed (tools/deps.sh --test)" >&2; exit 1; }
done
mkdir -p "$cache"
exec 9>"$cache/.node-image.lock"
flock 9   # concurrent runs build it once
if [ -f "$image/ok" ]; then
  echo "$image"
  exit 0
fi

if [ ! -f "$rootfs/.ok" ]; then
  tmp="$rootfs.tmp.$$"
  rm -rf --one-file-system "$tmp"
  echo "make-image: debootstrap $suite with the kernel into $tmp (first run only, ~2.5 min)" >&2
  start=$(date +%s)
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" \
       >"$cache/node-debootstrap.log" 2>&1; then
    echo "make-image: debootstrap failed; last lines of $cache/node-debootstrap.log:" >&2
    tail -n 20 "$cache/node-debootstrap.log" >&2
    rm -rf --one-file-system "$tmp"
    exit 1
  fi
  rm -f "$tmp"/var/cache/apt/archives/*.deb
  ls "$tmp"/boot/vmlinuz-* "$tmp"/boot/initrd.img-* >/dev/null \
    || { echo "make-image: no kernel or initrd in $tmp/boot" >&2; rm -rf --one-file-system "$tmp"; exit 1; }
  touch "$tmp/.ok"
  rm -rf "$rootfs"
  mv "$tmp" "$rootfs"
  # Leftovers of killed builds are garbage; of older versions keep the newest
  # other one: a branch with another package list (or a helper deriving its
  # image from this cache) would otherwise rebuild it each time, deleting ours.
  rm -rf --one-file-system "$cache"/node-rootfs-*.tmp.*
  prune_older "$cache"/node-rootfs- "$rootfs"
  echo "make-image: rootfs built in $(( $(date +%s) - start )) s" >&2
fi

start=$(date +%s)
tmp="$image.tmp.$$"
rm -rf --one-file-system "$tmp"
mkdir -p "$tmp"
trap 'rm -rf --one-file-system "$tmp"' EXIT
tree="$tmp/tree"
cp -a "$rootfs" "$tree"
rm -f "$tree/.ok"

# A fixed machine-id: not a "first boot" (systemd-firstboot would prompt on the
# console). Every run boots a throwaway snapshot of this image anyway.
echo 0b5e1ab0000000000000000000000001 >"$tree/etc/machine-id"
echo node >"$tree/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 node\n' >"$tree/etc/hosts"
: >"$tree/etc/fstab"
mask() { for u in "$@"; do ln -sf /dev/null "$tree/etc/systemd/system/$u"; done; }
# ttyS0 is the console the host logs; a getty there hangs up writers. Results
# go to their own port (ttyS1) anyway.
mask serial-getty@ttyS0.service getty@tty1.service
# No other OOM daemon may act in the lab; nothing periodic may disturb it.
mask systemd-oomd.service systemd-oomd.socket earlyoom.service nohang.service low-memory-monitor.service
# containerd is started by the runtime scenario with the lab's CRI config
# (tests/node/guest/cri.py), not at boot: the other scenarios run without it.
rm -f "$tree/etc/systemd/system/multi-user.target.wants/containerd.service"
mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer
mask systemd-networkd-wait-online.service systemd-timesyncd.service systemd-firstboot.service
# apt in the VM: no network, no recommends, no docs to unpack slowly.
cat >"$tree/etc/apt/apt.conf.d/90oomguard-lab" <<'CONF'
APT::Install-Recommends "false";
Acquire::Languages "none";
CONF

# The driver: mounts the lab disk (/dev/vdb, made fresh by the host for every
# run) and runs its script, then powers the node off whatever happened.
cat >"$tree/usr/local/sbin/oomguard-lab" <<'SH'
#!/bin/sh
out=/dev/ttyS1
stty -F $out raw -echo 115200 2>/dev/null
echo "LAB boot $(cut -d' ' -f1 /proc/uptime)" >$out
mkdir -p /lab
if mount -o ro /dev/vdb /lab; then
  python3 -u /lab/driver.py $out || echo "LAB driver exit $?" >$out
else
  echo "FAIL: lab: cannot mount /dev/vdb" >$out
fi
echo "LAB end $(cut -d' ' -f1 /proc/uptime)" >$out
sync
systemctl --no-block poweroff
SH
chmod 0755 "$tree/usr/local/sbin/oomguard-lab"
cat >"$tree/etc/systemd/system/oomguard-lab.service" <<'UNIT'
[Unit]
Description=oomguard node lab driver
After=multi-user.target

[Service]
Type=oneshot
# The scenarios take minutes; the host bounds the whole run.
TimeoutStartSec=0
# The scenarios make the kernel OOM-kill the lab's own hogs: keep going.
OOMPolicy=continue
# The kernel must never pick the driver itself.
OOMScoreAdjust=-900
ExecStart=/usr/local/sbin/oomguard-lab
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
ln -sf ../oomguard-lab.service "$tree/etc/systemd/system/multi-user.target.wants/oomguard-lab.service"

mkdir -p "$tmp/out"
cp -L "$tree"/boot/vmlinuz-* "$tmp/out/vmlinuz"
cp -L "$tree"/boot/initrd.img-* "$tmp/out/initrd.img"
basename "$(ls "$tree"/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//' >"$tmp/out/kernel-version"
mke2fs -q -t ext4 -L node -d "$tree" -F "$tmp/out/node.img" 3G
rm -rf "$tree"
touch "$tmp/out/ok"
rm -rf "$image"
mv "$tmp/out" "$image"
rm -rf --one-file-system "$cache"/node-image-*.tmp.*
prune_older "$cache"/node-image- "$image"
echo "make-image: image built in $(( $(date +%s) - start )) s" >&2
echo "$image"
