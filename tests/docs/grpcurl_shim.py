#!/usr/bin/python3
"""A stand-in for grpcurl, for testing docs/grpcurl.md: Debian 12 does not package grpcurl.

Like grpcurl, it knows nothing of Gantry's protos: it asks the server for them through gRPC
server reflection, builds the messages at run time, reads the request as JSON (-d) and prints
each response as JSON with 2-space indentation (protobuf's JSON mapping, defaults omitted),
and reports a failed call as grpcurl does ("ERROR:\n  Code: NotFound\n  Message: ...", exit
code 64 + the status code). Only the flags the cookbook uses: -cacert -cert -key -H -d
-max-time, and the verbs `list`, `describe SERVICE.METHOD` and SERVICE/METHOD.

It names JSON fields as grpcurl 1.8 does: by the `json_name` the server's descriptors carry,
and by the proto field name where they carry none (so a server whose reflection drops
`json_name` prints `gpu_uuids` here as it does in grpcurl, not `gpuUuids`).
"""
import json
import os
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def reflection_stubs():
    """Reflection stubs generated from Debian's grpc-proto (flat name: a generated "grpc/..."
    package would shadow grpcio)."""
    from grpc_tools import protoc
    work = os.path.join(tempfile.gettempdir(), f"gantry-grpcurl-shim-{os.getuid()}")
    if not os.path.exists(os.path.join(work, "reflection_v1alpha_pb2_grpc.py")):
        os.makedirs(work, exist_ok=True)
        with open("/usr/share/grpc-proto/grpc/reflection/v1alpha/reflection.proto") as src, \
                open(os.path.join(work, "reflection_v1alpha.proto"), "w") as dst:
            dst.write(src.read())
        if protoc.main(["protoc", f"-I{work}", f"--python_out={work}", f"--grpc_python_out={work}",
                        f"{work}/reflection_v1alpha.proto"]) != 0:
            sys.exit("grpcurl shim: could not generate the reflection stubs")
    sys.path.insert(0, work)
    import reflection_v1alpha_pb2
    import reflection_v1alpha_pb2_grpc
    return reflection_v1alpha_pb2, reflection_v1alpha_pb2_grpc


def parse_args(argv):
    opts = {"headers": [], "data": None, "max_time": None}
    words = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-cacert", "-cert", "-key", "-H", "-d", "-max-time"):
            value = argv[i + 1]
            i += 2
            if a == "-H":
                opts["headers"].append(value)
            elif a == "-max-time":
                opts["max_time"] = float(value)
            elif a == "-d":
                opts["data"] = value
            else:
                opts[a.lstrip("-")] = value
            continue
        words.append(a)
        i += 1
    return opts, words


def main(argv):
    opts, words = parse_args(argv)
    address, verb = words[0], words[1] if len(words) > 1 else "list"
    read = lambda name: open(opts[name], "rb").read() if opts.get(name) else None
    creds = grpc.ssl_channel_credentials(read("cacert"), read("key"), read("cert"))
    channel = grpc.secure_channel(address, creds)
    metadata = []
    for h in opts["headers"]:
        k, v = h.split(":", 1)
        metadata.append((k.strip().lower(), v.strip()))
    refl_pb2, refl_grpc = reflection_stubs()
    reflection = refl_grpc.ServerReflectionStub(channel)

    def ask(**request):
        answers = list(reflection.ServerReflectionInfo(iter([refl_pb2.ServerReflectionRequest(**request)]),
                                                       metadata=metadata, timeout=10))
        return answers[0]

    if verb == "list":
        for s in sorted(s.name for s in ask(list_services="").list_services_response.service):
            print(s)
        return 0

    if verb == "describe":
        return describe(ask, words[2])

    service, method = verb.rsplit("/", 1)
    files = {}
    for blob in ask(file_containing_symbol=service).file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for message in all_messages(proto.message_type):
            for field in message.field:
                if not field.HasField("json_name"):
                    field.json_name = field.name  # as grpcurl 1.8's dynamic messages do
        files[proto.name] = proto
    pool = descriptor_pool.DescriptorPool()
    added = set()
    while len(added) < len(files):  # dependencies first
        progress = False
        for name, proto in files.items():
            if name not in added and all(d in added or d not in files for d in proto.dependency):
                pool.Add(proto)
                added.add(name)
                progress = True
        if not progress:
            sys.exit("grpcurl shim: unresolvable proto dependencies")
    m = pool.FindServiceByName(service).FindMethodByName(method)
    make = getattr(message_factory, "GetMessageClass", None) or message_factory.MessageFactory(pool).GetPrototype
    request_type, response_type = make(m.input_type), make(m.output_type)
    request = json_format.Parse(opts["data"] or "{}", request_type())
    path = f"/{service}/{method}"
    kwargs = {"metadata": metadata, "timeout": opts["max_time"]}
    if m.client_streaming:
        sys.exit("grpcurl shim: client streaming is not needed by the cookbook")
    call = channel.unary_stream if m.server_streaming else channel.unary_unary
    rpc = call(path, request_serializer=lambda r: r.SerializeToString(), response_deserializer=response_type.FromString)
    try:
        answers = rpc(request, **kwargs)
        for answer in (answers if m.server_streaming else [answers]):
            print(json_format.MessageToJson(answer, indent=2) if answer.ListFields() else "{}", flush=True)
    except grpc.RpcError as e:
        code = e.code()
        words = code.name.title().replace("_", "")
        print(f"ERROR:\n  Code: {words}\n  Message: {e.details()}", file=sys.stderr)
        return 64 + code.value[0]
    return 0


def all_messages(messages):
    for m in messages:
        yield m
        yield from all_messages(m.nested_type)


def describe(ask, symbol):
    """`grpcurl describe SERVICE.METHOD`: the method's comments and signature, as grpcurl prints
    them (only methods: what the cookbook shows)."""
    answer = ask(file_containing_symbol=symbol)
    if answer.HasField("error_response"):
        print(f"Failed to resolve symbol \"{symbol}\": {answer.error_response.error_message}", file=sys.stderr)
        return 1
    service_name, method_name = symbol.rsplit(".", 1)
    for blob in answer.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for si, service in enumerate(proto.service):
            if f"{proto.package}.{service.name}" != service_name:
                continue
            for mi, method in enumerate(service.method):
                if method.name != method_name:
                    continue
                comments = ""
                for location in proto.source_code_info.location:
                    if list(location.path) == [6, si, 2, mi]:
                        comments = location.leading_comments
                print(f"{symbol} is a method:")
                for line in comments.rstrip("\n").split("\n") if comments else []:
                    print(f"//{line}")
                stream_in = "stream " if method.client_streaming else ""
                stream_out = "stream " if method.server_streaming else ""
                print(f"rpc {method.name} ( {stream_in}{method.input_type} ) returns ( {stream_out}{method.output_type} );")
                return 0
    print(f"Failed to resolve symbol \"{symbol}\"", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
