#!/usr/bin/env bash
# Builds oomguard and runs the whole test suite: unit, integration (real daemon
# against fake /proc roots), fault injection, real cgroups, D-Bus, packaging and
# the systemd-nspawn end-to-end test, the node lab (a qemu VM: tests/node).
# Installs its own dependencies. Then:
#  - the unit, integration, fault, cgroup and bus suites again, built with ASan+UBSan
#    (build-asan; the system suite is skipped there: it tests packaging and
#    systemd wiring, not memory safety, and costs minutes);
#  - the unit, integration, fault and cgroup suites again, built with the
#    distributions' hardening flags (build-hardened; see hardened_suites);
#  - a short libFuzzer pass over every fuzz target (build-fuzz, clang).
# With arguments (passed to `meson test`, e.g. --suite integration) only the
# first pass runs. OOMGUARD_SKIP_SANITIZERS=1 / OOMGUARD_SKIP_HARDENED=1 /
# OOMGUARD_SKIP_FUZZ=1 skip a pass.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
# The daemon refuses group/world-writable configs: tests create theirs 0644.
umask 022
tools/deps.sh --test || exit 1
[ -d build ] || meson setup build -Dtests=true >/dev/null || exit 1
ninja -C build || exit 1
meson test -C build --print-errorlogs --num-processes 2 "$@"
rc=$?
logs=(build/meson-logs/testlog.json)

# Suites rerun under the sanitizers; append new ones here (not the system suite).
sanitizer_suites=(unit integration fault cgroup)  # bus: its ASan build costs minutes of CI; run with --suite bus in build-asan by hand

if [ $# -eq 0 ] && [ "${OOMGUARD_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== ASan+UBSan: ${sanitizer_suites[*]}"
  if [ ! -d build-asan ]; then
    # -Dwerror=false: GCC 12 under ASan warns falsely inside <regex>; the main build keeps -Werror.
    meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dsystem_tests=false -Dwerror=false \
      >/dev/null || exit 1
  fi
  # Only what those suites run: the whole tree again would double the CI time.
  mapfile -t asan_targets < <(python3 tools/suite_targets.py build-asan "${sanitizer_suites[@]}")
  [ ${#asan_targets[@]} -gt 0 ] || { echo "no targets for ${sanitizer_suites[*]}" >&2; exit 1; }
  ninja -C build-asan "${asan_targets[@]}" || exit 1
  # Reports of every process (test binaries and the daemons they start) land in
  # sanlog: any file there fails the run, even from a daemon that was killed.
  sanlog=$(mktemp -d /tmp/oomguard-sanitizers-XXXXXX)
  suites=()
  for s in "${sanitizer_suites[@]}"; do suites+=(--suite "$s"); done
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$sanlog/asan" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$sanlog/ubsan" \
    meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 "${suites[@]}" || rc=1
  if compgen -G "$sanlog/*" >/dev/null; then
    echo "sanitizer reports:" >&2
    cat "$sanlog"/* >&2
    rc=1
  fi
  rm -rf "$sanlog"
  logs+=(build-asan/meson-logs/testlog.json)
fi

# Suites rerun in a build with the distributions' hardening flags: Debian's
# dpkg-buildflags (hardening=+all, as debian/rules) plus Fedora/RHEL's
# -D_GLIBCXX_ASSERTIONS and -D_FORTIFY_SOURCE=3, --buildtype=plain as the
# distros build. A std::clamp with lo > hi aborts here (issue 10, defect 2).
# Not bus (its tests hold the bus daemon and take minutes; the library calls they
# add are sdbus-c++'s, built without these flags) and not system (it builds the
# .deb with dpkg-buildflags itself).
hardened_suites=(unit integration fault cgroup)

if [ $# -eq 0 ] && [ "${OOMGUARD_SKIP_HARDENED:-0}" != 1 ]; then
  echo "== Hardened build (dpkg-buildflags + -D_GLIBCXX_ASSERTIONS -D_FORTIFY_SOURCE=3): ${hardened_suites[*]}"
  if [ ! -d build-hardened ]; then
    (
      eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)" || exit 1
      export CPPFLAGS="$CPPFLAGS -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -D_GLIBCXX_ASSERTIONS"
      echo "CPPFLAGS=$CPPFLAGS"; echo "CXXFLAGS=$CXXFLAGS"; echo "LDFLAGS=$LDFLAGS"
      meson setup build-hardened --buildtype=plain -Dsystem_tests=false >/dev/null
    ) || exit 1
  fi
  mapfile -t hardened_targets < <(python3 tools/suite_targets.py build-hardened "${hardened_suites[@]}")
  [ ${#hardened_targets[@]} -gt 0 ] || { echo "no targets for ${hardened_suites[*]}" >&2; exit 1; }
  ninja -C build-hardened "${hardened_targets[@]}" || exit 1
  suites=()
  for s in "${hardened_suites[@]}"; do suites+=(--suite "$s"); done
  meson test -C build-hardened --no-rebuild --print-errorlogs --num-processes 2 "${suites[@]}" || rc=1
  logs+=(build-hardened/meson-logs/testlog.json)
fi

if [ $# -eq 0 ] && [ "${OOMGUARD_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== libFuzzer: a short pass per target (tools/fuzz.sh runs longer ones)"
  if [ ! -d build-fuzz ]; then
    CXX=clang++ meson setup build-fuzz -Dfuzz=true >/dev/null || exit 1
  fi
  ninja -C build-fuzz fuzz || exit 1
  meson test -C build-fuzz --no-rebuild --print-errorlogs --num-processes 2 --suite fuzz || rc=1
  logs+=(build-fuzz/meson-logs/testlog.json)
fi

python3 tools/summarize_tests.py "${logs[@]}"
exit $rc
