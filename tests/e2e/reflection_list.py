#!/usr/bin/python3
"""List a Gantry server's services through gRPC server reflection, as `grpcurl list` does.

usage: reflection_list.py ADDR CA CERT KEY WORKDIR

Debian ships grpcio but not the reflection client, so the reflection stubs are generated
from Debian's grpc-proto into WORKDIR with grpc_tools first.
"""
import os
import sys

from grpc_tools import protoc

addr, ca, cert, key, workdir = sys.argv[1:6]
os.makedirs(workdir, exist_ok=True)
# Compiled under flat names: a generated "grpc/..." package would shadow grpcio itself.
for version in ("v1alpha", "v1"):
    with open(f"/usr/share/grpc-proto/grpc/reflection/{version}/reflection.proto") as src:
        with open(os.path.join(workdir, f"reflection_{version}.proto"), "w") as dst:
            dst.write(src.read())
    rc = protoc.main(["protoc", f"-I{workdir}", f"--python_out={workdir}",
                      f"--grpc_python_out={workdir}", f"{workdir}/reflection_{version}.proto"])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
sys.path.insert(0, workdir)

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
import reflection_v1alpha_pb2 as reflection_pb2  # noqa: E402
import reflection_v1alpha_pb2_grpc as reflection_pb2_grpc  # noqa: E402
import reflection_v1_pb2  # noqa: E402
import reflection_v1_pb2_grpc  # noqa: E402

creds = grpc.ssl_channel_credentials(open(ca, "rb").read(), open(key, "rb").read(),
                                     open(cert, "rb").read())
channel = grpc.secure_channel(addr, creds)
stub = reflection_pb2_grpc.ServerReflectionStub(channel)

requests = [reflection_pb2.ServerReflectionRequest(list_services="")]
responses = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
services = [s.name for s in responses[0].list_services_response.service]
for name in sorted(services):
    print(name)

# Describe SessionService's file, as `grpcurl describe gantry.v1.SessionService` would.
requests = [reflection_pb2.ServerReflectionRequest(file_containing_symbol="gantry.v1.SessionService")]
for response in stub.ServerReflectionInfo(iter(requests), timeout=10):
    for raw in response.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
        for service in fd.service:
            for method in service.method:
                print(f"{service.name}.{method.name}({method.input_type.split('.')[-1]})")

# The same through grpc.reflection.v1 (grpcurl 1.8.8 and later ask it first): the services,
# the .proto comments (what `grpcurl describe` shows) and the JSON names (what grpcurl prints).
v1 = reflection_v1_pb2_grpc.ServerReflectionStub(channel)


def ask_v1(**request):
    return list(v1.ServerReflectionInfo(iter([reflection_v1_pb2.ServerReflectionRequest(**request)]), timeout=10))[0]


print("v1 services:", " ".join(sorted(s.name for s in ask_v1(list_services="").list_services_response.service)))
files = {}
for raw in ask_v1(file_containing_symbol="gantry.v1.SessionService.CreateSession").file_descriptor_response.file_descriptor_proto:
    fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
    files[fd.name] = fd
session_file = files["gantry/v1/session_service.proto"]
for location in session_file.source_code_info.location:
    if list(location.path) == [6, 0, 2, 0]:  # service 0 (SessionService), method 0 (CreateSession)
        print("comment on CreateSession:", location.leading_comments.strip().splitlines()[0])
types = files.get("gantry/v1/types.proto")
for message in types.message_type if types else []:
    for field in message.field:
        if message.name == "Session" and field.name == "gpu_uuids":
            print("json_name of Session.gpu_uuids:", field.json_name if field.HasField("json_name") else "(none)")
health = ask_v1(file_containing_symbol="grpc.health.v1.Health")
print("health descriptors:", [descriptor_pb2.FileDescriptorProto.FromString(raw).name
                              for raw in health.file_descriptor_response.file_descriptor_proto])
missing = ask_v1(file_containing_symbol="gantry.v1.NoSuchService")
print("unknown symbol:", missing.error_response.error_code, missing.error_response.error_message)
