#!/usr/bin/env bash
# Fuzz the C++ runtime's parsers of untrusted bytes: benchmarks/fuzz.sh [SECONDS_PER_TARGET] (default 60).
#
# Builds repmet/runtime/cpp/fuzz/ (libFuzzer + AddressSanitizer + UBSan, Debian's clang, no
# libtorch) into build/fuzz/, then runs each target for SECONDS from its committed seed corpus
# (repmet/runtime/cpp/fuzz/corpus/<target>/, copied to build/fuzz/corpus/<target>/, where the
# inputs it finds accumulate between runs) and prints a table. A crash, leak, UB report or
# exception other than repmet::Error stops that target; its input is kept in
# build/fuzz/findings/<target>/: fix the parser, then add the input to the committed corpus as
# regression-<what>. Exits 1 when anything was found.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
TARGETS=(gallery metadata coco image)
BUILD=build/fuzz
command -v clang++ >/dev/null || { echo "clang++ is missing: apt-get install -y clang"; exit 2; }
CC=clang CXX=clang++ cmake -S repmet/runtime/cpp/fuzz -B "$BUILD" >"$BUILD.configure.log" 2>&1 \
  || { cat "$BUILD.configure.log"; exit 2; }
cmake --build "$BUILD" -j"$(nproc)" >"$BUILD.build.log" 2>&1 || { tail -40 "$BUILD.build.log"; exit 2; }

rows=()
found=0
for target in "${TARGETS[@]}"; do
  corpus="$BUILD/corpus/$target" findings="$BUILD/findings/$target" log="$BUILD/$target.log"
  mkdir -p "$corpus" "$findings"
  cp -n repmet/runtime/cpp/fuzz/corpus/"$target"/* "$corpus"/
  start=$SECONDS
  # -timeout: one input taking 10 s is a finding; -rss_limit_mb: so is one needing 2 GB
  "$BUILD/fuzz_$target" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1
  status=$?
  took=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(find "$findings" -type f | wc -l)
  [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="?(exit $status)"
  [ "$crashes" != 0 ] && found=1
  rows+=("$(printf '%-10s %8s %12s %8s %8s' "$target" "$took" "${execs:-?}" "$(ls "$corpus" | wc -l)" "$crashes")")
done
printf '%-10s %8s %12s %8s %8s\n' target seconds executions corpus crashes
printf '%s\n' "${rows[@]}"
[ "$found" -eq 0 ] || echo "findings: build/fuzz/findings/ (logs: build/fuzz/<target>.log)"
exit $found
