#!/usr/bin/env bash
# Runs Gantry's whole test suite: installs what it needs, builds, starts a throwaway
# PostgreSQL, runs every test through ctest, stops what it started. Exits non-zero on any
# failure. Extra arguments go to ctest (e.g. tools/test.sh -R e2e).
#
# GANTRY_SANITIZE=1 builds with ASan and UBSan (in build-asan/) and runs the same suite: any
# report from any Gantry process fails the test it happened in. Left out there: the fuzz
# harnesses (always built with sanitizers, tools/fuzz.sh) and the deployment checks (which
# compare the binaries' libraries with the release image's).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANITIZE="${GANTRY_SANITIZE:-0}"
if [ "$SANITIZE" = 1 ]; then BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build-asan}"; else BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"; fi
export GANTRY_BUILD_DIR="$BUILD_DIR"
cd "$ROOT"

start=$(date +%s)
"$ROOT/tools/install-deps.sh"
"$ROOT/tools/build.sh"
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"

. "$ROOT/tools/lib/test-database.sh"

extra=()
if [ "$SANITIZE" = 1 ]; then
  # Every finding aborts the process (a failed test); leaks are reported at exit.
  export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tools/lsan.supp:print_suppressions=0}"
  extra=(-E '^(fuzz|deploy): ')
fi

set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j"$(nproc)" "${extra[@]}" "$@"
rc=$?
set -e
echo "test.sh: tests took $(( $(date +%s) - built )) s; ctest exit code $rc"
exit $rc
