#!/usr/bin/env bash
# Gantry's main job, end to end, on this machine: a local fleet on loopback.
#
#   tools/quickstart.sh        install deps, build, start PostgreSQL + API server + controller +
#                              two workers with simulated GPUs, create a demo session, show it
#   tools/quickstart.sh down   stop everything it started
#
# GANTRY_SKIP_DEPS=1 / GANTRY_SKIP_BUILD=1 skip those steps; GANTRY_QUICKSTART_API_PORT picks
# the API port (default 7443, or a free one if that is taken).
# State lives in .gantry/ (git-ignored; GANTRY_QUICKSTART_DIR overrides): the throwaway
# PostgreSQL, the PKI, secrets, logs, and client.env for clients. Running it twice is safe:
# the second run restarts the fleet on the same database and certificates.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${GANTRY_QUICKSTART_DIR:-$ROOT/.gantry}"
BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"
BIN_API="$BUILD_DIR/api-server/gantry-api"
BIN_CTL="$BUILD_DIR/controller/gantry-controller"
BIN_WORKER="$BUILD_DIR/worker/gantry-worker"
BIN_PKI="$BUILD_DIR/tools/gantry-pki"
PG="$ROOT/tools/lib/throwaway-pg.sh"
PROCS=(worker-w2 worker-w1 controller-node1 api)

say() { printf '\033[1m==> [%3ds] %s\033[0m\n' "$SECONDS" "$*"; }

# Alive and not a zombie (our detached processes are reaped by whoever adopted them).
running() {
  local state
  state="$(ps -o stat= -p "$1" 2>/dev/null || true)"
  [ -n "$state" ] && [ "${state:0:1}" != Z ]
}

