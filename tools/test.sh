#!/usr/bin/env bash
# Builds oomguard and runs the whole test suite: unit, integration (real daemon
# against fake /proc roots), real cgroups, D-Bus, packaging and the systemd-nspawn
# end-to-end test. Installs its own dependencies. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh --test || exit 1
[ -d build ] || meson setup build -Dtests=true >/dev/null || exit 1
ninja -C build || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
python3 tools/summarize_tests.py build/meson-logs/testlog.json
exit $rc
