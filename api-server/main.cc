// gantry-api: the stateless, client-facing API server. Wires config, PostgreSQL, the stores,
// the domain managers and the gRPC services, then waits for SIGTERM.
#include <grpcpp/server.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "api-server/admin_manager.h"
#include "api-server/admin_service.h"
#include "api-server/admin_store.h"
#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/database_monitor.h"
#include "api-server/health_checker.h"
#include "api-server/http/http_gateway.h"
#include "api-server/invoke_candidate_cache.h"
#include "api-server/invoke_service.h"
#include "api-server/live_relays.h"
#include "api-server/migration_runner.h"
#include "api-server/node_certificate_service.h"
#include "api-server/registry_manager.h"
#include "api-server/api_metrics.h"
#include "api-server/registry_service.h"
#include "api-server/session_manager.h"
#include "api-server/preemptor.h"
#include "api-server/queue_dispatcher.h"
#include "api-server/session_pruner.h"
#include "api-server/session_service.h"
#include "api-server/session_store.h"
#include "api-server/session_watch_hub.h"
#include "api-server/template_store.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/grpc_server.h"
#include "common/logging.h"
#include "common/metrics_server.h"
#include "common/pg_pool.h"
#include "common/mutex_deadlock_detection.h"
#include "common/shutdown.h"
#include "common/tls.h"
#include "common/x509.h"

namespace {

// Concurrent WatchSession streams one API server holds.
constexpr size_t kMaxWatchers = 10000;
// How long the controllers serving a capability are taken as known (InvokeCandidateCache):
// shorter than the heartbeats that would change the answer.
constexpr absl::Duration kInvokeCandidatesMaxAge = absl::Seconds(1);

struct ApiConfig {
  std::string listen = "127.0.0.1:7443";
  std::string port_file;
  gantry::TlsFiles tls;
  std::string database_url;
  int64_t db_pool_size = 16;
  int64_t db_control_pool_size = 4;
  absl::Duration db_timeout = absl::Seconds(5);
  int64_t max_concurrent_calls = 2000;
  std::string join_token;
  std::string worker_join_token;
  std::string bootstrap_admin_key;
  std::string node_signer_cert, node_signer_key, node_cert_dns;
  absl::Duration node_cert_ttl = absl::Hours(24);
  absl::Duration controller_heartbeat_interval = absl::Seconds(5);
  absl::Duration controller_call_timeout = absl::Seconds(30);
  absl::Duration health_check_interval = absl::Seconds(5);
  absl::Duration reachability_sweep = absl::Seconds(60);
  absl::Duration health_check_timeout = absl::Seconds(2);
  int64_t unhealthy_after = 3;
  int64_t offline_after = 6;
  absl::Duration deregistered_grace = absl::Minutes(2);
  absl::Duration unheld_session_grace = absl::Minutes(2);
  absl::Duration session_retention = absl::Hours(7 * 24);
  absl::Duration token_rotation_grace = absl::Seconds(30);
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration watch_recheck_interval = absl::Seconds(30);
  absl::Duration queue_dispatch_interval = absl::Seconds(1);
  int64_t max_message_bytes = 16 * 1024 * 1024;
  int64_t max_invoke_payload_bytes = 4 * 1024 * 1024;
  int64_t max_streams_per_client = 100;
  int64_t max_invokes_per_client = 1000;
  int64_t auth_failure_burst = 10;
  absl::Duration auth_failure_interval = absl::Seconds(5);
  std::string log_format = "text";
  std::string log_level = "info";
  bool migrate_only = false;
  gantry::MetricsOptions metrics;
  std::string http_listen;
  std::string http_port_file;
  int64_t http_threads = 2;
  absl::Duration http_request_timeout = absl::Minutes(10);
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "gantry-api: %s\n", status.ToString().c_str());
  return 2;
}

