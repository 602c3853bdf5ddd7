#!/usr/bin/env bash
# Runs Gantry's whole test suite: installs what it needs, builds, starts a throwaway
# PostgreSQL, runs every test through ctest, stops what it started. Exits non-zero on any
# failure. Extra arguments go to ctest (e.g. tools/test.sh -R e2e).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"
cd "$ROOT"

start=$(date +%s)
"$ROOT/tools/install-deps.sh"
"$ROOT/tools/build.sh"
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"

. "$ROOT/tools/lib/test-database.sh"

set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 300 -j"$(nproc)" "$@"
rc=$?
set -e
echo "test.sh: tests took $(( $(date +%s) - built )) s; ctest exit code $rc"
exit $rc
