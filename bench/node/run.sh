#!/usr/bin/env bash
# The node benchmark, by hand (not part of meson test): boots the VM once, runs
# every guard x scenario episode, and writes bench/results/node.{md,json,png}.
# Takes ~45-60 min under TCG. Environment: see bench/node/run.py.
# Usage: bench/node/run.sh [RAW_DIR]   (raw records default /var/tmp/oomguard-nodebench-raw)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
raw=${1:-/var/tmp/oomguard-nodebench-raw}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (image cache, chroot apt-get)" >&2; exit 1; }
python3 "$here/run.py" "$raw"
/usr/bin/python3 "$here/analyze.py" "$raw" "$here/../results/node-table" "$here/../results/node"
