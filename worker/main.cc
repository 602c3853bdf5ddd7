// gantry-worker: runs GPU session processes for its node's controller. Dials out to
// CONTROLLER_URL (no inbound port), registers its GPUs, and follows the controller's commands.
#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <iostream>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>

#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/identity.h"
#include "common/logging.h"
#include "common/redialer.h"
#include "common/metrics_server.h"
#include "common/mutex_deadlock_detection.h"
#include "common/shutdown.h"
#include "common/node_bootstrap.h"
#include "common/tls.h"
#include "worker/controller_connection.h"
#include "worker/capability_config.h"
#include "worker/gpu_inventory.h"
#include "worker/invoke_runner.h"
#include "worker/log_janitor.h"
#include "worker/log_streamer.h"
#include "worker/model_scanner.h"
#include "worker/nvml.h"
#include "worker/session_runner.h"
#include "worker/worker_metrics.h"

namespace {

struct WorkerConfig {
  std::string controller_url = "127.0.0.1:7444";
  std::string name;
  std::string node_id;
  gantry::TlsFiles tls;
  gantry::NodeBootstrapOptions bootstrap;
  std::string api_url = "127.0.0.1:7443";
  std::string join_token;
  std::string join_token_file;
  std::string simulated_gpus;
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string skills;
  std::string session_dir;
  std::string keeper_path;  // gantry-keeper; "" = beside this program.
  std::string models_dir;
  absl::Duration models_rescan_interval = absl::Seconds(60);
  absl::Duration drain_grace = absl::Seconds(10);
  absl::Duration metrics_interval = absl::Seconds(5);
  int64_t log_ring_bytes = 256 * 1024;
  int64_t session_log_max_bytes = 64 << 20;
  int64_t session_logs_budget_bytes = int64_t{10} << 30;
  absl::Duration session_log_retention = absl::Hours(24);
  std::string cgroup_root = "auto";
  std::string capabilities_file;
  int64_t invoke_concurrency = 8;
  std::string model_handler;
  std::string session_uids;
  std::string handler_user;
  std::string session_groups;
  bool sessions_as_worker_user = false;
  std::string log_format = "text";
  gantry::MetricsOptions metrics;
  std::string log_level = "info";
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "gantry-worker: %s\n", status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gantry::BlockTerminationSignals();
  gantry::TurnOffMutexDeadlockDetection();
  WorkerConfig cfg;
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  cfg.name = host;
  gantry::Flags flags("gantry-worker", "Gantry's GPU worker: runs session processes");
  flags.AddString("controller-url", &cfg.controller_url, "controller address host:port", "CONTROLLER_URL");
  flags.AddString("name", &cfg.name, "worker name; must match its certificate (default: hostname)");
  cfg.bootstrap.AddTo(flags);
  flags.AddString("api-url", &cfg.api_url, "API server address host:port, or several comma-separated (only for --tls-bootstrap-dir)");
  flags.AddString("join-token", &cfg.join_token,
                  "worker join token (secret; prefer --join-token-file; only for --tls-bootstrap-dir's first "
                  "certificate)");
  flags.AddString("join-token-file", &cfg.join_token_file, "file holding the worker join token");
  flags.AddString("node-id", &cfg.node_id, "node this worker runs on (default: the controller's)");
  gantry::AddTlsFlags(flags, &cfg.tls, "cluster CA bundle (PEM)",
                      "certificate (PEM), SAN spiffe://gantry/worker/NAME");
  flags.AddString("simulated-gpus", &cfg.simulated_gpus,
                  "simulated GPUs for development, COUNT[:MODEL[:MEMORY_GIB]][;...], e.g. 2:Simulated A100:40");
  flags.AddString("nvml-library", &cfg.nvml_library,
                  "NVML library to discover GPUs with (loaded at run time; ignored with --simulated-gpus)");
  flags.AddString("skills", &cfg.skills, "comma-separated skills (models, capabilities) this worker has");
  flags.AddString("models-dir", &cfg.models_dir,
                  "directory whose sub-directories are models, offered as skills model/<name>");
  flags.AddDuration("models-rescan-interval", &cfg.models_rescan_interval,
                    "how often the models directory is re-scanned (also on SIGHUP)");
  flags.AddString("keeper", &cfg.keeper_path,
                  "the gantry-keeper program that stands between the worker and each session (default: next to gantry-worker)");
  flags.AddString("session-dir", &cfg.session_dir, "where session logs go (default: /tmp/gantry-worker-NAME)");
  flags.AddInt("log-ring-bytes", &cfg.log_ring_bytes,
               "recent output kept in memory per session, for tail and follow (at least 4096)");
  flags.AddInt("session-log-max-bytes", &cfg.session_log_max_bytes,
               "each session's log on disk, at most (the newest output is kept; at least 65536)");
  flags.AddInt("session-logs-budget-bytes", &cfg.session_logs_budget_bytes,
               "all session logs on this worker, at most: over it, ended sessions' logs go, oldest first");
  flags.AddDuration("session-log-retention", &cfg.session_log_retention,
                    "how long an ended session's log is kept");
  flags.AddString("cgroup-root", &cfg.cgroup_root,
                  "cgroup v2 directory under which sessions get their own cgroups and CPU/memory limits: "
                  "auto (where the worker runs), off, or a path");
  flags.AddString("capabilities", &cfg.capabilities_file,
                  "file of capabilities to serve, one per line: NAME VERSION exec|persistent COMMAND [ARG...]");
  flags.AddString("model-handler", &cfg.model_handler,
                  "\"exec|persistent COMMAND [ARG...]\" serving every model in --models-dir as capability "
                  "model/<name> (GANTRY_MODEL_DIR tells it which); models found at start-up");
  flags.AddInt("invoke-concurrency", &cfg.invoke_concurrency, "requests each capability serves at once");
  flags.AddString("session-uids", &cfg.session_uids,
                  "FIRST-LAST: each session runs as a uid of its own from this range (and a group of the same "
                  "number), never the worker's; the worker needs CAP_SETUID and CAP_SETGID");
  flags.AddString("session-groups", &cfg.session_groups,
                  "comma-separated groups (names or numbers) sessions keep, e.g. the ones that may open the GPU "
                  "devices on this node; no others");
  flags.AddString("handler-user", &cfg.handler_user,
                  "UID[:GID] or a user name capability handlers run as (not the worker's, not root, not of "
                  "--session-uids); required with --session-uids to serve capabilities");
  flags.AddBool("sessions-as-worker-user", &cfg.sessions_as_worker_user,
                "development only: run sessions as the worker's own user, which lets them read its keys and "
                "signal it (a warning is logged at every session start)");
  flags.AddDuration("metrics-interval", &cfg.metrics_interval,
                    "how often each session's CPU and memory are sampled and reported");
  flags.AddDuration("drain-grace", &cfg.drain_grace, "on SIGTERM, how long sessions get to exit before SIGKILL");
  cfg.metrics.AddTo(flags);
  flags.AddString("log-format", &cfg.log_format, "text or json");
  flags.AddString("log-level", &cfg.log_level, "trace, debug, info, warn or error");
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return Fail(s);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (absl::Status s = gantry::InitLogging("gantry-worker", cfg.log_format, cfg.log_level); !s.ok()) {
    return Fail(s);
  }
  if (!gantry::IsValidName(cfg.name)) {
    return Fail(absl::InvalidArgumentError("--name: 1..63 of [a-z0-9._-], starting with a letter or digit"));
  }
  auto identities =
      gantry::worker::SessionIdentities::Create(cfg.session_uids, cfg.session_groups, cfg.sessions_as_worker_user);
  if (!identities.ok()) return Fail(identities.status());
  // Nobody else may read this process's memory, environment or file descriptors through
  // /proc, or attach a debugger, whatever the uids.
  prctl(PR_SET_DUMPABLE, 0);
  if (cfg.keeper_path.empty()) cfg.keeper_path = gantry::worker::DefaultKeeperPath();
  if (access(cfg.keeper_path.c_str(), X_OK) != 0) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--keeper: cannot execute ", cfg.keeper_path, " (", std::strerror(errno),
                                                        "): install gantry-keeper beside gantry-worker")));
  }
  // It runs with the worker's privileges until it has become a session's uid: only root or the
  // worker's own user may be able to change it.
  if (struct stat keeper; stat(cfg.keeper_path.c_str(), &keeper) != 0 || (keeper.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
                          (keeper.st_uid != 0 && keeper.st_uid != geteuid())) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "--keeper: ", cfg.keeper_path, " must be owned by root or this user and writable by its owner alone")));
  }
  if (cfg.session_dir.empty()) cfg.session_dir = "/tmp/gantry-worker-" + cfg.name;
  if (mkdir(cfg.session_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(absl::InvalidArgumentError("--session-dir: cannot create " + cfg.session_dir));
  }
  // Resolved, so that sessions are given paths that do not pass through links they may not follow.
  if (char* resolved = realpath(cfg.session_dir.c_str(), nullptr); resolved != nullptr) {
    cfg.session_dir = resolved;
    free(resolved);
  }
  // Sessions of their own uids pass through to their homes (<dir>/<id>, 0700 each) but cannot
  // list the directory, and the logs in it are the worker's (0600). Every directory above it
  // must let them through, or each session would fail to start: said once, here.
  if (identities->isolated()) {
    if (absl::Status s = gantry::worker::CheckSearchableByOthers(cfg.session_dir); !s.ok()) return Fail(s);
  }
  if (chmod(cfg.session_dir.c_str(), identities->isolated() ? 0711 : 0700) != 0) {
    return Fail(absl::InvalidArgumentError("--session-dir: cannot set the mode of " + cfg.session_dir));
  }

  auto gpus = gantry::worker::ParseSimulatedGpus(cfg.simulated_gpus, cfg.name);
  if (!gpus.ok()) return Fail(gpus.status());
  std::unique_ptr<gantry::worker::Nvml> nvml;
  if (!gpus->empty()) {
    spdlog::warn("SIMULATED GPUs: {} configured GPU(s) are not real hardware; for development and "
                 "tests only", gpus->size());
  } else if (auto loaded = gantry::worker::Nvml::Load(cfg.nvml_library); !loaded.ok()) {
    spdlog::warn("no GPUs: NVML unavailable ({}); this worker takes CPU-only sessions",
                 loaded.status().ToString());
  } else {
    nvml = std::move(*loaded);
    auto found = nvml->Devices();
    if (!found.ok()) return Fail(found.status());
    *gpus = std::move(*found);
    for (const auto& g : *gpus) {
      spdlog::info("GPU {}: {} {} ({} MiB)", g.index(), g.name(), g.uuid(), g.memory_total_bytes() >> 20);
    }
    if (gpus->empty()) spdlog::warn("NVML found no GPUs; this worker takes CPU-only sessions");
  }

  std::vector<gantry::worker::CapabilityConfig> capabilities;
  if (!cfg.capabilities_file.empty()) {
    std::ifstream in(cfg.capabilities_file);
    if (!in) return Fail(absl::InvalidArgumentError("--capabilities: cannot read " + cfg.capabilities_file));
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = gantry::worker::ParseCapabilities(text.str());
    if (!parsed.ok()) return Fail(absl::InvalidArgumentError("--capabilities: " + std::string(parsed.status().message())));
    capabilities = std::move(*parsed);
  }
  if (!cfg.model_handler.empty()) {
    std::vector<std::string> names;
    for (const auto& m : gantry::worker::ScanSkills({}, cfg.models_dir).models) names.push_back(m.name());
    auto models = gantry::worker::ModelCapabilities(cfg.model_handler, cfg.models_dir, names, capabilities);
    if (!models.ok()) return Fail(models.status());
    capabilities.insert(capabilities.end(), models->begin(), models->end());
  }
  // Handlers take tenants' payloads: a user of their own, at home in <session-dir>/.handlers
  // (sessions' homes are named by their UUIDs: no clash).
  gantry::worker::SessionUser handler_user = gantry::worker::SessionUser::Unchanged();
  std::string handler_home = cfg.session_dir;
  if (!capabilities.empty()) {
    auto user = identities->HandlerUser(cfg.handler_user);
    if (!user.ok()) return Fail(user.status());
    handler_user = *user;
    if (handler_user.drop) {
      auto home = gantry::worker::MakeOwnHome(cfg.session_dir + "/.handlers", handler_user);
      if (!home.ok()) return Fail(home.status());
      handler_home = *home;
    }
  }
  if (cfg.invoke_concurrency < 1 || cfg.invoke_concurrency > 10000) {
    return Fail(absl::InvalidArgumentError("--invoke-concurrency: 1..10000"));
  }
  if (cfg.log_ring_bytes < 4096 || cfg.log_ring_bytes > (int64_t{1} << 30)) {
    return Fail(absl::InvalidArgumentError("--log-ring-bytes: 4096..1073741824"));
  }
  if (cfg.session_log_max_bytes < 65536) {
    return Fail(absl::InvalidArgumentError("--session-log-max-bytes: at least 65536"));
  }
  if (cfg.session_logs_budget_bytes < cfg.session_log_max_bytes) {
    return Fail(absl::InvalidArgumentError("--session-logs-budget-bytes: at least --session-log-max-bytes"));
  }
  if (cfg.session_log_retention < absl::Seconds(1)) {
    return Fail(absl::InvalidArgumentError("--session-log-retention: at least 1s"));
  }

  auto join_token = gantry::ReadJoinToken(cfg.join_token, cfg.join_token_file);
  if (!join_token.ok()) return Fail(join_token.status());
  // With --tls-bootstrap-dir, the certificate comes from the API server (and is renewed).
  auto node_certificate =
      cfg.bootstrap.StartIfSet(gantry::Role::kWorker, cfg.name, cfg.api_url, *join_token, &cfg.tls);
  if (!node_certificate.ok()) return Fail(node_certificate.status());
  auto creds = gantry::MakeChannelCredentials(cfg.tls);
  if (!creds.ok()) return Fail(creds.status());
  if (cfg.tls.cert_file.empty()) return Fail(absl::InvalidArgumentError("--tls-cert/--tls-key: a worker certificate is required"));

  gantry::worker::ConnectionConfig conn_cfg;
  conn_cfg.controller_url = cfg.controller_url;
  conn_cfg.metrics_interval = std::max(cfg.metrics_interval, absl::Milliseconds(100));
  if (nvml != nullptr) {
    auto registered = *gpus;
    conn_cfg.gpu_source = [&nvml, registered] {
      auto live = nvml->Devices();
      return live.ok() ? *live : registered;
    };
    conn_cfg.gpu_memory_by_pid = [&nvml] { return nvml->ProcessMemory(); };
  }
  auto& reg = conn_cfg.registration;
  reg.set_name(cfg.name);
  reg.set_node_id(cfg.node_id);
  reg.mutable_hardware()->set_cpu_cores(static_cast<int32_t>(std::thread::hardware_concurrency()));
  reg.mutable_hardware()->set_memory_bytes(static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE));
  for (const auto& g : *gpus) *reg.mutable_hardware()->add_gpus() = g;
  std::vector<std::string> fixed_skills;
  for (absl::string_view skill : absl::StrSplit(cfg.skills, ',', absl::SkipWhitespace())) {
    fixed_skills.emplace_back(skill);
  }

  for (const auto& c : capabilities) {
    auto* info = reg.add_capabilities();
    info->set_name(c.name);
    info->set_version(c.version);
    spdlog::info("capability {} {} ({})", c.name, c.version,
                 c.kind == gantry::worker::CapabilityConfig::Kind::kExec ? "exec" : "persistent");
  }
  gantry::Redialer controller(cfg.controller_url, *creds, {absl::Milliseconds(100), absl::Seconds(10)});
  gantry::worker::ControllerConnection connection(conn_cfg, &controller);
  const auto cgroups = gantry::worker::SessionCgroups::Probe(cfg.cgroup_root, cfg.name);
  if (cgroups.cpu_limits() && cgroups.memory_limits()) {
    spdlog::info("{}", cgroups.summary());
  } else {
    spdlog::warn("{}", cgroups.summary());
  }
  gantry::worker::LogPump pump(static_cast<size_t>(std::max<int64_t>(cfg.log_ring_bytes, 0)), cfg.session_log_max_bytes);
  gantry::worker::SessionRunner runner(cfg.session_dir, cfg.keeper_path, pump, cgroups, *identities, [&connection](const gantry::v1::WorkerSessionEvent& e) {
    connection.Send(e);
  });
  connection.set_runner(&runner);
  gantry::worker::LogStreamer logs(
      cfg.session_dir, [&pump](const std::string& id) { return pump.Find(id); },
      [&connection](const gantry::v1::WorkerLogLines& batch) { return connection.SendLogs(batch); },
      [&runner](const std::string& id) { return runner.IsRunning(id); }, gantry::worker::LogStreamer::Options{});
  connection.set_log_streamer(&logs);
  gantry::worker::InvokeRunner::Options invoke_options;
  invoke_options.max_concurrency = static_cast<int>(cfg.invoke_concurrency);
  invoke_options.working_dir = handler_home;
  invoke_options.user = handler_user;
  gantry::worker::InvokeRunner invokes(
      capabilities, invoke_options,
      [&connection](const gantry::v1::WorkerInvokeOutput& out) { return connection.SendInvokeOutput(out); });
  connection.set_invoke_runner(&invokes);
  const std::vector<gantry::v1::GpuInfo> registered_gpus = *gpus;
  gantry::worker::RegisterWorkerMetrics(&runner, &invokes, [&nvml, registered_gpus] {
    if (nvml == nullptr) return registered_gpus;
    auto live = nvml->Devices();
    return live.ok() ? *live : registered_gpus;
  });
  auto metrics = cfg.metrics.Start(cfg.tls, [&connection] {
    return connection.connected() ? absl::OkStatus() : absl::UnavailableError("not connected to the controller");
  });
  if (!metrics.ok()) return Fail(metrics.status());

  auto rescan = [&] {
    auto found = gantry::worker::ScanSkills(fixed_skills, cfg.models_dir);
    connection.SetSkills(found.skills, found.models);
    return found.skills.size();
  };
  spdlog::info("{} skill(s), {} from models in {}", rescan(),
               gantry::worker::ScanSkills({}, cfg.models_dir).models.size(),
               cfg.models_dir.empty() ? "(no --models-dir)" : cfg.models_dir);
  connection.Start();
  gantry::worker::LogJanitor janitor(cfg.session_dir, {cfg.session_log_retention, cfg.session_logs_budget_bytes},
                                     [&runner](const std::string& id) { return runner.IsRunning(id); });
  janitor.Start();
  spdlog::info("worker {} started; controller {}", cfg.name, cfg.controller_url);

  // Periodic re-scan of the models directory; SIGHUP asks for one now.
  std::mutex rescan_mu;
  std::condition_variable rescan_cv;
  bool stopping = false;
  std::thread rescanner([&] {
    std::unique_lock<std::mutex> lock(rescan_mu);
    while (!rescan_cv.wait_for(lock, absl::ToChronoMilliseconds(cfg.models_rescan_interval),
                               [&] { return stopping; })) {
      rescan();
    }
  });
  int sig;
  while ((sig = gantry::WaitForTerminationSignal()) == SIGHUP) {
    spdlog::info("SIGHUP: re-scanned, {} skill(s)", rescan());
  }
  {
    std::lock_guard<std::mutex> lock(rescan_mu);
    stopping = true;
  }
  rescan_cv.notify_all();
  rescanner.join();
  spdlog::info("signal {}: draining, sessions get {} to exit", sig, absl::FormatDuration(cfg.drain_grace));
  janitor.Stop();
  runner.StopAll(cfg.drain_grace);  // Exits are reported up the stream as they happen.
  logs.CancelAll();
  invokes.CancelAll();
  connection.Stop();
  cgroups.RemoveAll();
  // Last: the pod that replaces this one (its key was in memory) rejoins under the node's name.
  if (*node_certificate != nullptr) (*node_certificate)->HandBackName(absl::Now() + absl::Seconds(5));
  spdlog::info("stopped");
  return 0;
}
