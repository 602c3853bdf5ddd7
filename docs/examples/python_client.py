#!/usr/bin/python3
"""Calling Gantry from Python with generated stubs: TLS, an API key, a session from create to
delete, its output, and a streamed capability. docs/clients.md walks through it; the test
suite runs it against the quickstart fleet.

    source .gantry/client.env && python3 docs/examples/python_client.py

Needs GANTRY_ADDR, GANTRY_CA and GANTRY_TOKEN (the API key), and Debian's python3-grpcio and
python3-grpc-tools (or pip's grpcio and grpcio-tools).
"""
import os
import sys
import tempfile
import uuid

import grpc
from grpc_tools import protoc

# 1. Stubs, generated from Gantry's protos (a real client would generate them once, at build time).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
stubs = tempfile.mkdtemp(prefix="gantry-stubs-")
protos = [f"gantry/v1/{name}" for name in os.listdir(f"{ROOT}/proto/gantry/v1")]
if protoc.main(["protoc", f"-I{ROOT}/proto", f"--python_out={stubs}", f"--grpc_python_out={stubs}"] + protos) != 0:
    sys.exit("could not generate the stubs")
sys.path.insert(0, stubs)
from gantry.v1 import invoke_service_pb2, invoke_service_pb2_grpc  # noqa: E402
from gantry.v1 import session_service_pb2, session_service_pb2_grpc, types_pb2  # noqa: E402

# 2. A TLS channel that verifies the server against the cluster CA, and sends the API key as
#    "authorization: Bearer <key>" on every call.
tls = grpc.ssl_channel_credentials(root_certificates=open(os.environ["GANTRY_CA"], "rb").read())
api_key = grpc.access_token_call_credentials(os.environ["GANTRY_TOKEN"])
channel = grpc.secure_channel(os.environ["GANTRY_ADDR"], grpc.composite_channel_credentials(tls, api_key))
sessions = session_service_pb2_grpc.SessionServiceStub(channel)

# 3. A session on one GPU. The request_id makes the call safe to retry: the same id returns the
#    same session, never a second one.
spec = types_pb2.SessionSpec(command=["/bin/sh", "-c", 'echo "hello from $CUDA_VISIBLE_DEVICES"; sleep 600'])
spec.resources.gpus.count = 1
spec.labels["example"] = "python"
request = session_service_pb2.CreateSessionRequest(request_id=str(uuid.uuid4()), spec=spec)
for attempt in range(5):
    try:
        session = sessions.CreateSession(request, timeout=30)
        break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE or attempt == 4:
            sys.exit(f"CreateSession: {e.code().name}: {e.details()}")
# Answered once durable: SCHEDULED, its GPU reserved on a controller; the process starts next.
print(f"session {session.id}: {types_pb2.SessionPhase.Name(session.phase)} on controller {session.controller_id}")

try:
    # 4. Follow it until it runs (WatchSession streams the session on every change).
    for update in sessions.WatchSession(session_service_pb2.WatchSessionRequest(id=session.id), timeout=60):
        if update.phase in (types_pb2.SESSION_PHASE_RUNNING, types_pb2.SESSION_PHASE_FAILED):
            print("phase:", types_pb2.SessionPhase.Name(update.phase), "on", update.worker_id,
                  "GPUs", list(update.gpu_uuids))
            break

    # 5. Its first line of output, as it comes (follow, then hang up).
    logs = sessions.StreamLogs(session_service_pb2.StreamLogsRequest(id=session.id, follow=True), timeout=30)
    print("log:", next(logs).message)
    logs.cancel()

    # 6. A capability: chunks arrive as the handler produces them.
    invoker = invoke_service_pb2_grpc.InvokeServiceStub(channel)
    words = [chunk.data.decode() for chunk in invoker.Invoke(
        invoke_service_pb2.InvokeRequest(capability="demo/tokens", payload=b"tokens from a GPU worker"), timeout=30)]
    print("invoke:", "".join(words))

    # 7. Errors carry a status code and a message that names the field.
    try:
        sessions.GetSession(session_service_pb2.GetSessionRequest(id="no-such-session"), timeout=10)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}")
finally:
    # 8. Done, however the steps above went: stop it and free its GPU.
    ended = sessions.DeleteSession(session_service_pb2.DeleteSessionRequest(id=session.id), timeout=30)
    print("deleted:", types_pb2.SessionPhase.Name(ended.phase))
