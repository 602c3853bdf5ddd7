#!/usr/bin/env bash
# Configures and builds (ccache when present): everything, or only the targets named
# (tools/build.sh gantry-api gantryctl). Used by quickstart.sh (its binaries only) and test.sh.
#   GANTRY_BUILD_DIR   build directory (default: build/)
#   GANTRY_BUILD_TYPE  CMake build type (default: RelWithDebInfo)
#   GANTRY_SANITIZE=1  with ASan and UBSan (default directory: build-asan/)
#   GANTRY_TSAN=1      with ThreadSanitizer (default directory: build-tsan/; tools/tsan.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANITIZE=OFF TSAN=OFF
[ "${GANTRY_SANITIZE:-0}" = 1 ] && SANITIZE=ON
[ "${GANTRY_TSAN:-0}" = 1 ] && TSAN=ON
default_dir=build
[ "$SANITIZE" = ON ] && default_dir=build-asan
[ "$TSAN" = ON ] && default_dir=build-tsan
BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/$default_dir}"
# Let ccache reuse objects built in another checkout of the same sources (CI clones afresh).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${GANTRY_BUILD_TYPE:-RelWithDebInfo}" \
  -DGANTRY_SANITIZE="$SANITIZE" -DGANTRY_TSAN="$TSAN" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j"$(nproc)" "${targets[@]}" -- --no-print-directory
