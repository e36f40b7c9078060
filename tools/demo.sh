#!/usr/bin/env bash
# Builds oomguard and runs it in the foreground on this machine in dry-run with
# the shipped config: live MemAvailable, the threshold, the heaviest cgroup.
# It never writes /proc/sysrq-trigger (--dry-run). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build src/oomguard >/dev/null
exec ./build/src/oomguard --config config/oomguard.toml --dry-run --log-target=stderr "$@"
