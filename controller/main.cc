// gantry-controller: one per GPU node. Registers with the API server, serves
// ControllerService (for the API server) and WorkerService (for this node's workers).
#include <grpcpp/server.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/grpc_server.h"
#include "common/identity.h"
#include "common/logging.h"
#include "common/metrics_server.h"
#include "common/node_bootstrap.h"
#include "common/mutex_deadlock_detection.h"
#include "common/shutdown.h"
#include "common/tls.h"
#include "controller/api_link.h"
#include "controller/controller_metrics.h"
#include "controller/controller_service.h"
#include "controller/fleet.h"
#include "controller/credit_relay.h"
#include "controller/worker_service.h"

namespace {

struct ControllerConfig {
  std::string listen = "127.0.0.1:7444";
  std::string port_file;
  gantry::MetricsOptions metrics;
  std::string advertise_host;
  std::string name;
  std::string node_id;
  std::string type = "gpu-node";
  std::string labels;
  std::string api_url = "127.0.0.1:7443";
  std::string join_token;
  std::string join_token_file;
  gantry::TlsFiles tls;
  gantry::NodeBootstrapOptions bootstrap;
  absl::Duration worker_heartbeat_interval = absl::Seconds(1);
  int64_t worker_missed_heartbeats = 3;
  absl::Duration worker_reconnect_grace = absl::Seconds(60);
  absl::Duration stop_grace = absl::Seconds(10);
  int64_t max_invoke_payload_bytes = 4 << 20;
  absl::Duration shutdown_grace = absl::Seconds(10);
  std::string log_format = "text";
  std::string log_level = "info";
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "gantry-controller: %s\n", status.ToString().c_str());
  return 2;
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].empty()) {
      return absl::InvalidArgumentError("--labels: expected key=value[,key=value...]");
    }
    out[kv[0]] = kv[1];
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  gantry::BlockTerminationSignals();
  gantry::TurnOffMutexDeadlockDetection();
  ControllerConfig cfg;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  cfg.name = host;
  gantry::Flags flags("gantry-controller", "Gantry's per-node controller");
  flags.AddString("listen", &cfg.listen, "address:port for ControllerService and WorkerService (port 0 picks one)");
  flags.AddString("port-file", &cfg.port_file, "write the bound port here once serving");
  cfg.metrics.AddTo(flags);
  flags.AddString("advertise-host", &cfg.advertise_host,
                  "host the API server dials (default: the host part of --listen)");
  flags.AddString("name", &cfg.name, "controller name; must match its certificate (default: hostname)");
  flags.AddString("node-id", &cfg.node_id, "node this controller runs on (default: the name)");
  flags.AddString("type", &cfg.type, "controller type used by selection");
  flags.AddString("labels", &cfg.labels, "labels for controller_selector, key=value[,key=value]");
  flags.AddString("api-url", &cfg.api_url, "API server address host:port; several comma-separated are tried in turn");
  flags.AddString("join-token", &cfg.join_token,
                  "join token (secret; prefer --join-token-file): the cluster's controller token to register with "
                  "an operator-issued certificate, or one from gantryctl jointoken create --role controller for "
                  "--tls-bootstrap-dir");
  flags.AddString("join-token-file", &cfg.join_token_file, "file holding the join token");
  gantry::AddTlsFlags(flags, &cfg.tls, "cluster CA bundle (PEM)",
                      "certificate (PEM), SAN spiffe://gantry/controller/NAME");
  cfg.bootstrap.AddTo(flags);
  flags.AddDuration("worker-heartbeat-interval", &cfg.worker_heartbeat_interval,
                    "how often workers heartbeat");
  flags.AddInt("worker-missed-heartbeats", &cfg.worker_missed_heartbeats,
               "missed heartbeats before a worker is offline");
  flags.AddDuration("worker-reconnect-grace", &cfg.worker_reconnect_grace,
                    "how long a silent (offline) worker keeps its sessions, waiting to come back");
  flags.AddDuration("stop-grace", &cfg.stop_grace, "SIGTERM to SIGKILL grace period when stopping a session");
  flags.AddInt("max-invoke-payload-bytes", &cfg.max_invoke_payload_bytes, "largest invoke payload accepted");
  flags.AddDuration("shutdown-grace", &cfg.shutdown_grace, "time in-flight calls get on SIGTERM");
  flags.AddString("log-format", &cfg.log_format, "text or json");
  flags.AddString("log-level", &cfg.log_level, "trace, debug, info, warn or error");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(s);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (absl::Status s = gantry::InitLogging("gantry-controller", cfg.log_format, cfg.log_level); !s.ok()) {
    return Fail(s);
  }
  if (!gantry::IsValidName(cfg.name)) {
    return Fail(absl::InvalidArgumentError("--name: 1..63 of [a-z0-9._-], starting with a letter or digit"));
  }
  if (cfg.node_id.empty()) cfg.node_id = cfg.name;
  auto join_token = gantry::ReadJoinToken(cfg.join_token, cfg.join_token_file);
  if (!join_token.ok()) return Fail(join_token.status());
  cfg.join_token = *join_token;
  // A certificate from the bootstrap registers by its key; an operator-issued one the first
  // time needs the cluster's controller token.
  if (cfg.join_token.empty() && cfg.bootstrap.dir.empty()) {
    return Fail(absl::InvalidArgumentError("--join-token-file (or --join-token, GANTRY_JOIN_TOKEN) is required"));
  }
  auto labels = ParseLabels(cfg.labels);
  if (!labels.ok()) return Fail(labels.status());
  if (cfg.worker_missed_heartbeats < 1 || cfg.worker_missed_heartbeats > 1000) {
    return Fail(absl::InvalidArgumentError("--worker-missed-heartbeats: 1..1000"));
  }
  if (cfg.max_invoke_payload_bytes < 1 || cfg.max_invoke_payload_bytes > (int64_t{1} << 30)) {
    return Fail(absl::InvalidArgumentError("--max-invoke-payload-bytes: 1..1073741824"));
  }

  // With --tls-bootstrap-dir, the certificate comes from the API server (and is renewed).
  auto node_certificate =
      cfg.bootstrap.StartIfSet(gantry::Role::kController, cfg.name, cfg.api_url, cfg.join_token, &cfg.tls);
  if (!node_certificate.ok()) return Fail(node_certificate.status());
  auto server_creds = gantry::MakeServerCredentials(cfg.tls, gantry::ClientCertPolicy::kRequire);
  if (!server_creds.ok()) return Fail(server_creds.status());
  auto client_creds = gantry::MakeChannelCredentials(cfg.tls);
  if (!client_creds.ok()) return Fail(client_creds.status());

  using namespace gantry::controller;
  std::unique_ptr<ApiLink> api_link;
  Fleet fleet(cfg.node_id, cfg.worker_heartbeat_interval, static_cast<int>(cfg.worker_missed_heartbeats),
              [&api_link](const gantry::v1::SessionEvent& e) {
                if (api_link) api_link->Report(e);
              },
              cfg.worker_reconnect_grace);
  LogRelay log_relay("logs", 8);
  // 64 KiB of output in flight per invoke, as an HTTP/2 stream's window: a stream of small
  // chunks (tokens) is not held to a round trip per few of them.
  InvokeRelay invoke_relay("invoke", 1024, 64 << 10);
  WorkerServiceImpl worker_service(&fleet, &log_relay, &invoke_relay, cfg.worker_heartbeat_interval);
  ControllerServiceImpl controller_service(
      &fleet, &log_relay, &invoke_relay,
      {cfg.type, *labels, cfg.stop_grace, cfg.max_invoke_payload_bytes,
       [&api_link](const std::string& id, const std::string& token) {
         return api_link ? api_link->AdoptToken(id, token) : absl::UnavailableError("starting up");
       },
       [&api_link] { return api_link ? api_link->controller_id() : std::string(); }});

  auto server = gantry::StartGrpcServer(cfg.listen, *server_creds, {&controller_service, &worker_service});
  if (!server.ok()) return Fail(server.status());
  server->server->GetHealthCheckService()->SetServingStatus(true);
  std::string advertise = cfg.advertise_host.empty()
                              ? gantry::WithPort(cfg.listen, server->port)
                              : cfg.advertise_host + ":" + std::to_string(server->port);
  spdlog::info("controller {} serving on port {}, advertised as {}", cfg.name, server->port, advertise);

  ApiLinkConfig link_cfg{cfg.api_url, cfg.join_token, cfg.name, cfg.type, advertise, *labels};
  api_link = std::make_unique<ApiLink>(link_cfg, *client_creds, &fleet, [&](const std::string& id) {
    fleet.RequestStop(id, cfg.stop_grace);
  });
  api_link->Start();

  std::atomic<bool> stopping{false};
  std::thread liveness([&] {
    while (!stopping.load()) {
      fleet.ExpireSilentWorkers();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  gantry::controller::RegisterControllerMetrics(&fleet);
  // Ready once registered with the API server: until then no session can be placed here.
  auto metrics = cfg.metrics.Start(cfg.tls, [&api_link] {
    return api_link->registered() ? absl::OkStatus() : absl::UnavailableError("not registered with the API server yet");
  });
  if (!metrics.ok()) return Fail(metrics.status());
  if (absl::Status s = gantry::WritePortFile(cfg.port_file, server->port); !s.ok()) return Fail(s);

  int sig = gantry::WaitForTerminationSignal();
  spdlog::info("signal {}: stopping placements, draining for up to {}", sig,
               absl::FormatDuration(cfg.shutdown_grace));
  absl::Time deadline = absl::Now() + cfg.shutdown_grace;
  server->server->GetHealthCheckService()->SetServingStatus(false);
  // Deregister first: the workers and their sessions carry on and re-attach to the next
  // controller process, so their streams closing below must not fail the sessions upstream.
  api_link->Shutdown(deadline);
  server->server->Shutdown(absl::ToChronoTime(deadline));
  stopping = true;
  liveness.join();
  // Last: the pod that replaces this one (its key was in memory) rejoins under the node's name.
  if (*node_certificate != nullptr) (*node_certificate)->HandBackName(deadline);
  spdlog::info("stopped");
  return 0;
}
