// Starts a gRPC server the way every Gantry process does: TLS only, the standard health
// service and server reflection (v1 and v1alpha, with the .proto comments: reflection_service.h)
// registered, SO_REUSEPORT off (so two servers never silently share a port), bounded message
// sizes and concurrent calls, keepalive pings, RPC metrics (rpc_metrics.h), and the bound port
// reported (port 0 picks one).
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace grpc {
class Service;
class ServerBuilder;
class ServerCredentials;
}  // namespace grpc

namespace gantry {

struct RunningServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

struct ServerLimits {
  int max_message_bytes = 4 * 1024 * 1024;
  // Calls served at once (each holds a thread of the synchronous server): beyond it a new call
  // is RESOURCE_EXHAUSTED at once, not a new thread, so a dependency that hangs (PostgreSQL,
  // a controller) cannot pile up threads and memory without bound. 0: no cap.
  int max_concurrent_calls = 0;
};

absl::StatusOr<RunningServer> StartGrpcServer(const std::string& listen_address,
                                              std::shared_ptr<grpc::ServerCredentials> creds,
                                              const std::vector<grpc::Service*>& services,
                                              const ServerLimits& limits = {});

// Writes the port to `path` (atomically, via rename) so scripts and tests can find a server
// that bound port 0. No-op when path is empty.
// The keepalive every Gantry server applies (keepalive.h): its pings, and how often it takes
// its clients'. A server built otherwise (the benchmark's bare relay) needs the same, or our
// clients' pings get its connections closed for "too many pings".
void ApplyKeepalive(grpc::ServerBuilder& builder);

absl::Status WritePortFile(const std::string& path, int port);

// Replaces the port of "host:port" (IPv6 "[::1]:port" too).
std::string WithPort(const std::string& host_port, int port);

}  // namespace gantry
