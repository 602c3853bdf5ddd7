// gRPC server reflection (grpc.reflection.v1 and v1alpha) served from the descriptors protoc
// wrote at build time, .proto comments and JSON names included. The stock reflection plugin
// serves descriptors rebuilt from generated code, which carry neither: grpcurl `describe`
// showed no comments, and grpcurl up to 1.8 printed fields by their proto names (`gpu_uuids`)
// where every other client and our docs use JSON names (`gpuUuids`).
//
// Thread-safe: the descriptors are parsed once and never change; each call has its own state.
#pragma once

#include <grpcpp/impl/server_builder_option.h>

#include <memory>
#include <string>
#include <vector>

namespace gantry {

// Registers both reflection services on the server being built, answering `list` with the
// services that server registered. Pass to ServerBuilder::SetOption.
std::unique_ptr<grpc::ServerBuilderOption> ReflectionFromEmbeddedDescriptors();

// The files the embedded descriptors hold, each with its dependencies before it.
std::vector<std::string> EmbeddedProtoFiles();

}  // namespace gantry