stop_fleet() {
  for name in "${PROCS[@]}"; do
    local pidfile="$STATE/run/$name.pid"
    [ -f "$pidfile" ] || continue
    local pid; pid="$(cat "$pidfile")"
    if running "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do running "$pid" || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [ "${1:-up}" = "down" ]; then
  say "stopping the local fleet"
  stop_fleet
  [ -d "$STATE/pg" ] && "$PG" stop "$STATE/pg"
  say "stopped; state kept in $STATE (delete it to start from scratch)"
  exit 0
fi
if [ "${1:-up}" != "up" ]; then
  echo "usage: tools/quickstart.sh [up|down]" >&2
  exit 2
fi

if [ "${GANTRY_SKIP_DEPS:-0}" != "1" ]; then
  say "installing dependencies (Debian packages)"
  # Not the tools only the tests use (clang for the fuzzers, kubectl, Node.js).
  GANTRY_TEST_TOOLS=0 "$ROOT/tools/install-deps.sh"
fi
if [ "${GANTRY_SKIP_BUILD:-0}" != "1" ]; then
  # Only what it starts and the tools it prints: the tests and benchmarks are tools/test.sh's.
  say "building gantry-api, gantry-controller, gantry-worker, gantryctl and gantry-pki"
  GANTRY_BUILD_DIR="$BUILD_DIR" "$ROOT/tools/build.sh" gantry-api gantry-controller gantry-worker gantryctl gantry-pki
fi

mkdir -p "$STATE/run" "$STATE/logs"
chmod 755 "$STATE"   # PostgreSQL runs as the postgres user and must reach its directory.
stop_fleet           # A second run restarts cleanly.

say "starting PostgreSQL"
if [ ! -f "$STATE/pg.port" ]; then "$ROOT/tools/lib/free-port.sh" > "$STATE/pg.port"; fi
DSN="$("$PG" start "$STATE/pg" "$(cat "$STATE/pg.port")")"

if [ ! -f "$STATE/pki/ca.key" ]; then
  say "creating the cluster CA and certificates (gantry-pki)"
  "$BIN_PKI" ca --dir "$STATE/pki" >/dev/null
  "$BIN_PKI" issue --dir "$STATE/pki" --role api-server --dns localhost --ip 127.0.0.1 >/dev/null
  "$BIN_PKI" issue --dir "$STATE/pki" --role controller --name node1 --dns localhost --ip 127.0.0.1 >/dev/null
  "$BIN_PKI" issue --dir "$STATE/pki" --role admin --name quickstart >/dev/null
fi
if [ ! -f "$STATE/pki/worker-w2.loopback" ]; then
  # Workers name loopback too: their /metrics is served with their certificate, and a scraper
  # verifies the address it dials. (State from before this re-issues them once.)
  for w in w1 w2; do
    rm -f "$STATE/pki/worker-$w.crt" "$STATE/pki/worker-$w.key"
    "$BIN_PKI" issue --dir "$STATE/pki" --role worker --name "$w" --dns localhost --ip 127.0.0.1 >/dev/null
    touch "$STATE/pki/worker-$w.loopback"
  done
fi
if [ ! -f "$STATE/secrets.env" ]; then
  umask 077
  {
    echo "JOIN_TOKEN=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
    echo "ADMIN_KEY=$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')"
  } > "$STATE/secrets.env"
  umask 022
fi
# shellcheck disable=SC1091
source "$STATE/secrets.env"

start() {  # start NAME ENV... -- COMMAND...
  local name="$1"; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  rm -f "$STATE/run/$name.port" "$STATE/run/$name.metrics-port"
  env -i PATH="$PATH" HOME="$STATE" GRPC_DNS_RESOLVER=native "${envs[@]}" \
    setsid "$@" >>"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/run/$name.pid"
}

# The flags that serve a binary's metrics on a loopback port of the kernel's choosing.
metrics() { echo "--metrics-listen 127.0.0.1:0 --metrics-port-file $STATE/run/$1.metrics-port"; }

wait_port() {  # wait_port NAME [KIND] -> prints the port from run/NAME.KIND (default: port)
  local file="$STATE/run/$1.${2:-port}"
  for _ in $(seq 1 100); do
    if [ -s "$file" ]; then cat "$file"; return 0; fi
    if ! running "$(cat "$STATE/run/$1.pid")"; then break; fi
    sleep 0.1
  done
  echo "quickstart: $1 did not start; its log:" >&2
  tail -20 "$STATE/logs/$1.log" >&2
  exit 1
}

PKI="$STATE/pki"
say "starting gantry-api"
API_PORT="${GANTRY_QUICKSTART_API_PORT:-7443}"
if [ "$API_PORT" != 0 ] && (exec 3<>/dev/tcp/127.0.0.1/"$API_PORT") 2>/dev/null; then API_PORT=0; fi
start api GANTRY_DATABASE_URL="$DSN" GANTRY_TLS_CA="$PKI/ca.crt" GANTRY_TLS_CERT="$PKI/api-server.crt" \
  GANTRY_TLS_KEY="$PKI/api-server.key" GANTRY_JOIN_TOKEN="$JOIN_TOKEN" \
  GANTRY_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" -- \
  "$BIN_API" --listen "127.0.0.1:$API_PORT" --port-file "$STATE/run/api.port" $(metrics api) \
  --http-listen 127.0.0.1:0 --http-port-file "$STATE/run/api.http-port"
API_ADDR="127.0.0.1:$(wait_port api)"
# The OpenAI-compatible front door (docs/openai.md), with the API server's certificate.
HTTP_URL="https://127.0.0.1:$(wait_port api http-port)"

say "starting gantry-controller node1"
start controller-node1 GANTRY_TLS_CA="$PKI/ca.crt" GANTRY_TLS_CERT="$PKI/controller-node1.crt" \
  GANTRY_TLS_KEY="$PKI/controller-node1.key" GANTRY_JOIN_TOKEN="$JOIN_TOKEN" -- \
  "$BIN_CTL" --name node1 --listen 127.0.0.1:0 --port-file "$STATE/run/controller-node1.port" \
  --api-url "$API_ADDR" --labels zone=local $(metrics controller-node1)
CTL_ADDR="127.0.0.1:$(wait_port controller-node1)"

# Sessions and capability handlers are tenants' code: each session runs as a uid of its own,
# handlers as one more (199999), which takes root to hand out. Their homes are under the session
# directories, which those uids must be able to pass through to: not so under a checkout in
# /root, so the directories are under /tmp (one per state directory), linked from
# $STATE/sessions-*; the demo handler's script is copied there too.
HANDLER_SCRIPT="$ROOT/tools/lib/demo_tokens.py"
CHAT_SCRIPT="$ROOT/tools/lib/demo_chat.py"
if [ "$(id -u)" = 0 ]; then
  SESSION_USERS=(--session-uids 200000-265535 --handler-user 199999)
  SESSIONS="/tmp/gantry-quickstart-sessions-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)"
  for w in w1 w2; do
    install -d -m 711 "$SESSIONS" "$SESSIONS/sessions-$w"
    [ -L "$STATE/sessions-$w" ] || rm -rf "$STATE/sessions-$w"
    ln -sfn "$SESSIONS/sessions-$w" "$STATE/sessions-$w"
  done
  install -m 644 "$HANDLER_SCRIPT" "$SESSIONS/demo_tokens.py"
  install -m 644 "$CHAT_SCRIPT" "$SESSIONS/demo_chat.py"
  HANDLER_SCRIPT="$SESSIONS/demo_tokens.py"
  CHAT_SCRIPT="$SESSIONS/demo_chat.py"
else
  SESSION_USERS=(--sessions-as-worker-user)
  say "not root: sessions will run as your own user (--sessions-as-worker-user), for development only"
fi

# Three example capabilities, so that InvokeService works at once (see docs/invoke-protocol.md),
# and model/demo, a model handler the OpenAI-compatible front door reaches (docs/openai.md).
cat > "$STATE/capabilities.txt" <<CAPS
demo/echo 1.0.0 exec cat
demo/tokens 1.0.0 persistent /usr/bin/python3 $HANDLER_SCRIPT
model/demo 1.0.0 persistent /usr/bin/python3 $CHAT_SCRIPT
CAPS

say "starting two workers with simulated GPUs, serving demo/echo, demo/tokens and model/demo"
start worker-w1 CONTROLLER_URL="$CTL_ADDR" GANTRY_TLS_CA="$PKI/ca.crt" GANTRY_TLS_CERT="$PKI/worker-w1.crt" \
  GANTRY_TLS_KEY="$PKI/worker-w1.key" -- \
  "$BIN_WORKER" --name w1 --simulated-gpus "2:Simulated A100 40GB:40" --session-dir "$STATE/sessions-w1" \
  --capabilities "$STATE/capabilities.txt" "${SESSION_USERS[@]}" $(metrics worker-w1)
start worker-w2 CONTROLLER_URL="$CTL_ADDR" GANTRY_TLS_CA="$PKI/ca.crt" GANTRY_TLS_CERT="$PKI/worker-w2.crt" \
  GANTRY_TLS_KEY="$PKI/worker-w2.key" -- \
  "$BIN_WORKER" --name w2 --simulated-gpus "1:Simulated H100 80GB:80" --session-dir "$STATE/sessions-w2" \
  --capabilities "$STATE/capabilities.txt" "${SESSION_USERS[@]}" $(metrics worker-w2)
# Each binary's /metrics, /healthz and /readyz (HTTPS on loopback), as NAME=https://... lines.
METRICS_URLS=""
for name in api controller-node1 worker-w1 worker-w2; do
  METRICS_URLS+="$name=https://127.0.0.1:$(wait_port "$name" metrics-port)"$'\n'
done
metrics_url() { printf '%s' "$METRICS_URLS" | sed -n "s/^$1=//p"; }

# The admin's API key in a file of its own, and a gantryctl config with a context for this fleet.
(umask 077; printf '%s\n' "$ADMIN_KEY" > "$STATE/admin.key")
cat > "$STATE/config.yaml" <<CONFIG
# gantryctl contexts (kubeconfig-like): export GANTRY_CONFIG=$STATE/config.yaml
current-context: local
contexts:
  local:
    addr: $API_ADDR
    ca: $PKI/ca.crt
    token-file: $STATE/admin.key
  local-cert:
    addr: $API_ADDR
    ca: $PKI/ca.crt
    cert: $PKI/admin-quickstart.crt
    key: $PKI/admin-quickstart.key
CONFIG
cat > "$STATE/client.env" <<ENV
# Connection settings for the local Gantry fleet (source this file).
export GANTRY_CONFIG=$STATE/config.yaml
export GANTRY_ADDR=$API_ADDR
export GANTRY_CA=$PKI/ca.crt
export GANTRY_CERT=$PKI/admin-quickstart.crt
export GANTRY_KEY=$PKI/admin-quickstart.key
export GANTRY_TOKEN=$ADMIN_KEY
# The OpenAI-compatible front door's base URL (docs/openai.md): \$GANTRY_HTTP_URL/v1
export GANTRY_HTTP_URL=$HTTP_URL
export PATH="$BUILD_DIR/tools:\$PATH"
# /metrics, /healthz and /readyz of each binary (HTTPS; verify with \$GANTRY_CA)
export GANTRY_METRICS_API=$(metrics_url api)
export GANTRY_METRICS_CONTROLLER=$(metrics_url controller-node1)
export GANTRY_METRICS_WORKER_W1=$(metrics_url worker-w1)
export GANTRY_METRICS_WORKER_W2=$(metrics_url worker-w2)
ENV
export GANTRY_CONFIG="$STATE/config.yaml"
# --context wins over any GANTRY_ADDR and friends left in the caller's environment.
CTL=("$BUILD_DIR/tools/gantryctl" --context local)

# retry SECONDS EXIT_CODES COMMAND...: runs COMMAND until it succeeds, retrying while it exits
# with one of EXIT_CODES (gantryctl: 10 + the gRPC code), for up to SECONDS.
retry() {
  local until=$((SECONDS + $1)) codes=" $2 " rc
  shift 2
  while true; do
    rc=0
    "$@" 2>"$STATE/retry.err" || rc=$?
    if [ "$rc" = 0 ] || [[ "$codes" != *" $rc "* ]] || [ "$SECONDS" -ge "$until" ]; then
      cat "$STATE/retry.err" >&2
      return "$rc"
    fi
    sleep 0.5
  done
}
# Until the API server has its database and the controller has told it of both workers' GPUs
# (UNAVAILABLE 24, RESOURCE_EXHAUSTED 18), and their capabilities (NOT_FOUND 15).
retry 30 "24" "${CTL[@]}" list --limit 1 >/dev/null 2>&1
say "creating a demo session (1 GPU, prints a line a second)"
retry 30 "18 24" "${CTL[@]}" create --request-id "quickstart-$(date +%s%N)" --gpus 1 --label app=quickstart-demo \
  --wait -o wide -- /bin/sh -c \
  'for i in $(seq 1 3600); do echo "step $i on GPU(s) $CUDA_VISIBLE_DEVICES"; sleep 1; done' \
  | tee "$STATE/demo-session.txt"
SESSION_ID="$(awk 'NR == 2 {print $1}' "$STATE/demo-session.txt")"
say "invoking demo/tokens (streams the payload back a word at a time)"
retry 30 "15" "${CTL[@]}" invoke demo/tokens "Gantry streams tokens from GPU workers"
echo
say "asking model/demo through the OpenAI-compatible front door (curl, SSE)"
retry 30 "22" curl -sSfN --cacert "$PKI/ca.crt" -H "Authorization: Bearer $ADMIN_KEY" \
  -H 'Content-Type: application/json' "$HTTP_URL/v1/chat/completions" \
  -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"Gantry speaks OpenAI"}]}'
