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
# Compiled under a flat name: a generated "grpc/..." package would shadow grpcio itself.
with open("/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto") as src:
    with open(os.path.join(workdir, "reflection_v1alpha.proto"), "w") as dst:
        dst.write(src.read())
rc = protoc.main(["protoc", f"-I{workdir}", f"--python_out={workdir}",
                  f"--grpc_python_out={workdir}", f"{workdir}/reflection_v1alpha.proto"])
if rc != 0:
    sys.exit(f"protoc failed ({rc})")
sys.path.insert(0, workdir)

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402
import reflection_v1alpha_pb2 as reflection_pb2  # noqa: E402
import reflection_v1alpha_pb2_grpc as reflection_pb2_grpc  # noqa: E402

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
