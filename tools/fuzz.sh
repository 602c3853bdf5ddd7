#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz) with clang, ASan and UBSan, and runs each for
# SECONDS (default 60) from its seed corpus (tests/fuzz/corpus/NAME). New inputs go to a
# scratch corpus under the build directory, not into the repository. A finding leaves its
# input in BUILD/findings/NAME/ and fails the script; reproduce it with
#   BUILD/NAME BUILD/findings/NAME/crash-...
#
#   tools/fuzz.sh [--seconds N] [NAME...]      (GANTRY_FUZZ_BUILD_DIR, default build-fuzz/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${GANTRY_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH=60
if [[ "${1:-}" == "--seconds" ]]; then
  SECONDS_EACH="$2"
  shift 2
fi
FUZZERS=("$@")
if [[ ${#FUZZERS[@]} -eq 0 ]]; then
  FUZZERS=(fuzz_session_requests fuzz_handler_frames fuzz_capabilities fuzz_config_file fuzz_small_parsers)
fi

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (tools/install-deps.sh installs it)" >&2; exit 2; }
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
mkdir -p "$BUILD"
if ! { CXX=clang++ cmake -S "$ROOT/tests/fuzz" -B "$BUILD" "${launcher[@]}" &&
       cmake --build "$BUILD" -j"$(nproc)" --target "${FUZZERS[@]}" -- --no-print-directory; } >"$BUILD/build.log" 2>&1; then
  echo "fuzz.sh: building the harnesses failed:" >&2
  tail -40 "$BUILD/build.log" >&2
  exit 2
fi

failed=0
for name in "${FUZZERS[@]}"; do
  scratch="$BUILD/corpus/$name" findings="$BUILD/findings/$name"
  mkdir -p "$scratch" "$findings"
  # -timeout: one input taking over 10 s is a finding too (a hang).
  if "$BUILD/$name" "$scratch" "$ROOT/tests/fuzz/corpus/$name" -max_total_time="$SECONDS_EACH" -timeout=10 \
       -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$findings/" \
       >"$BUILD/$name.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/$name.log")
    cov=$(grep -o 'cov: [0-9]*' "$BUILD/$name.log" | tail -1)
    echo "fuzz.sh: $name: ${runs:-?} inputs in ${SECONDS_EACH} s, $cov, no finding"
  else
    failed=1
    echo "fuzz.sh: $name FOUND A BUG; input in $findings/, log below" >&2
    tail -40 "$BUILD/$name.log" >&2
  fi
done
exit $failed