// A bad signer fails start-up, not every controller's bootstrap later.
absl::Status CheckNodeSigner(const ApiConfig& cfg) {
  if (cfg.node_signer_cert.empty() && cfg.node_signer_key.empty()) return absl::OkStatus();
  auto cert = gantry::ReadFile(cfg.node_signer_cert);
  if (!cert.ok()) return absl::InvalidArgumentError(absl::StrCat("--node-signer-cert: ", cert.status().message()));
  auto key = gantry::ReadFile(cfg.node_signer_key);
  if (!key.ok()) return absl::InvalidArgumentError(absl::StrCat("--node-signer-key: ", key.status().message()));
  auto info = gantry::x509::Inspect(*cert);
  if (!info.ok() || !info->is_ca) {
    return absl::InvalidArgumentError("--node-signer-cert: not a CA certificate");
  }
  if (absl::Status s = gantry::x509::CheckKeyMatches(*cert, *key); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--node-signer-key: ", s.message()));
  }
  if (cfg.node_cert_ttl < absl::Seconds(5)) {
    return absl::InvalidArgumentError("--node-cert-ttl: at least 5s");
  }
  return absl::OkStatus();
}

absl::Status CheckAbuseLimits(const ApiConfig& cfg) {
  if (cfg.max_streams_per_client < 1 || cfg.max_streams_per_client > 100000) {
    return absl::InvalidArgumentError("--max-streams-per-client: 1..100000");
  }
  if (cfg.max_invokes_per_client < 1 || cfg.max_invokes_per_client > 100000) {
    return absl::InvalidArgumentError("--max-invokes-per-client: 1..100000");
  }
  if (cfg.auth_failure_burst < 1 || cfg.auth_failure_burst > 100000) {
    return absl::InvalidArgumentError("--auth-failure-burst: 1..100000");
  }
  if (cfg.auth_failure_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--auth-failure-interval: more than 0");
  }
  if (cfg.queue_dispatch_interval < absl::Milliseconds(50) || cfg.queue_dispatch_interval > absl::Minutes(1)) {
    return absl::InvalidArgumentError("--queue-dispatch-interval: 50ms..1m");
  }
  if (cfg.http_threads < 1 || cfg.http_threads > 64) {
    return absl::InvalidArgumentError("--http-threads: 1..64");
  }
  if (cfg.http_request_timeout < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--http-request-timeout: at least 1s");
  }
  if (cfg.watch_recheck_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--watch-recheck-interval: at least 1s");
  }
  return absl::OkStatus();
}

// Sizes a typo could make absurd: caught at start, naming the flag, not later as a silent
// overflow (gRPC takes an int) or a server that can never get a connection.
absl::Status CheckSizes(const ApiConfig& cfg) {
  if (cfg.db_pool_size < 1 || cfg.db_pool_size > 1000) {
    return absl::InvalidArgumentError("--db-pool-size: 1..1000");
  }
  if (cfg.db_control_pool_size < 1 || cfg.db_control_pool_size > 100) {
    return absl::InvalidArgumentError("--db-control-pool-size: 1..100");
  }
  if (cfg.max_concurrent_calls < 16 || cfg.max_concurrent_calls > 100000) {
    return absl::InvalidArgumentError("--max-concurrent-calls: 16..100000");
  }
  if (cfg.db_timeout < absl::Seconds(2) || cfg.db_timeout > absl::Minutes(10)) {
    return absl::InvalidArgumentError("--db-timeout: 2s..10m (a new connection needs 2 s)");
  }
  constexpr int64_t kMinMessage = 64 * 1024, kMaxMessage = 1024 * 1024 * 1024;
  if (cfg.max_message_bytes < kMinMessage || cfg.max_message_bytes > kMaxMessage) {
    return absl::InvalidArgumentError(absl::StrCat("--max-message-bytes: ", kMinMessage, "..", kMaxMessage));
  }
  if (cfg.max_invoke_payload_bytes < 1 || cfg.max_invoke_payload_bytes > kMaxMessage) {
    return absl::InvalidArgumentError(absl::StrCat("--max-invoke-payload-bytes: 1..", kMaxMessage));
  }
  return absl::OkStatus();
}

