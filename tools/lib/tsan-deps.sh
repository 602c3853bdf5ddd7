#!/usr/bin/env bash
# Builds Abseil, protobuf, gRPC and libpqxx with ThreadSanitizer into a cache folder and prints
# that folder (a CMake prefix) on stdout. tools/tsan.sh builds Gantry against it.
#
# Why: TSan sees a lock only when the code that takes it is instrumented. Against Debian's
# uninstrumented gRPC, every hand-off through a completion queue or callback looks like a race,
# and Abseil's deadlock detector and protobuf's Map break; in libpqxx, two threads' first use of
# one of its function-local statics (its encodings table) does. The sources are Debian 12's own
# source packages, the same versions that the normal build links (apt checks their signatures).
# The first build takes ~40 minutes on 2 cores; later runs reuse the cache.
#   GANTRY_TSAN_DEPS   cache folder (default: ~/.cache/gantry/tsan-deps)
set -euo pipefail
CACHE="${GANTRY_TSAN_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry/tsan-deps}"
log() { echo "tsan-deps: $*" >&2; }

mkdir -p "$CACHE"
APT="$CACHE/apt"
mkdir -p "$APT/lists/partial" "$APT/archives/partial"
cat >"$APT/sources.list" <<'EOF'
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
EOF
# A private source list: the machine's own apt configuration is left untouched.
apt_opts=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/nonexistent
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
          -o "Dir::Cache::archives=$APT/archives" -o APT::Sandbox::User=root)

# The prefix is named after the exact source versions, so a Debian update rebuilds.
# The versions the normal build links (tools/install-deps.sh installs these -dev packages).
versions=$(dpkg-query -W -f='${source:Package}=${source:Version} ' libabsl-dev libprotobuf-dev libgrpc++-dev \
  libpqxx-dev)
key=$(echo "$versions" | sha256sum | cut -c1-12)
PREFIX="$CACHE/prefix-$key"
if [ -f "$PREFIX/.complete" ]; then echo "$PREFIX"; exit 0; fi

missing=()
for pkg in libc-ares-dev libre2-dev zlib1g-dev libssl-dev libpq-dev dpkg-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt-get install -y -qq "${missing[@]}" >&2
fi

# Each library is built once (a stamp in the prefix says so): adding one does not rebuild the rest.
todo=()
for v in $versions; do [ -f "$PREFIX/.built-${v%%=*}" ] || todo+=("$v"); done
SRC="$CACHE/src-$key"
rm -rf "$SRC"
mkdir -p "$SRC" "$PREFIX"
if [ ${#todo[@]} -gt 0 ]; then
  log "building ${todo[*]} into $PREFIX"
  apt-get "${apt_opts[@]}" update -qq >&2
  (cd "$SRC" && apt-get "${apt_opts[@]}" source -qq "${todo[@]}" >&2)
fi

export CC=gcc CXX=g++
flags="-fsanitize=thread -O1 -g1 -fno-omit-frame-pointer"
common=(-G "Unix Makefiles" -DCMAKE_BUILD_TYPE=None -DCMAKE_INSTALL_PREFIX="$PREFIX"
        -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_STANDARD=17
        -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
        -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF)
command -v ccache >/dev/null && common+=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

build() {  # build SOURCE-PACKAGE CMAKE-ARGS...
  local name=$1; shift
  [ -f "$PREFIX/.built-$name" ] && return
  local dir
  dir=$(find "$SRC" -maxdepth 1 -type d -name "$name-*" | head -1)
  log "$name"
  cmake -S "$dir" -B "$SRC/build-$name" "${common[@]}" "$@" >&2
  cmake --build "$SRC/build-$name" -j"$(nproc)" >&2
  cmake --install "$SRC/build-$name" >&2
  if [ "$name" = libpqxx ]; then
    # libpqxx installs no pkg-config file, and Gantry finds it by one. Static, so -lpq too.
    mkdir -p "$PREFIX/lib/pkgconfig"
    printf 'Name: libpqxx\nDescription: libpqxx built with ThreadSanitizer\nVersion: %s\nLibs: -L%s -lpqxx -lpq\nCflags: -I%s\n' \
      "$(cat "$dir/VERSION")" "$PREFIX/lib" "$PREFIX/include" >"$PREFIX/lib/pkgconfig/libpqxx.pc"
  fi
  touch "$PREFIX/.built-$name"
}

build abseil -DABSL_PROPAGATE_CXX_STD=ON -DABSL_ENABLE_INSTALL=ON
build protobuf -Dprotobuf_BUILD_TESTS=OFF -Dprotobuf_WITH_ZLIB=ON
build grpc -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF \
  -DgRPC_ABSL_PROVIDER=package -DgRPC_PROTOBUF_PROVIDER=package -DgRPC_CARES_PROVIDER=package \
  -DgRPC_RE2_PROVIDER=package -DgRPC_SSL_PROVIDER=package -DgRPC_ZLIB_PROVIDER=package \
  -DgRPC_BUILD_CSHARP_EXT=OFF -DgRPC_BUILD_GRPC_CSHARP_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_NODE_PLUGIN=OFF -DgRPC_BUILD_GRPC_OBJECTIVE_C_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_PHP_PLUGIN=OFF -DgRPC_BUILD_GRPC_PYTHON_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_RUBY_PLUGIN=OFF
build libpqxx -DSKIP_BUILD_TEST=ON -DBUILD_DOC=OFF
rm -rf "$SRC"
touch "$PREFIX/.complete"
echo "$PREFIX"
