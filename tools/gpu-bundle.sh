#!/usr/bin/env bash
# Packs what tools/gpu-smoke.sh needs into one archive for a GPU machine that can install
# nothing (such as the device machines lent to development sessions): the stripped binaries,
# every shared library they and PostgreSQL 15 link beyond glibc, PostgreSQL itself, and the
# Python stubs. On the GPU machine, as root:
#   mkdir -p /opt/gb && tar -xJf gantry-gpu-bundle.tar.xz -C /opt/gb && /opt/gb/run-smoke.sh SRC
# where SRC is a checkout of this repository (for the smoke script and its helpers).
#   tools/gpu-bundle.sh [OUT_DIR]     default OUT_DIR: .gpu-bundle/ (ignored by git)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"
OUT="${1:-$ROOT/.gpu-bundle}"
PG=/usr/lib/postgresql/15
STAGE="$(mktemp -d)"
chmod 755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT

mkdir -p "$STAGE/lib" "$STAGE/py" "$STAGE$PG/bin" "$STAGE$PG/lib" "$STAGE/usr/share/postgresql"
for b in api-server/gantry-api controller/gantry-controller worker/gantry-worker worker/gantry-keeper tools/gantry-pki; do
  mkdir -p "$STAGE/build/$(dirname "$b")"
  strip -o "$STAGE/build/$b" "$BUILD_DIR/$b"
done
for b in initdb postgres pg_ctl; do cp "$PG/bin/$b" "$STAGE$PG/bin/"; done
# Every loadable module but the JIT (which pulls in LLVM; PostgreSQL runs without it).
find "$PG/lib" -maxdepth 1 -name '*.so' ! -name 'llvmjit*' -exec cp {} "$STAGE$PG/lib/" \;
cp -r /usr/share/postgresql/15 "$STAGE/usr/share/postgresql/"

# Libraries beyond glibc and the C++ runtime, which any Linux with a newer glibc provides.
{ for f in "$STAGE"/build/*/* "$STAGE$PG"/bin/* "$STAGE$PG"/lib/*.so; do ldd "$f" 2>/dev/null; done; } |
  awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
  while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done

# Debian's protoc, not grpc_tools' older bundled one: its code loads in current protobuf runtimes.
protoc -I"$ROOT/proto" --python_out="$STAGE/py" --grpc_python_out="$STAGE/py" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin "$ROOT"/proto/gantry/v1/*.proto

cat >"$STAGE/run-smoke.sh" <<'EOF'
#!/usr/bin/env bash
# Runs tools/gpu-smoke.sh from checkout $1 with this bundle's binaries, libraries and PostgreSQL.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
export LD_LIBRARY_PATH="$HERE/lib" PGBIN="$HERE/usr/lib/postgresql/15/bin" GANTRY_BUILD_DIR="$HERE/build" \
  GANTRY_PY_STUBS="$HERE/py" GANTRY_SKIP_DEPS=1 GANTRY_SKIP_BUILD=1
exec "$1/tools/gpu-smoke.sh"
EOF
chmod +x "$STAGE/run-smoke.sh"
mkdir -p "$OUT"
tar -cJf "$OUT/gantry-gpu-bundle.tar.xz" -C "$STAGE" .
ls -la "$OUT/gantry-gpu-bundle.tar.xz"