echo

say "ready"
cat <<DONE

The fleet is running (logs in $STATE/logs, session output in $STATE/sessions-*/).

Drive it with gantryctl (the admin context is in $STATE/config.yaml):
  source $STATE/client.env
  gantryctl cluster status
  gantryctl list
  gantryctl logs -f $SESSION_ID
  gantryctl create --gpus 1 --wait -- python3 -c 'import os; print(os.environ["CUDA_VISIBLE_DEVICES"])'
  echo "hello GPU fleet" | gantryctl invoke demo/tokens

With grpcurl (client certificate):
  grpcurl -cacert \$GANTRY_CA -cert \$GANTRY_CERT -key \$GANTRY_KEY \$GANTRY_ADDR list
  grpcurl -cacert \$GANTRY_CA -cert \$GANTRY_CERT -key \$GANTRY_KEY -d '{"id":"$SESSION_ID"}' \\
    \$GANTRY_ADDR gantry.v1.SessionService/GetSession
  grpcurl -cacert \$GANTRY_CA -cert \$GANTRY_CERT -key \$GANTRY_KEY \\
    -d '{"capability":"demo/tokens","payload":"'"\$(printf 'hello GPU fleet' | base64)"'"}' \\
    \$GANTRY_ADDR gantry.v1.InvokeService/Invoke
