#!/usr/bin/env bash
# Gantry's benchmarks: builds in Release (build-release/), starts a throwaway PostgreSQL, and
# runs gantry-bench, which starts its own local fleets (gantry-api, gantry-controller, workers or
# hollow workers, all over mTLS) and measures each scenario against a baseline taken in the same
# run. Prints the table; the raw figures go to bench-results/<time>.json (git-ignored).
#
#   tools/bench.sh                       every scenario, 3 rounds each
#   tools/bench.sh place spawn           some of them
#   tools/bench.sh --rounds 5 place      more rounds
#   tools/bench.sh --quick               the smoke run the test suite does
#
# Scenarios: place, spawn, spawn-worker, invoke-latency, stream, failure-detection, footprint,
# footprint-invoke, scale-workers, scale-controllers (docs/PERFORMANCE.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${GANTRY_BENCH_BUILD_DIR:-$ROOT/build-release}"
cd "$ROOT"

"$ROOT/tools/install-deps.sh"
GANTRY_BUILD_DIR="$BUILD_DIR" GANTRY_BUILD_TYPE=Release "$ROOT/tools/build.sh"

. "$ROOT/tools/lib/test-database.sh"

mkdir -p "$ROOT/bench-results"
out="$ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ).json"
"$BUILD_DIR/tools/bench/gantry-bench" --json "$out" "$@"
echo "raw figures: $out"
