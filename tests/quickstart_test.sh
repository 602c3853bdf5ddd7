#!/usr/bin/env bash
# README command 1, exercised: tools/quickstart.sh brings up a fleet with a RUNNING demo
# session, reflection works with client.env (as grpcurl would), a second run is safe, and
# `down` leaves nothing running.
set -euo pipefail
# shellcheck source=quickstart_fixture.sh
source "$(dirname "${BASH_SOURCE[0]}")/quickstart_fixture.sh"

out="$("$ROOT/tools/quickstart.sh" 2>&1)" || { echo "$out"; fail "quickstart.sh failed"; }
grep -qE "^[0-9a-f-]{36} +RUNNING +node1/w[12] +1 .* GPU-" <<<"$out" || { echo "$out"; fail "demo session not RUNNING on a GPU"; }
grep -q "^Gantry streams tokens from GPU workers $" <<<"$out" || { echo "$out"; fail "demo/tokens invoke output missing"; }
grep -q "grpcurl -cacert" <<<"$out" || fail "no grpcurl command line printed"

# shellcheck disable=SC1091
source "$STATE/client.env"
[ -n "$GANTRY_ADDR" ] && [ -f "$GANTRY_CA" ] && [ -f "$GANTRY_CERT" ] && [ -f "$GANTRY_KEY" ] && [ -n "$GANTRY_TOKEN" ] \
  || fail "client.env incomplete"
[ "$(stat -c %a "$GANTRY_KEY")" = 600 ] || fail "client key is not 0600"
[ "$(stat -c %a "$STATE/admin.key")" = 600 ] || fail "admin API key file is not 0600"
# The config quickstart wrote works, with the API key and with the certificate.
for context in local local-cert; do
  status="$(env -u GANTRY_ADDR gantryctl --context "$context" cluster status)" || fail "gantryctl --context $context failed"
  grep -q "^Sessions: .*1 running" <<<"$status" || { echo "$status"; fail "cluster status via $context"; }
done
listed="$(/usr/bin/python3 "$ROOT/tests/e2e/reflection_list.py" "$GANTRY_ADDR" "$GANTRY_CA" \
  "$GANTRY_CERT" "$GANTRY_KEY" "$STATE/refl")"
grep -q "gantry.v1.SessionService" <<<"$listed" || { echo "$listed"; fail "reflection list lacks SessionService"; }

# Every binary serves /metrics over HTTPS on loopback, verified against the cluster CA, at the
# address client.env gives.
for var in GANTRY_METRICS_API GANTRY_METRICS_CONTROLLER GANTRY_METRICS_WORKER_W1 GANTRY_METRICS_WORKER_W2; do
  url="${!var:-}"
  [ -n "$url" ] || fail "client.env lacks $var"
  /usr/bin/python3 - "$url" "$GANTRY_CA" <<'PY' || fail "$var ($url) does not serve metrics verified by the CA"
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[2])
for path, needle in (("/metrics", "gantry_"), ("/readyz", "ready")):
    body = urllib.request.urlopen(sys.argv[1] + path, context=context, timeout=10).read().decode()
    if needle not in body:
        sys.exit(f"{path}: no {needle!r} in {body[:200]!r}")
PY
done
grep -q "curl -sS --cacert \$GANTRY_CA \$GANTRY_METRICS_API/metrics" <<<"$out" || fail "no metrics hint printed"

session_log="$(ls "$STATE"/sessions-*/*.log | head -1)"
for _ in $(seq 1 30); do grep -q "step" "$session_log" && break; sleep 0.2; done
grep -q "on GPU(s) GPU-" "$session_log" || fail "demo session output missing: $session_log"

out2="$("$ROOT/tools/quickstart.sh" 2>&1)" || { echo "$out2"; fail "second quickstart.sh run failed"; }
grep -qE "^[0-9a-f-]{36} +RUNNING" <<<"$out2" || { echo "$out2"; fail "second run: demo session not RUNNING"; }

"$ROOT/tools/quickstart.sh" down >/dev/null
# down waits for each binary to exit; a session's processes go with their keeper just after.
for _ in $(seq 1 100); do
  pgrep -f "$STATE" >/dev/null || pgrep -f "seq 1 3600" >/dev/null || break
  sleep 0.1
done
if pgrep -f "$STATE" >/dev/null; then pgrep -fa "$STATE"; fail "processes left after down"; fi
if pgrep -f "seq 1 3600" >/dev/null; then fail "demo session process left after down"; fi
echo "quickstart: 1 passed, 0 failed"
