// GET /metrics (Prometheus text format) on its own port, over HTTPS with the component's own
// certificate: scrapers verify it against the cluster CA, as every other Gantry connection
// does; there is no plaintext listener. No client certificate is asked for — metrics carry no
// secrets, and Prometheus scrapes with server TLS alone.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace gantry {

class MetricsServer {
 public:
  // `listen` is host:port (port 0: any free port); `port_file`, when set, receives the port.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen, const std::string& cert_path,
                                                              const std::string& key_path,
                                                              const std::string& port_file);
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
  absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& cert_path, const std::string& key_path) const;
};

}  // namespace gantry
