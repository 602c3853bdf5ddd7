#!/usr/bin/env bash
# Builds the Go example with Debian 12's packages only (no module download: GOPATH mode):
#   apt-get install golang-go golang-google-grpc-dev golang-google-protobuf-dev \
#                   protoc-gen-go protoc-gen-go-grpc protobuf-compiler
# Stubs are generated from proto/gantry/v1 into an import path of our choosing
# (gantry.example/gantry/v1: the protos set no go_package, so each file is mapped with M).
# The binary lands in ${OUT:-/tmp/gantry-go-client}/gantry-client.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
OUT="${OUT:-/tmp/gantry-go-client}"
PKG=gantry.example/gantry/v1
mkdir -p "$OUT/src/$PKG" "$OUT/src/gantry.example/client"
maps=()
for f in "$ROOT"/proto/gantry/v1/*.proto; do maps+=("Mgantry/v1/$(basename "$f")=$PKG"); done
go_opt="$(IFS=,; echo "${maps[*]}")"
protoc -I"$ROOT/proto" --go_out="$OUT/src" --go_opt="$go_opt" --go-grpc_out="$OUT/src" \
  --go-grpc_opt="$go_opt" "$ROOT"/proto/gantry/v1/*.proto
cp "$ROOT/docs/examples/go_client/main.go" "$OUT/src/gantry.example/client/"
cd "$OUT/src/gantry.example/client"
GO111MODULE=off GOPATH="$OUT:/usr/share/gocode" GOCACHE="${GOCACHE:-$OUT/cache}" \
  go build -o "$OUT/gantry-client" .
echo "built $OUT/gantry-client"
