// GET /metrics (Prometheus text format), /healthz (alive) and /readyz (ready to serve: 200, or
// 503 with the reason) on their own port, over HTTPS with the component's own certificate:
// scrapers verify it against the cluster CA, as every other Gantry connection does; there is no
// plaintext listener. No client certificate is asked for — these carry no secrets, Prometheus
// scrapes with server TLS alone, and so do Kubernetes' HTTPS probes (its native gRPC probes
// speak plaintext only, which Gantry's gRPC ports do not).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace gantry {

struct TlsFiles;

class MetricsServer {
 public:
  // `listen` is host:port (port 0: any free port); `port_file`, when set, receives the port.
  using Readiness = std::function<absl::Status()>;  // null: ready whenever alive
  // The certificate and key come from `tls` and are re-read as it says, like the gRPC ports'.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen, const TlsFiles& tls,
                                                              const std::string& port_file, Readiness ready = nullptr);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  struct Impl;
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

class Flags;

// The two options every binary has for it: --metrics-listen and --metrics-port-file.
struct MetricsOptions {
  std::string listen;  // empty: no metrics endpoint
  std::string port_file;
  void AddTo(Flags& flags);
  // The server, or nullptr when no --metrics-listen was given.
  absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const TlsFiles& tls,
                                                       MetricsServer::Readiness ready = nullptr) const;
};

}  // namespace gantry
