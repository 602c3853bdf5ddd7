// The inference front door: an HTTPS listener inside gantry-api (docs/openai.md) that speaks
// OpenAI's HTTP API, Server-Sent Events and the seed's WebSocket protocol, and translates each
// request onto the API server's own gRPC services through an in-process channel (no socket,
// no second TLS hop; docs/architecture.md says why it lives here). Boost.Beast on Asio: a
// couple of threads serve every connection, and no thread waits on a stream.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "api-server/http/gateway_context.h"

namespace gantry::api::http {

struct HttpGatewayConfig {
  std::string listen;  // HOST:PORT; port 0 picks a free one.
  std::string cert_file, key_file;  // The server certificate and key (PEM), as gRPC's.
  absl::Duration cert_refresh_interval = absl::Seconds(60);  // Re-read when they change (rotation).
  int threads = 2;
  absl::Duration request_timeout = absl::Minutes(10);
  int64_t max_body_bytes = 4 * 1024 * 1024;
};

class HttpGateway {
 public:
  // Listening once this returns; `channel` reaches the API server's services in-process, and
  // `ready` says whether they can serve (GET /health).
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Start(const HttpGatewayConfig& config,
                                                            std::shared_ptr<grpc::Channel> channel,
                                                            std::function<bool()> ready);
  ~HttpGateway();  // Stop()s.

  int port() const;
  // Accepts nothing more. Call once the gRPC server has ended every call (so generations have
  // ended); then drops the connections left and joins the threads.
  void Stop();

 private:
  struct Impl;
  explicit HttpGateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace gantry::api::http
