#!/usr/bin/env bash
# Runs the concurrency-heavy tests under ThreadSanitizer (docs/RELIABILITY.md). Any report
# aborts the process it happens in, which fails its test. Every lock Gantry takes is a
# std::mutex, which TSan sees; gRPC's, protobuf's and Abseil's are seen because those libraries
# are built with TSan too, from Debian's sources of the versions the normal build links
# (tools/lib/tsan-deps.sh: ~40 minutes the first time, cached after). Not part of CI for that
# reason. Suppressions, each with its reason: tools/tsan.supp.
#   tools/tsan.sh            build (build-tsan/) and run the selected tests
#   tools/tsan.sh -R REGEX   run other tests instead (ctest's -R)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GANTRY_TSAN=1 GANTRY_BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build-tsan}"
cd "$ROOT"
"$ROOT/tools/install-deps.sh"
# Found before the system's copies of the same libraries.
CMAKE_PREFIX_PATH="$("$ROOT/tools/lib/tsan-deps.sh")"
export CMAKE_PREFIX_PATH
"$ROOT/tools/build.sh"

# Many threads under TSan on 2 cores make every step slow: the soak runs a shorter churn.
export GANTRY_SOAK_SECONDS="${GANTRY_SOAK_SECONDS:-30}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tools/tsan.supp}"
# The tests where Gantry's own threads meet most: concurrent creates through two replicas,
# replica failover, 200 concurrent invokes, watches and log follows across replicas, stream
# quotas and the auth limiter, controller restarts, and the churn soak.
default_tests='two replicas take 200|SIGKILLed during 500|200 concurrent requests|watch|follow|quota|capped|slowed down|re-adopts|soak|abuse|limiter|StreamQuota'
if [ "${1:-}" = -R ]; then tests="$2"; else tests="$default_tests"; fi

. "$ROOT/tools/lib/test-database.sh"
ctest --test-dir "$GANTRY_BUILD_DIR" --output-on-failure --timeout 900 -j"$(nproc)" -R "$tests"
