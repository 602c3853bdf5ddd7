#!/usr/bin/env bash
# Runs chosen tests (or the whole suite) N times and prints, per test, how often it passed, so
# the next flaky test is found here before CI finds it. Optionally with CPU-burning processes
# alongside, which is how most timing races show themselves on a 2-core machine.
#
#   tools/flake-hunt.sh [-n RUNS] [--hogs K] [--sanitize] [--stop-on-failure] [CTEST ARGS...]
#
#   -n RUNS            how many times (default 10)
#   --hogs K           K busy loops run for the whole hunt (default 0)
#   --sanitize         the ASan/UBSan build (build-asan/), as GANTRY_SANITIZE=1 tools/test.sh
#   --stop-on-failure  stop after the first run with a failure (its log is kept)
#   CTEST ARGS         passed to every ctest run, e.g. -R 'partition|replica' or -E '^fuzz'
#
# Every run gets a fresh PostgreSQL, as in tools/test.sh. The log of every run with a failure
# is kept under flake-hunt/ (git-ignored), named by run number. Exits non-zero when any run
# failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=10 hogs=0 stop_on_failure=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) runs="$2"; shift 2 ;;
    --hogs) hogs="$2"; shift 2 ;;
    --sanitize) export GANTRY_SANITIZE=1; shift ;;
    --stop-on-failure) stop_on_failure=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) ctest_args+=("$1"); shift ;;
  esac
done
case "$runs$hogs" in *[!0-9]*) echo "flake-hunt: -n and --hogs take whole numbers" >&2; exit 2 ;; esac

if [ "${GANTRY_SANITIZE:-0}" = 1 ]; then
  BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build-asan}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tools/lsan.supp:print_suppressions=0}"
  ctest_args=(-E '^(fuzz|deploy): ' "${ctest_args[@]}")
else
  BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"
fi
export GANTRY_BUILD_DIR="$BUILD_DIR"
"$ROOT/tools/install-deps.sh"
"$ROOT/tools/build.sh"

OUT="$ROOT/flake-hunt"
mkdir -p "$OUT"
results="$(mktemp)"
hog_pids=()
stop_hogs() {
  [ ${#hog_pids[@]} -gt 0 ] && kill "${hog_pids[@]}" 2>/dev/null || true
  rm -f "$results"
}
trap stop_hogs EXIT
for ((h = 0; h < hogs; h++)); do
  # A plain busy loop: it competes for the CPU and for nothing else.
  bash -c 'while :; do :; done' &
  hog_pids+=($!)
done

failed_runs=0
for ((run = 1; run <= runs; run++)); do
  junit="$(mktemp)"
  log="$OUT/run-$run.log"
  start=$(date +%s)
  # A subshell per run, so that test-database.sh's exit trap removes this run's PostgreSQL.
  set +e
  (
    . "$ROOT/tools/lib/test-database.sh"
    ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j"$(nproc)" \
      --output-junit "$junit" "${ctest_args[@]}"
  ) >"$log" 2>&1
  rc=$?
  set -e
  # One line per test case: "pass|fail<TAB>name".
  python3 - "$junit" >>"$results" <<'EOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (ET.ParseError, FileNotFoundError):
    sys.exit(0)
for case in root.iter("testcase"):
    status = case.get("status", "")
    bad = status == "fail" or case.find("failure") is not None or case.find("error") is not None
    print(("fail" if bad else "pass") + "\t" + case.get("name", "?"))
EOF
  rm -f "$junit"
  if [ "$rc" -eq 0 ]; then
    rm -f "$log"
    echo "flake-hunt: run $run/$runs passed in $(( $(date +%s) - start )) s"
  else
    failed_runs=$((failed_runs + 1))
    echo "flake-hunt: run $run/$runs FAILED in $(( $(date +%s) - start )) s (ctest exit $rc); log: $log"
    grep -E '^\s*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)\)' "$log" | sed 's/^/    /' || true
    [ "$stop_on_failure" = 1 ] && break
  fi
done

echo
echo "flake-hunt: $((run > runs ? runs : run)) run(s), $failed_runs with a failure, $hogs CPU hog(s); passes per test:"
python3 - "$results" <<'EOF'
import collections, sys
passed, seen = collections.Counter(), collections.Counter()
for line in open(sys.argv[1]):
    verdict, name = line.rstrip("\n").split("\t", 1)
    seen[name] += 1
    passed[name] += verdict == "pass"
flaky = [n for n in seen if passed[n] < seen[n]]
for name in sorted(seen, key=lambda n: (passed[n] == seen[n], n)):
    print(f"  {passed[name]:>3}/{seen[name]:<3} {'FLAKY ' if name in flaky else ''}{name}")
print(f"flake-hunt: {len(flaky)} of {len(seen)} test(s) failed at least once")
EOF
[ "$failed_runs" -eq 0 ]