With the API key instead of a certificate:
  grpcurl -cacert \$GANTRY_CA -H "authorization: Bearer \$GANTRY_TOKEN" \$GANTRY_ADDR gantry.v1.SessionService/ListSessions

The OpenAI-compatible front door (docs/openai.md; model/demo echoes the prompt):
  curl -sS --cacert \$GANTRY_CA -H "Authorization: Bearer \$GANTRY_TOKEN" \$GANTRY_HTTP_URL/v1/models
  curl -sSN --cacert \$GANTRY_CA -H "Authorization: Bearer \$GANTRY_TOKEN" -H 'Content-Type: application/json' \
    \$GANTRY_HTTP_URL/v1/chat/completions \
    -d '{"model":"demo","stream":true,"messages":[{"role":"user","content":"hello GPU fleet"}]}'

Prometheus metrics, health and readiness of each binary (HTTPS with its own certificate, verified
against the cluster CA; no client certificate is asked for, as for a Prometheus scrape):
  curl -sS --cacert \$GANTRY_CA \$GANTRY_METRICS_API/metrics | grep ^gantry_     # $(metrics_url api)
  curl -sS --cacert \$GANTRY_CA \$GANTRY_METRICS_CONTROLLER/metrics              # $(metrics_url controller-node1)
  curl -sS --cacert \$GANTRY_CA \$GANTRY_METRICS_WORKER_W1/metrics               # $(metrics_url worker-w1)
  curl -sS --cacert \$GANTRY_CA \$GANTRY_METRICS_WORKER_W2/readyz                # $(metrics_url worker-w2)

Stop everything:  tools/quickstart.sh down
DONE