absl::Status CheckHealthChecks(const ApiConfig& cfg) {
  if (cfg.health_check_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--health-check-interval: more than 0");
  }
  if (cfg.health_check_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--health-check-timeout: more than 0");
  }
  if (cfg.reachability_sweep < cfg.health_check_interval) {
    return absl::InvalidArgumentError("--reachability-sweep: at least --health-check-interval");
  }
  if (cfg.unheld_session_grace < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--unheld-session-grace: at least 1s");
  }
  if (cfg.token_rotation_grace < absl::ZeroDuration() || cfg.token_rotation_grace > absl::Hours(24)) {
    return absl::InvalidArgumentError("--token-rotation-grace: 0s..24h");
  }
  if (cfg.session_retention < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--session-retention: at least 1s");
  }
  if (cfg.unhealthy_after < 1 || cfg.offline_after < cfg.unhealthy_after) {
    return absl::InvalidArgumentError("--unhealthy-after: at least 1, and --offline-after at least as many");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  gantry::BlockTerminationSignals();
  gantry::TurnOffMutexDeadlockDetection();
  ApiConfig cfg;
  gantry::Flags flags("gantry-api", "Gantry's client-facing API server (state in PostgreSQL)");
  flags.AddString("listen", &cfg.listen, "address:port to serve on (port 0 picks a free port)");
  flags.AddString("port-file", &cfg.port_file, "write the bound port here once serving");
  gantry::AddTlsFlags(flags, &cfg.tls, "cluster CA bundle (PEM) that client certificates must chain to",
                      "server certificate (PEM), SAN spiffe://gantry/api-server");
  flags.AddString("database-url", &cfg.database_url, "PostgreSQL connection string (libpq DSN or URI)");
  flags.AddInt("db-pool-size", &cfg.db_pool_size, "PostgreSQL connections kept open for clients' requests");
  flags.AddInt("db-control-pool-size", &cfg.db_control_pool_size,
               "PostgreSQL connections kept apart for controllers' heartbeats and session events, health "
               "checks and the database probe, so a burst of client requests cannot delay them");
  flags.AddDuration("db-timeout", &cfg.db_timeout,
                    "the longest any call waits on PostgreSQL (its statements and lock waits included) before it "
                    "is UNAVAILABLE: a database that hangs costs each caller this much, never a blocked thread");
  flags.AddString("join-token", &cfg.join_token,
                  "cluster-wide controller join token (secret): controllers register with it and may get their "
                  "first certificate with it; per-node tokens come from gantryctl jointoken create");
  flags.AddString("worker-join-token", &cfg.worker_join_token,
                  "cluster-wide worker join token (secret, optional): workers may get their first certificate "
                  "with it; it mints no controller certificates");
  flags.AddString("node-signer-cert", &cfg.node_signer_cert,
                  "CA certificate (PEM) that signs controllers' and workers' bootstrap certificates "
                  "(empty: they bring their own)");
  flags.AddString("node-signer-key", &cfg.node_signer_key, "its private key (PEM)");
  flags.AddDuration("node-cert-ttl", &cfg.node_cert_ttl, "lifetime of a node certificate (renewed at 2/3 of it)");
  flags.AddString("node-cert-dns", &cfg.node_cert_dns,
                  "DNS names nodes may ask for in their certificates, comma-separated");
  flags.AddString("bootstrap-admin-key", &cfg.bootstrap_admin_key,
                  "an admin API key to accept from the start (stored hashed; secret)");
  flags.AddDuration("controller-heartbeat-interval", &cfg.controller_heartbeat_interval,
                    "how often controllers heartbeat; 3 missed make one unselectable");
  flags.AddDuration("controller-call-timeout", &cfg.controller_call_timeout,
                    "deadline for each call to a controller");
  flags.AddDuration("health-check-interval", &cfg.health_check_interval,
                    "how often the leading replica calls HealthCheck on controllers whose heartbeats are late or that missed a check");
  flags.AddDuration("reachability-sweep", &cfg.reachability_sweep,
                    "every controller is health-checked at least this often; those with late heartbeats, every interval");
  flags.AddDuration("health-check-timeout", &cfg.health_check_timeout,
                    "how long one controller may take to answer a health check before it counts as missed");
  flags.AddInt("unhealthy-after", &cfg.unhealthy_after,
               "missed health checks in a row that make a controller unhealthy (unselectable)");
  flags.AddDuration("deregistered-grace", &cfg.deregistered_grace,
                    "how long a controller that shut down may take to come back before its sessions are FAILED");
  flags.AddDuration("unheld-session-grace", &cfg.unheld_session_grace,
                    "how long a live session may be missing from its controller's heartbeats before it is FAILED as lost "
                    "(longer than a controller restart takes to re-adopt its sessions)");
  flags.AddDuration("token-rotation-grace", &cfg.token_rotation_grace,
                    "how long a controller token still works after RotateControllerToken replaced it");
  flags.AddDuration("session-retention", &cfg.session_retention,
                    "how long an ended (TERMINATED or FAILED) session and its events are kept before they are pruned");
  flags.AddInt("offline-after", &cfg.offline_after,
               "missed health checks in a row that make a controller offline and fail its sessions");
  flags.AddDuration("shutdown-grace", &cfg.shutdown_grace, "time in-flight calls get on SIGTERM");
  flags.AddDuration("queue-dispatch-interval", &cfg.queue_dispatch_interval,
                    "how often the health check leader offers room to queued sessions (and fails those past "
                    "their queue_timeout)");
  flags.AddDuration("watch-recheck-interval", &cfg.watch_recheck_interval,
                    "every open watch re-reads its session at least this often, whatever it was told: a safety net, "
                    "not how changes are delivered");
  flags.AddInt("max-message-bytes", &cfg.max_message_bytes, "largest request accepted");
  flags.AddInt("max-concurrent-calls", &cfg.max_concurrent_calls,
               "calls served at once, streams included (each holds a thread); beyond it a call is "
               "RESOURCE_EXHAUSTED at once, so threads and memory stay bounded whatever the database does");
  flags.AddInt("max-streams-per-client", &cfg.max_streams_per_client,
               "WatchSession and StreamLogs streams one client may hold open at once");
  flags.AddInt("max-invokes-per-client", &cfg.max_invokes_per_client,
               "Invoke calls one client may have in flight at once");
  flags.AddInt("auth-failure-burst", &cfg.auth_failure_burst,
               "wrong API keys or join tokens one address may present before it is slowed down");
  flags.AddDuration("auth-failure-interval", &cfg.auth_failure_interval,
                    "then, how often it may try again");
  flags.AddInt("max-invoke-payload-bytes", &cfg.max_invoke_payload_bytes, "largest invoke payload accepted");
  flags.AddString("log-format", &cfg.log_format, "text or json");
  flags.AddString("log-level", &cfg.log_level, "trace, debug, info, warn or error");
  flags.AddBool("migrate-only", &cfg.migrate_only, "apply pending migrations and exit");
  cfg.metrics.AddTo(flags);
  flags.AddString("http-listen", &cfg.http_listen,
                  "address:port for the HTTPS inference front door (OpenAI-compatible API, SSE, WebSocket; "
                  "docs/openai.md), with the server certificate of --tls-cert; empty serves none");
  flags.AddString("http-port-file", &cfg.http_port_file, "write the front door's bound port here once serving");
  flags.AddInt("http-threads", &cfg.http_threads, "threads serving the front door's connections (none waits on a stream)");
  flags.AddDuration("http-request-timeout", &cfg.http_request_timeout,
                    "the longest a front door request may run (a client's x-gantry-timeout-ms may ask for less)");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(s);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (absl::Status s = gantry::InitLogging("gantry-api", cfg.log_format, cfg.log_level); !s.ok()) {
    return Fail(s);
  }
  if (cfg.database_url.empty()) {
    return Fail(absl::InvalidArgumentError("--database-url (GANTRY_DATABASE_URL) is required"));
  }

  if (absl::Status s = CheckSizes(cfg); !s.ok()) return Fail(s);
  const gantry::PgBounds db_bounds{cfg.db_timeout};
  gantry::PgPool pool(cfg.database_url, static_cast<int>(cfg.db_pool_size), db_bounds);
  // Controllers' liveness must not queue behind clients: a burst of creates once held all of
  // `pool` (waiting on each other's reservations) for longer than a heartbeat's freshness, and
  // the controller they were placing on dropped out of placement mid-burst.
  gantry::PgPool control_pool(cfg.database_url, static_cast<int>(cfg.db_control_pool_size), db_bounds);
  if (cfg.migrate_only) {
    absl::Status s = pool.Run([](pqxx::connection& c) {
      auto applied = gantry::api::ApplyMigrations(c, gantry::api::EmbeddedMigrations());
      if (!applied.ok()) return applied.status();
      spdlog::info("{} migration(s) applied; schema up to date", applied->size());
      return absl::OkStatus();
    }, gantry::api::kMigrationTimeout);
    return s.ok() ? 0 : Fail(s);
  }
  if (cfg.join_token.size() < 16) {
    return Fail(absl::InvalidArgumentError(
        "--join-token (GANTRY_JOIN_TOKEN) must be set, at least 16 characters"));
  }
  if (!cfg.worker_join_token.empty() && (cfg.worker_join_token.size() < 16 || cfg.worker_join_token == cfg.join_token)) {
    return Fail(absl::InvalidArgumentError(
        "--worker-join-token (GANTRY_WORKER_JOIN_TOKEN): at least 16 characters, and not the controller --join-token "
        "(a worker's token must not mint controller certificates)"));
  }
  if (absl::Status s = CheckNodeSigner(cfg); !s.ok()) return Fail(s);
  if (absl::Status s = CheckAbuseLimits(cfg); !s.ok()) return Fail(s);
  if (absl::Status s = CheckHealthChecks(cfg); !s.ok()) return Fail(s);


  auto server_creds = gantry::MakeServerCredentials(cfg.tls,
                                                    gantry::ClientCertPolicy::kVerifyIfPresent);
  if (!server_creds.ok()) return Fail(server_creds.status());
  auto client_creds = gantry::MakeChannelCredentials(cfg.tls);
  if (!client_creds.ok()) return Fail(client_creds.status());

  using namespace gantry::api;
  SessionStore session_store(&pool);
  ControllerStore controller_store(&pool, cfg.controller_heartbeat_interval * 3);
  FailedAuthLimiter failed_auth_limiter({static_cast<int>(cfg.auth_failure_burst), cfg.auth_failure_interval});
  StreamQuota watch_quota(static_cast<int>(cfg.max_streams_per_client), "WatchSession and StreamLogs streams",
                          "--max-streams-per-client");
  StreamQuota invoke_quota(static_cast<int>(cfg.max_invokes_per_client), "Invoke calls",
                           "--max-invokes-per-client");
  Authenticator authenticator(&pool, &failed_auth_limiter);
  GrpcControllerClient controller_client(*client_creds, cfg.controller_call_timeout);
  TemplateStore template_store(&pool);
  SessionWatchHub watch_hub(gantry::BoundedDsn(cfg.database_url, db_bounds), kMaxWatchers, cfg.watch_recheck_interval);
  SessionManager session_manager(&session_store, &controller_store, &controller_client, &template_store, &watch_hub);
  PriorityClassStore priority_classes(&pool);
  session_manager.set_priority_classes(&priority_classes);
  PreemptionStore preemption_store(&pool, cfg.controller_heartbeat_interval * 3);
  Preemptor preemptor(&preemption_store, &session_store, &controller_store, &controller_client);
  session_manager.set_preemptor(&preemptor);
  // The same stores on the control pool, for what controllers and the health checks do.
  SessionStore control_session_store(&control_pool);
  ControllerStore control_controller_store(&control_pool, cfg.controller_heartbeat_interval * 3);
  ControllerEventStore controller_events(&control_pool);
  NodeEnrollment enrollment(&pool, {cfg.join_token, cfg.worker_join_token});
  RegistryManager registry_manager({absl::Hours(24 * 30), cfg.controller_heartbeat_interval, cfg.unheld_session_grace},
                                   &enrollment, &control_controller_store, &control_session_store, &controller_events);
  DatabaseMonitor db_monitor(&control_pool, absl::Seconds(1), [&] {
    return authenticator.InstallBootstrapKey(cfg.bootstrap_admin_key);
  });

  // Watches and log streams park no thread (WatchSessionReactor, LogFollowReactor); their
  // admission and the watches' reads run here. Each has at most one job queued at a time.
  gantry::WorkPool stream_jobs(4, 2 * kMaxWatchers);
  SessionServiceImpl session_service(&db_monitor, &authenticator, &watch_quota, &session_manager, &watch_hub,
                                     &controller_client, &stream_jobs);
  RegistryServiceImpl registry_service(&db_monitor, &authenticator, &registry_manager, &failed_auth_limiter);
  AdminStore admin_store(&pool, cfg.controller_heartbeat_interval * 3);
  AdminManager admin_manager(&admin_store, &controller_client, &template_store, absl::Hours(24 * 30),
                             cfg.token_rotation_grace);
  ControllerDrainer drainer(&admin_manager, &admin_store, &session_manager);
  JoinTokenStore join_tokens(&pool);
  TeamStore team_store(&pool);
  AdminServiceImpl admin_service(&db_monitor, &authenticator, &admin_manager, &drainer, &join_tokens, &team_store,
                                 &priority_classes);
  NodeCertificateServiceImpl node_certificate_service(
      {cfg.node_signer_cert, cfg.node_signer_key, cfg.node_cert_ttl,
       absl::StrSplit(cfg.node_cert_dns, ',', absl::SkipEmpty())},
      &enrollment, &failed_auth_limiter);
  // Invokes park no thread (InvokeReactor); their admission and each choice of a controller
  // (PostgreSQL) run here, one job per invoke at a time.
  gantry::WorkPool invoke_jobs(4, 50000);
  InvokeCandidateCache invoke_candidates(
      [&controller_store](const std::string& capability) { return controller_store.InvokeCandidateRows(capability); },
      kInvokeCandidatesMaxAge);
  InvokeServiceImpl invoke_service({&authenticator, &invoke_quota, &invoke_candidates, &controller_client, &invoke_jobs,
                                    cfg.max_invoke_payload_bytes, /*max_attempts=*/3},
                                   &controller_store);

  // Listening before serving: callers waiting for an outcome hear of it through the hub.
  watch_hub.Start();
  auto server = gantry::StartGrpcServer(
      cfg.listen, *server_creds,
      {&session_service, &registry_service, &admin_service, &invoke_service, &node_certificate_service},
      {static_cast<int>(cfg.max_message_bytes), static_cast<int>(cfg.max_concurrent_calls)});
  if (!server.ok()) return Fail(server.status());
  db_monitor.Start(server->server.get());
  RegisterApiMetrics(&admin_store, {{"clients", &pool}, {"controllers", &control_pool}});
  auto metrics = cfg.metrics.Start(cfg.tls, [&db_monitor] { return db_monitor.CheckReady(); });
  if (!metrics.ok()) return Fail(metrics.status());
  HealthCheckConfig health;
  // The leader's lock lives as long as this connection: with the server's keepalives on it, a
  // leader cut off from PostgreSQL loses the lock within db_bounds.peer_timeout or so, and
  // another replica takes over the health checks.
  health.dsn = gantry::BoundedDsn(cfg.database_url, db_bounds);
  health.interval = cfg.health_check_interval;
  health.timeout = cfg.health_check_timeout;
  health.unhealthy_after = static_cast<int>(cfg.unhealthy_after);
  // Late: a heartbeat missed, and a second of slack for its batched write.
  health.heartbeat_late = std::max(cfg.controller_heartbeat_interval * 1.2, cfg.controller_heartbeat_interval + absl::Seconds(1));
  health.reachability_sweep = cfg.reachability_sweep;
  health.offline_after = static_cast<int>(cfg.offline_after);
  health.deregistered_grace = cfg.deregistered_grace;
  // The replica placing a session has its controller's answer, or has died, after one call.
  health.placement_resume_after = cfg.controller_call_timeout;
  health.placement_timeout = 3 * cfg.controller_call_timeout;
  health.placement_give_up = std::max(10 * cfg.controller_call_timeout, absl::Minutes(5));
  health.database_ready = [&db_monitor] { return db_monitor.CheckReady().ok(); };
  // Short calls: this runs on the health check thread, and the sweep comes round again. (A
  // controller answers as soon as it has sent the start to a worker.)
  PlacementResumer leader_resumer(&control_controller_store, &controller_client, absl::Seconds(5));
  HealthChecker health_checker(std::move(health), &control_pool, &control_session_store, &controller_client,
                               &leader_resumer);
  health_checker.Start();
  SessionPruneConfig prune;
  prune.retention = cfg.session_retention;
  SessionPruner pruner(prune, &control_pool, [&health_checker] { return health_checker.leading(); });
  pruner.Start();
  QueueDispatchConfig queue;
  queue.interval = cfg.queue_dispatch_interval;
  QueueDispatcher queue_dispatcher(queue, &control_session_store, &control_controller_store, &session_manager,
                                   [&health_checker] { return health_checker.leading(); });
  queue_dispatcher.set_preemptor(&preemptor);
  preemptor.set_on_victim_stopped([&queue_dispatcher] { queue_dispatcher.Wake(); });
  queue_dispatcher.Start();
  spdlog::info("serving on port {}", server->port);
  if (absl::Status s = gantry::WritePortFile(cfg.port_file, server->port); !s.ok()) return Fail(s);
  std::unique_ptr<http::HttpGateway> gateway;
  if (!cfg.http_listen.empty()) {
    grpc::ChannelArguments in_process;
    in_process.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_message_bytes));
    auto started = http::HttpGateway::Start(
        {cfg.http_listen, cfg.tls.cert_file, cfg.tls.key_file, cfg.tls.refresh_interval,
         static_cast<int>(cfg.http_threads), cfg.http_request_timeout, cfg.max_invoke_payload_bytes},
        server->server->InProcessChannel(in_process), [&db_monitor] { return db_monitor.CheckReady().ok(); });
    if (!started.ok()) return Fail(started.status());
    gateway = *std::move(started);
    spdlog::info("HTTP gateway serving on port {}", gateway->port());
    if (absl::Status s = gantry::WritePortFile(cfg.http_port_file, gateway->port()); !s.ok()) return Fail(s);
  }

  int sig = gantry::WaitForTerminationSignal();
  spdlog::info("signal {}: draining for up to {}", sig, absl::FormatDuration(cfg.shutdown_grace));
  queue_dispatcher.Stop();
  pruner.Stop();
  health_checker.Stop();
  server->server->Shutdown(absl::ToChronoTime(absl::Now() + cfg.shutdown_grace));
  if (gateway != nullptr) gateway->Stop();  // Its generations were calls of the server's: ended.
  if (size_t left = session_manager.StopStarting(); left > 0) {
    spdlog::info("{} acknowledged session(s) not started yet: SCHEDULED, the placement sweep starts them", left);
  }
  preemptor.Stop();  // Victims not yet asked to stop stay TERMINATING: the queue's leader asks again.
  stream_jobs.Drain();  // Every stream has ended; a job still queued only lets its stream go.
  invoke_jobs.Drain();  // The same for invokes.
  // A relay ends once its call to the controller has: cancelled by now, it ends on a gRPC thread
  // shortly. Before the client and stores it uses go.
  if (!gantry::api::LiveRelays::WaitUntilNone(absl::Now() + absl::Seconds(10))) {
    spdlog::warn("relayed streams still open 10 s after shutdown; exiting with them");
  }
  watch_hub.Stop();
  db_monitor.Stop();
  spdlog::info("stopped");
  return 0;
}
