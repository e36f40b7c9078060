#!/usr/bin/env bash
# The one command that runs every oomguard benchmark against earlyoom and writes
# bench/results/latest.md (table) and latest.json (every episode). See bench/README.md.
# Needs root and earlyoom (apt-get install earlyoom). Extra arguments go to bench/run.py,
# e.g. --episodes 30, --only latency,spikes, --idle-seconds 120.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d build-bench ]; then
  meson setup build-bench --buildtype=debugoptimized -Db_ndebug=true -Dtests=false >/dev/null
fi
ninja -C build-bench -j2 src/oomguard bench/oomg_ramp bench/oomg_unit_cost | grep -v "^\[" || true
exec python3 bench/run.py --build build-bench --command "bench/run.sh${*:+ $*}" "$@"
