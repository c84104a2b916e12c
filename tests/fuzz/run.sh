#!/usr/bin/env bash
# Runs each libFuzzer harness for SECONDS on a working copy of the seed corpus (new inputs go to
# BUILD_DIR/fuzz-work, never into the source tree). Fails on any crash, leak, timeout or OOM; the
# input that failed is left in BUILD_DIR/fuzz-work/artifacts.
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DFQ_FUZZ=ON && cmake --build build-fuzz -j2 \
#     --target fuzz_yaml fuzz_blob fuzz_import && tests/fuzz/run.sh build-fuzz 60
# fuzz_import's seeds read the heads of model files under FQ_FUZZ_SHARED (default ../shared).
set -euo pipefail
build=${1:?usage: run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$build/fuzz-work
mkdir -p "$work/yaml" "$work/blob" "$work/import" "$work/artifacts"

harness() {
  local bin
  bin=$(find "$build" -type f -name "$1" -perm -u+x | head -n 1)
  [[ -n $bin ]] || { echo "run.sh: $1 not found under $build (configure with -DFQ_FUZZ=ON)" >&2; exit 2; }
  echo "$bin"
}
yaml=$(harness fuzz_yaml)
blob=$(harness fuzz_blob)
import=$(harness fuzz_import)

cp "$here"/corpus/yaml/*.yaml "$repo"/tests/data/bad/*.yaml "$work/yaml/"
find "$repo/graphs" -name '*.yaml' -exec cp {} "$work/yaml/" \; 2>/dev/null || true
FQ_FUZZ_MAKE_SEEDS="$work/blob" "$blob"
FQ_FUZZ_SHARED=${FQ_FUZZ_SHARED:-$repo/../shared} FQ_FUZZ_MAKE_SEEDS="$work/import" "$import"

# One harness: its log in $work/NAME.log, printed whole if it fails, else its final stats.
run() {
  local bin=$1 name=$2
  shift 2
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$name-" "$@" "$work/$name" >"$work/$name.log" 2>&1; then
    echo "== $name: ${seconds}s, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" || true)"
  else
    cat "$work/$name.log"
    echo "== $name: FAILED (log above, input in $work/artifacts)"
    return 1
  fi
}
# A libFuzzer run is one process on one core: yaml and blob side by side, then import.
status=0
run "$yaml" yaml -dict="$here/yaml.dict" -max_len=8192 &
yaml_pid=$!
run "$blob" blob -max_len=4096 || status=1
wait "$yaml_pid" || status=1
run "$import" import -max_len=4096 || status=1
[[ $status -eq 0 ]] || exit 1
echo "fuzzing: no failures"
