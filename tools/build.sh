#!/usr/bin/env bash
# Configures and builds everything (ccache when present). Used by quickstart.sh and test.sh.
#   GANTRY_BUILD_DIR   build directory (default: build/)
#   GANTRY_BUILD_TYPE  CMake build type (default: RelWithDebInfo)
#   GANTRY_SANITIZE=1  with ASan and UBSan (default directory: build-asan/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SANITIZE=OFF
[ "${GANTRY_SANITIZE:-0}" = 1 ] && SANITIZE=ON
if [ "$SANITIZE" = ON ]; then BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build-asan}"; else BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"; fi
# Let ccache reuse objects built in another checkout of the same sources (CI clones afresh).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${GANTRY_BUILD_TYPE:-RelWithDebInfo}" \
  -DGANTRY_SANITIZE="$SANITIZE" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" -- --no-print-directory
