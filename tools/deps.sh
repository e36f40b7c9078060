#!/usr/bin/env bash
# Installs what building and testing oomguard needs on Debian 12, only when missing.
set -euo pipefail
pkgs=(g++ meson ninja-build pkg-config libsystemd-dev libtomlplusplus-dev libgtest-dev libgmock-dev
      libsdbus-c++-dev libsdbus-c++-bin dbus util-linux procps python3)
if [ "${1:-}" = "--test" ]; then
  # The end-to-end, packaging and fault tests use these.
  pkgs+=(debootstrap systemd-container dpkg-dev debhelper devscripts lintian fakeroot rpm rpmlint man-db
         python3-yaml clang libclang-rt-14-dev earlyoom iproute2 busybox qemu-system-x86
         prometheus prometheus-node-exporter zsh)
fi
missing=()
# protoc: the node lab's CRI client (tests/node/guest/cri_api.proto).
if [ "${1:-}" = "--test" ]; then pkgs+=(protobuf-compiler); fi
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
