#!/usr/bin/env bash
# Installs every Debian 12 package Gantry needs to build, test and run locally.
# Idempotent: packages already present are skipped by apt; safe to run repeatedly.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config ccache
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc grpc-proto
  libprotobuf-dev protobuf-compiler
  libabsl-dev libssl-dev libpqxx-dev libspdlog-dev libcpp-httplib-dev libyaml-cpp-dev libboost1.81-dev catch2
  postgresql python3-grpcio python3-grpc-tools
  procps iproute2 python3-yaml
)
# What only the tests use: kubectl renders the Kubernetes manifests and node/npm validate them
# against the Kubernetes schemas; clang with its runtime builds the libFuzzer harnesses; Go
# builds the Go client example. An
# image build skips them (GANTRY_TEST_TOOLS=0). An installed
# kubectl or node (another vendor's package) is used as it is: Debian's would conflict with it.
if [ "${GANTRY_TEST_TOOLS:-1}" = 1 ]; then
  command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)
  command -v node >/dev/null || PACKAGES+=(nodejs)
  command -v npm >/dev/null || PACKAGES+=(npm)
  PACKAGES+=(clang libclang-rt-14-dev)
  # The one-way partition test drops packets to a port inside a network namespace.
  PACKAGES+=(iptables)
  # The Go client of docs/clients.md, built in GOPATH mode from Debian's Go packages (protobuf
  # 1.5, which speaks the APIv2 messages protoc-gen-go writes; 1.3 cannot decode them).
  PACKAGES+=(golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
             protoc-gen-go protoc-gen-go-grpc)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The apt lock may be held briefly by another installer: retry a few times.
for attempt in 1 2 3 4 5; do
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    exit 0
  fi
  echo "install-deps: apt failed (attempt $attempt), retrying in 5 s" >&2
  sleep 5
done
echo "install-deps: could not install ${missing[*]}" >&2
exit 1
