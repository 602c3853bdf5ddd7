#!/usr/bin/python3
"""A small Python client of Gantry's API, used by tools/quickstart.sh (gantryctl is planned).

usage: gantry_client.py STUB_DIR COMMAND [ARGS]
  wait-ready TIMEOUT_S          wait until the API server answers (its database is up)
  create-demo                   create the quickstart's demo session and print it
  get ID                        print one session
  invoke CAPABILITY PAYLOAD     stream a capability's output to stdout as it arrives

Connection from the environment written to .gantry/client.env: GANTRY_ADDR, GANTRY_CA and
either GANTRY_CERT/GANTRY_KEY (a client certificate) or GANTRY_TOKEN (an API key).
Stubs are generated from proto/ into STUB_DIR with Debian's grpc_tools.
"""
import os
import sys
import time

from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
stub_dir, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(stub_dir, exist_ok=True)
protos = [os.path.join("gantry/v1", f) for f in sorted(os.listdir(os.path.join(ROOT, "proto/gantry/v1")))]
if protoc.main(["protoc", f"-I{ROOT}/proto", f"--python_out={stub_dir}",
                f"--grpc_python_out={stub_dir}"] + protos) != 0:
    sys.exit("could not generate Python stubs")
sys.path.insert(0, stub_dir)

import grpc  # noqa: E402
from gantry.v1 import session_service_pb2 as sessions  # noqa: E402
from gantry.v1 import session_service_pb2_grpc as sessions_grpc  # noqa: E402
from gantry.v1 import types_pb2 as types  # noqa: E402
from gantry.v1 import invoke_service_pb2 as invoke  # noqa: E402
from gantry.v1 import invoke_service_pb2_grpc as invoke_grpc  # noqa: E402

env = os.environ
cert = open(env["GANTRY_CERT"], "rb").read() if env.get("GANTRY_CERT") else None
key = open(env["GANTRY_KEY"], "rb").read() if env.get("GANTRY_KEY") else None
creds = grpc.ssl_channel_credentials(open(env["GANTRY_CA"], "rb").read(), key, cert)
channel = grpc.secure_channel(env["GANTRY_ADDR"], creds)
stub = sessions_grpc.SessionServiceStub(channel)
metadata = [("authorization", "Bearer " + env["GANTRY_TOKEN"])] if not cert and env.get("GANTRY_TOKEN") else []


def show(s):
    phase = types.SessionPhase.Name(s.phase).replace("SESSION_PHASE_", "")
    print(f"session     {s.id}")
    print(f"phase       {phase}")
    print(f"owner       {s.owner}")
    print(f"controller  {s.controller_id}")
    print(f"worker      {s.worker_id} (node {s.node_id})")
    print(f"gpus        {', '.join(s.gpu_uuids) or '-'}")
    print(f"command     {' '.join(s.spec.command)}")
    print(f"message     {s.message}")


def demo_spec():
    spec = types.SessionSpec(command=[
        "/bin/sh", "-c",
        'for i in $(seq 1 3600); do echo "step $i on GPU(s) $CUDA_VISIBLE_DEVICES"; sleep 1; done'])
    spec.resources.gpus.count = 1
    spec.labels["app"] = "quickstart-demo"
    return spec


if command == "wait-ready":
    deadline = time.time() + float(args[0])
    last = None
    while time.time() < deadline:
        try:
            # Answers once the API server has its database; UNAVAILABLE until then.
            stub.ListSessions(sessions.ListSessionsRequest(page_size=1), metadata=metadata, timeout=2)
            sys.exit(0)
        except grpc.RpcError as e:
            last = e
            time.sleep(0.3)
    sys.exit(f"API server not ready: {last.code() if last else '?'} {last.details() if last else ''}")
elif command == "create-demo":
    deadline = time.time() + 30
    while True:
        try:
            s = stub.CreateSession(sessions.CreateSessionRequest(request_id=f"quickstart-{int(time.time())}",
                                                                 spec=demo_spec()),
                                   metadata=metadata, timeout=30)
            break
        except grpc.RpcError as e:
            # Controllers advertise their workers' GPUs within a heartbeat; wait for that.
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED) and time.time() < deadline:
                time.sleep(0.5)
                continue
            sys.exit(f"CreateSession failed: {e.code()}: {e.details()}")
    show(s)
elif command == "invoke":
    deadline = time.time() + 30
    while True:
        try:
            request = invoke.InvokeRequest(capability=args[0], payload=args[1].encode())
            for chunk in invoke_grpc.InvokeServiceStub(channel).Invoke(request, metadata=metadata, timeout=60):
                sys.stdout.write(chunk.data.decode(errors="replace"))
                sys.stdout.flush()
            print()
            break
        except grpc.RpcError as e:
            # Controllers advertise their workers' capabilities within a heartbeat; wait for that.
            if e.code() == grpc.StatusCode.NOT_FOUND and time.time() < deadline:
                time.sleep(0.5)
                continue
            sys.exit(f"Invoke failed: {e.code()}: {e.details()}")
elif command == "get":
    show(stub.GetSession(sessions.GetSessionRequest(id=args[0]), metadata=metadata, timeout=10))
else:
    sys.exit(f"unknown command {command}")
