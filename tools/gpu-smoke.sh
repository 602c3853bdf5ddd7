#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: builds the worker, shows what NVML reports, and runs a
# session whose CUDA-visible device must be exactly the GPU Gantry allocated to it.
#   tools/gpu-smoke.sh                   real NVML (libnvidia-ml.so.1)
#   GANTRY_NVML_LIBRARY=path tools/gpu-smoke.sh   another NVML library (the tests' fake one)
#   GANTRY_PYTHON, GANTRY_PY_STUBS   the Python to use and pre-generated stubs (tools/gpu-bundle.sh)
# Prints a verdict and exits non-zero if the session saw anything but its own GPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${GANTRY_BUILD_DIR:-$ROOT/build}"
NVML="${GANTRY_NVML_LIBRARY:-libnvidia-ml.so.1}"
PYTHON="${GANTRY_PYTHON:-/usr/bin/python3}"
[ "${GANTRY_SKIP_DEPS:-0}" = 1 ] || "$ROOT/tools/install-deps.sh"
[ "${GANTRY_SKIP_BUILD:-0}" = 1 ] || "$ROOT/tools/build.sh"

STATE="$(mktemp -d /tmp/gantry-gpu-smoke-XXXXXX)"
chmod 711 "$STATE"   # sessions run as other uids and pass through it to their homes
# The session's script, where its uid can read it (a checkout may sit under a 0700 directory).
install -m 644 "$ROOT/tools/lib/cuda_visible.py" "$STATE/cuda_visible.py"
chmod 755 "$STATE"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 1
  "$ROOT/tools/lib/throwaway-pg.sh" purge "$STATE/pg" || true
  echo "gpu-smoke: logs kept in $STATE"
}
trap cleanup EXIT

command -v nvidia-smi >/dev/null && { echo "== nvidia-smi -L"; nvidia-smi -L || true; }

PKI="$STATE/pki"
"$BUILD_DIR/tools/gantry-pki" ca --dir "$PKI" >/dev/null
for args in "api-server" "controller --name node1" "worker --name gpu0" "admin --name smoke"; do
  # shellcheck disable=SC2086
  "$BUILD_DIR/tools/gantry-pki" issue --dir "$PKI" --role $args --dns localhost --ip 127.0.0.1 >/dev/null
done
DSN="$("$ROOT/tools/lib/throwaway-pg.sh" start "$STATE/pg" "$("$ROOT/tools/lib/free-port.sh")")"
JOIN="smoke-join-token-$(date +%s%N)"
export GRPC_DNS_RESOLVER=native GANTRY_TLS_CA="$PKI/ca.crt"

GANTRY_TLS_CERT="$PKI/api-server.crt" GANTRY_TLS_KEY="$PKI/api-server.key" GANTRY_JOIN_TOKEN="$JOIN" \
  "$BUILD_DIR/api-server/gantry-api" --listen 127.0.0.1:0 --port-file "$STATE/api.port" \
  --database-url "$DSN" >"$STATE/api.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -s "$STATE/api.port" ] && break; sleep 0.1; done
API="127.0.0.1:$(cat "$STATE/api.port")"
GANTRY_TLS_CERT="$PKI/controller-node1.crt" GANTRY_TLS_KEY="$PKI/controller-node1.key" GANTRY_JOIN_TOKEN="$JOIN" \
  "$BUILD_DIR/controller/gantry-controller" --name node1 --listen 127.0.0.1:0 --port-file "$STATE/ctl.port" \
  --api-url "$API" >"$STATE/controller.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do [ -s "$STATE/ctl.port" ] && break; sleep 0.1; done
CONTROLLER_URL="127.0.0.1:$(cat "$STATE/ctl.port")" GANTRY_TLS_CERT="$PKI/worker-gpu0.crt" \
  GANTRY_TLS_KEY="$PKI/worker-gpu0.key" \
  "$BUILD_DIR/worker/gantry-worker" --name gpu0 --nvml-library "$NVML" --metrics-interval 500ms \
  --session-dir "$STATE/sessions" $([ "$(id -u)" = 0 ] && echo --session-uids 200000-200999 || echo --sessions-as-worker-user) \
  >"$STATE/worker.log" 2>&1 & PIDS+=($!)
sleep 2
echo "== what the worker found through NVML"
grep -E "GPU [0-9]+:|no GPUs|NVML" "$STATE/worker.log" || true

export GANTRY_ADDR="$API" GANTRY_CA="$PKI/ca.crt" GANTRY_CERT="$PKI/admin-smoke.crt" GANTRY_KEY="$PKI/admin-smoke.key"
"$PYTHON" - "$ROOT" "$STATE" "$PYTHON" <<'PY'
import os, subprocess, sys, time
root, state, python = sys.argv[1], sys.argv[2], sys.argv[3]
stubs = os.environ.get("GANTRY_PY_STUBS") or os.path.join(state, "py")
if not os.environ.get("GANTRY_PY_STUBS"):
    os.makedirs(stubs, exist_ok=True)
    from grpc_tools import protoc
    protos = [f"gantry/v1/{f}" for f in os.listdir(f"{root}/proto/gantry/v1")]
    protoc.main(["protoc", f"-I{root}/proto", f"--python_out={stubs}", f"--grpc_python_out={stubs}"] + protos)
sys.path.insert(0, stubs)
import grpc
from gantry.v1 import session_service_pb2 as s, session_service_pb2_grpc as sg, types_pb2 as t
e = os.environ
creds = grpc.ssl_channel_credentials(open(e["GANTRY_CA"], "rb").read(), open(e["GANTRY_KEY"], "rb").read(),
                                     open(e["GANTRY_CERT"], "rb").read())
stub = sg.SessionServiceStub(grpc.secure_channel(e["GANTRY_ADDR"], creds))
# The session holds GPU memory of its own while it lives, so the per-session figure can be checked.
spec = t.SessionSpec(command=["/bin/sh", "-c", f"{python} {state}/cuda_visible.py --hold-mib 256 --hold-s 30"])
spec.resources.gpus.count = 1
for _ in range(50):
    try:
        session = stub.CreateSession(s.CreateSessionRequest(spec=spec, wait_for_running=True), timeout=30)
        break
    except grpc.RpcError as err:
        if err.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
            sys.exit(f"CreateSession: {err.code()} {err.details()}")
        time.sleep(0.3)
else:
    sys.exit("no GPU became schedulable: see the logs")
print(f"== session {session.id}: {t.SessionPhase.Name(session.phase)} on {session.worker_id}, GPU {list(session.gpu_uuids)}")
time.sleep(5)
log = open(os.path.join(state, "sessions", session.id + ".log")).read()
print("== what the session saw\n" + log.strip())
m = stub.GetSessionMetrics(s.GetSessionMetricsRequest(id=session.id), timeout=10)
print(f"== metrics: cpu {m.usage.cpu_percent:.1f}%, memory {m.usage.memory_bytes >> 20} MiB, "
      f"GPU memory {m.usage.gpu_memory_bytes >> 20} MiB")
given = session.gpu_uuids[0]
ok = f"CUDA_VISIBLE_DEVICES={given}" in log
if "CUDA sees" in log:
    ok = ok and "CUDA sees 1 device(s)" in log and given in log.split("CUDA sees", 1)[1]
if "holding 256 MiB" in log:
    # NVML attributes the CUDA context as well as the allocation to the session's process.
    ok = ok and m.usage.gpu_memory_bytes >= 256 << 20
print("VERDICT: " + ("PASS: the session saw exactly its GPU" if ok else "FAIL: see above"))
sys.exit(0 if ok else 1)
PY
