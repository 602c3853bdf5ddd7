#include "common/metrics_server.h"

#include <httplib.h>

#include <spdlog/spdlog.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/cert_reloader.h"
#include "common/config.h"
#include "common/grpc_server.h"
#include "common/metrics.h"
#include "common/tls.h"

namespace gantry {

struct MetricsServer::Impl {
  std::unique_ptr<CertReloader> certificate;  // outlives the server whose handshakes use it
  std::unique_ptr<httplib::SSLServer> server;
  std::thread thread;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    const TlsFiles& tls,
                                                                    const std::string& port_file, Readiness ready) {
  auto colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: \"", listen, "\" is not host:port"));
  }
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return absl::InvalidArgumentError("--metrics-listen: needs --tls-cert and --tls-key (metrics are served over TLS)");
  }
  std::unique_ptr<MetricsServer> out(new MetricsServer());
  out->impl_ = std::make_unique<Impl>();
  out->impl_->certificate =
      std::make_unique<CertReloader>("metrics endpoint", tls.cert_file, tls.key_file, tls.refresh_interval);
  if (absl::Status s = out->impl_->certificate->Load(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-listen: ", s.message()));
  }
  out->impl_->server = std::make_unique<httplib::SSLServer>(tls.cert_file.c_str(), tls.key_file.c_str());
  auto& server = *out->impl_->server;
  if (!server.is_valid()) {
    return absl::InvalidArgumentError("--metrics-listen: the TLS certificate or key could not be loaded");
  }
  out->impl_->certificate->Install(server.ssl_context());
  server.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics::Global().Render(), "text/plain; version=0.0.4");
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  server.Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
    absl::Status status = ready ? ready() : absl::OkStatus();
    res.status = status.ok() ? 200 : 503;
    res.set_content(status.ok() ? "ready\n" : std::string(status.message()) + "\n", "text/plain");
  });
  std::string host = listen.substr(0, colon);
  if (host.empty()) host = "0.0.0.0";
  out->port_ = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (out->port_ <= 0) return absl::UnavailableError(absl::StrCat("--metrics-listen: cannot listen on ", listen));
  out->impl_->thread = std::thread([&server] { server.listen_after_bind(); });
  if (!port_file.empty()) {
    if (absl::Status s = WritePortFile(port_file, out->port_); !s.ok()) return s;
  }
  return out;
}

MetricsServer::~MetricsServer() {
  if (impl_ == nullptr) return;
  impl_->server->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace gantry

namespace gantry {

void MetricsOptions::AddTo(Flags& flags) {
  flags.AddString("metrics-listen", &listen,
                  "host:port for /metrics, /healthz and /readyz over HTTPS with --tls-cert (empty: none)");
  flags.AddString("metrics-port-file", &port_file, "write the metrics port here once listening");
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsOptions::Start(const TlsFiles& tls,
                                                                      MetricsServer::Readiness ready) const {
  if (listen.empty()) return std::unique_ptr<MetricsServer>();
  auto started = MetricsServer::Start(listen, tls, port_file, std::move(ready));
  if (started.ok()) spdlog::info("metrics on https://{}/metrics (port {})", listen, (*started)->port());
  return started;
}

}  // namespace gantry
