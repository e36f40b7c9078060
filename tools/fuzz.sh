#!/usr/bin/env bash
# Runs each libFuzzer target for a bounded time and prints executions and
# crashes per target. Builds the clang fuzz build dir first if needed.
#
#   tools/fuzz.sh                    # every target, 60 s each
#   tools/fuzz.sh -t 300 config psi  # two targets, 5 min each
#   tools/fuzz.sh -j 2               # two targets at a time
#   tools/fuzz.sh --update-corpus    # afterwards, merge new finds into tests/fuzz/corpus/
#
# Exit status 1 when any target crashed (the input is saved as
# <build>/tests/fuzz/crash-<target>-*; rerun it with <build>/tests/fuzz/fuzz_<target> FILE).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=60 build=build-fuzz jobs=1 update=0 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -t) seconds="$2"; shift 2 ;;
    -b) build="$2"; shift 2 ;;
    -j) jobs="$2"; shift 2 ;;
    --update-corpus) update=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ meson setup "$build" -Dfuzz=true >/dev/null || exit 1
fi
ninja -C "$build" fuzz >/dev/null || { ninja -C "$build" fuzz; exit 1; }

fdir="$build/tests/fuzz"
if [ ${#targets[@]} -eq 0 ]; then
  for exe in "$fdir"/fuzz_*; do
    [ -x "$exe" ] && [ -f "$exe" ] && targets+=("${exe##*/fuzz_}")
  done
fi

run_one() {
  local t="$1" exe="$fdir/fuzz_$1" scratch="$fdir/corpus/$1" seeds="tests/fuzz/corpus/$1"
  local log="$fdir/fuzz-$t.log" dict="tests/fuzz/dict/$t.dict" args=()
  [ -x "$exe" ] || { echo "fuzz.sh: no target $t in $fdir" >&2; return 1; }
  mkdir -p "$scratch"
  rm -f "$fdir"/crash-"$t"-* "$fdir"/leak-"$t"-* "$fdir"/timeout-"$t"-* "$fdir"/oom-"$t"-*
  [ -f "$dict" ] && args+=("-dict=$dict")
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fdir/crash-$t-" "${args[@]}" "$scratch" "$seeds" >"$log" 2>&1
  echo $? >"$log.rc"
}

pids=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done
wait

failed=0
printf '%-18s %8s %12s %10s %10s %8s\n' target seconds executions exec/s corpus crashes
for t in "${targets[@]}"; do
  log="$fdir/fuzz-$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$fdir/corpus/$t" "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
  crashes=$(find "$fdir" -maxdepth 1 -name "crash-$t-*" -type f | wc -l)
  rc=$(cat "$log.rc" 2>/dev/null || echo 1)
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    failed=1
    [ "$crashes" = 0 ] && crashes="rc=$rc"
  fi
  printf '%-18s %8s %12s %10s %10s %8s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes"
done

if [ $failed = 1 ]; then
  for t in "${targets[@]}"; do
    [ "$(cat "$fdir/fuzz-$t.log.rc")" = 0 ] && continue
    echo "--- fuzz_$t failed ($fdir/fuzz-$t.log):"
    grep -E -A12 'invariant failed|ERROR: (Address|Leak|libFuzzer)|runtime error' "$fdir/fuzz-$t.log" | head -40
  done
fi

if [ $update = 1 ]; then
  for t in "${targets[@]}"; do
    # Keep only inputs that add coverage to the committed seeds.
    "$fdir/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$fdir/corpus/$t" >/dev/null 2>&1 &&
      echo "merged new coverage of $t into tests/fuzz/corpus/$t"
  done
fi
exit $failed
