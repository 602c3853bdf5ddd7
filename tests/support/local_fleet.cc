#include "tests/support/local_fleet.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include "grpc/health/v1/health.grpc.pb.h"

#include <signal.h>

#include <fstream>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "gantry/v1/admin_service.grpc.pb.h"

namespace gantry::testing {

LocalFleet::LocalFleet() : db_(std::make_unique<TestDatabase>()), pki_(std::make_unique<Pki>(dir_.Sub("pki"))) {
  // Sessions run as other uids and must pass through to their homes under the workers' session
  // directories here; searchable, not listable (what is in it has modes of its own).
  REQUIRE(chmod(dir_.path().c_str(), 0711) == 0);
  api_cert_prefix_ = pki_->Issue("api-server");
  pki_->Issue("admin", "ops");
}

LocalFleet::~LocalFleet() {
  // Workers first so their sessions die with them before anything else goes.
  workers_.clear();
  controllers_.clear();
  api_.reset();
}

std::unique_ptr<Process> LocalFleet::LaunchApi(const std::string& name, const std::string& dsn,
                                               bool wait_until_serving, int* port,
                                               const std::vector<std::string>& exec_prefix,
                                               const std::string& listen_ip) {
  std::string port_file = dir_.Sub(name + ".port");
  std::remove(port_file.c_str());
  std::map<std::string, std::string> env{
          {"GANTRY_DATABASE_URL", dsn.empty() ? db_->dsn() : dsn},
          {"GANTRY_TLS_CA", pki_->ca()},
          {"GANTRY_TLS_CERT", api_cert_prefix_ + ".crt"},
          {"GANTRY_TLS_KEY", api_cert_prefix_ + ".key"},
          {"GANTRY_JOIN_TOKEN", kJoinToken},
          {"GANTRY_BOOTSTRAP_ADMIN_KEY", kAdminKey},
          {"GANTRY_CONTROLLER_HEARTBEAT_INTERVAL", "1s"},
          {"GANTRY_HEALTH_CHECK_INTERVAL", "300ms"},
          // Not 300 ms too: on a loaded 2-core CI runner a controller placing 50 sessions at
          // once took longer than that to answer three checks in a row, and was (rightly, by
          // that setting) taken out of placement mid-test.
          {"GANTRY_HEALTH_CHECK_TIMEOUT", "1s"},
          {"GANTRY_SHUTDOWN_GRACE", "2s"},
          {"GRPC_DNS_RESOLVER", "native"}};
  for (const auto& [k, v] : api_env) env[k] = v;
  std::vector<std::string> argv = exec_prefix;
  argv.insert(argv.end(), {BinaryPath("gantry-api"), "--listen", (listen_ip.empty() ? api_listen_ip : listen_ip) + ":0",
                           "--port-file", port_file});
  auto api = std::make_unique<Process>(argv, env, dir_.Sub(name + ".log"));
  *port = WaitForPortFile(port_file, absl::Seconds(10));
  INFO(api->Log());
  REQUIRE(*port > 0);
  if (!wait_until_serving) return api;
  auto channel = ChannelTo(*port, pki_->dir() + "/admin-ops");
  bool serving = WaitFor([&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    // The standard health service answers SERVING once migrations ran and PostgreSQL is up.
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = grpc::health::v1::Health::NewStub(channel)->Check(&ctx, req, &resp);
    return s.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }, absl::Seconds(20));
  INFO(api->Log());
  REQUIRE(serving);
  return api;
}

void LocalFleet::StartApi(const std::string& dsn, bool wait_until_serving) {
  if (!api_cert_ips.empty()) api_cert_prefix_ = pki_->Issue("api-server", "", pki_->dir() + "/api-server-net", api_cert_ips);
  api_ = LaunchApi("api", dsn, wait_until_serving, &api_port_);
}

int LocalFleet::StartApiReplica(const std::string& dsn) {
  int port = 0;
  api_replicas_.push_back(LaunchApi(absl::StrCat("api", api_replicas_.size() + 2), dsn, true, &port));
  api_replica_ports_.push_back(port);
  return port;
}

Process& LocalFleet::StartApiReplicaIn(const std::vector<std::string>& exec_prefix, const std::string& listen_ip,
                                       const std::string& dsn) {
  int port = 0;
  api_replicas_.push_back(
      LaunchApi(absl::StrCat("api", api_replicas_.size() + 2), dsn, false, &port, exec_prefix, listen_ip));
  return *api_replicas_.back();
}

std::string LocalFleet::ApiAddresses(const std::string& ip) const {
  std::string out = absl::StrCat(ip, ":", api_port_);
  for (int port : api_replica_ports_) absl::StrAppend(&out, ",", ip, ":", port);
  return out;
}

std::unique_ptr<Process> LocalFleet::LaunchController(const std::string& name, const NodeNetwork& network,
                                                      int port, const std::string& port_file) {
  std::string prefix = pki_->dir() + "/controller-" + name;
  std::map<std::string, std::string> env{
      {"GANTRY_TLS_CA", pki_->ca()},
      {"GANTRY_TLS_CERT", prefix + ".crt"},
      {"GANTRY_TLS_KEY", prefix + ".key"},
      {"GANTRY_JOIN_TOKEN", kJoinToken},
      {"GANTRY_STOP_GRACE", "2s"},
      {"GANTRY_SHUTDOWN_GRACE", "2s"},
      {"GRPC_DNS_RESOLVER", "native"}};
  for (const auto& [k, v] : controller_env) env[k] = v;
  std::vector<std::string> argv = network.exec_prefix;
  argv.insert(argv.end(), {BinaryPath("gantry-controller"), "--name", name, "--listen",
                           absl::StrCat(network.controller_ip, ":", port), "--port-file", port_file, "--api-url",
                           ApiAddresses(network.api_ip)});
  return std::make_unique<Process>(argv, env, dir_.Sub(name + ".log"));
}

void LocalFleet::StartController(const std::string& name) {
  pki_->Issue("controller", name, "", {node_network.controller_ip});
  std::string port_file = dir_.Sub(name + ".port");
  controllers_.push_back(LaunchController(name, node_network, 0, port_file));
  int port = WaitForPortFile(port_file, absl::Seconds(10));
  INFO(controllers_.back()->Log());
  REQUIRE(port > 0);
  controller_ports_.push_back(port);
  controller_names_.push_back(name);
  controller_networks_.push_back(node_network);
}

void LocalFleet::RestartController(size_t index) {
  controllers_.at(index)->Signal(SIGKILL);
  REQUIRE(controllers_[index]->Wait(absl::Seconds(5)) != -1);
  const std::string& name = controller_names_.at(index);
  std::string port_file = dir_.Sub(name + ".port");
  std::remove(port_file.c_str());
  controllers_[index] = LaunchController(name, controller_networks_.at(index), controller_ports_.at(index), port_file);
  int port = WaitForPortFile(port_file, absl::Seconds(10));
  INFO(controllers_[index]->Log());
  REQUIRE(port == controller_ports_[index]);
}

void LocalFleet::StartWorkerServing(const std::string& name, const std::string& gpus, const std::string& lines,
                                    std::vector<std::string> extra_args) {
  const std::string file = dir_.Sub(name + ".capabilities");
  std::ofstream(file) << lines;
  extra_args.insert(extra_args.begin(), {"--capabilities", file});
  StartWorker(name, gpus, 0, extra_args);
}

void LocalFleet::StartWorker(const std::string& name, const std::string& gpus, size_t controller,
                             const std::vector<std::string>& extra_args) {
  // A worker started again under a name it had keeps that name's certificate and session
  // directory (as a restarted process on its node would); each run logs to a file of its own.
  const std::string issued = pki_->dir() + "/worker-" + name;
  const std::string prefix = access((issued + ".crt").c_str(), F_OK) == 0 ? issued : pki_->Issue("worker", name);
  std::string log = dir_.Sub(name + ".log");
  for (int run = 2; access(log.c_str(), F_OK) == 0; ++run) log = dir_.Sub(absl::StrCat(name, ".", run, ".log"));
  std::string session_dir = dir_.Sub("sessions-" + name);
  std::vector<std::string> argv = node_network.exec_prefix;
  argv.insert(argv.end(), {BinaryPath("gantry-worker"), "--name", name, "--simulated-gpus", gpus, "--session-dir",
                           session_dir});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // worker_env may name another controller (a benchmark's stand-in): then none need be started.
  auto url = worker_env.find("CONTROLLER_URL");
  std::map<std::string, std::string> env{
      {"CONTROLLER_URL", url != worker_env.end() ? url->second : controller_address(controller)},
      {"GANTRY_TLS_CA", pki_->ca()},
      {"GANTRY_TLS_CERT", prefix + ".crt"},
      {"GANTRY_TLS_KEY", prefix + ".key"},
      {"GANTRY_DRAIN_GRACE", "2s"},
      {"GANTRY_METRICS_INTERVAL", "300ms"},
      {"GRPC_DNS_RESOLVER", "native"}};
  // Sessions run as uids of their own, as in production, wherever the suite can give them
  // (as root); elsewhere as the worker's user. The tenant isolation test requires root.
  if (geteuid() == 0) {
    env["GANTRY_SESSION_UIDS"] = kSessionUids;
    env["GANTRY_HANDLER_USER"] = kHandlerUser;
  } else {
    env["GANTRY_SESSIONS_AS_WORKER_USER"] = "true";
  }
  for (const auto& [k, v] : worker_env) env[k] = v;
  workers_.push_back(std::make_unique<Process>(argv, env, log));
}

std::string LocalFleet::ReadableCopy(const std::string& path, mode_t mode) {
  const std::string copy = dir_.Sub(path.substr(path.rfind('/') + 1));
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) throw std::runtime_error("ReadableCopy: cannot read " + path);
  std::ofstream(copy, std::ios::binary) << in.rdbuf();
  if (chmod(copy.c_str(), mode) != 0) throw std::runtime_error("ReadableCopy: cannot chmod " + copy);
  return copy;
}

std::string LocalFleet::WritableFile(const std::string& name) {
  const std::string path = dir_.Sub(name);
  std::ofstream(path).close();
  if (chmod(path.c_str(), 0666) != 0) throw std::runtime_error("WritableFile: cannot chmod " + path);
  return path;
}

void LocalFleet::WaitUntilSchedulable(int gpus) {
  bool ready = WaitFor([&] {
    try {
      // What placement asks (select_controller_candidates.sql), heartbeat included: after a
      // partition heals, health checks pass (status 'healthy') before the controller's link
      // has come back from its backoff, and until its heartbeats resume it is not selectable
      // ("no healthy, uncordoned controller", seen once in a clean-clone run). A heartbeat in
      // the last 2 s of the 3 s freshness (1 s interval) means they have. Even a session
      // needing no GPU needs an online worker.
      return db_->Scalar(absl::StrCat(
                 "SELECT count(*) FROM controllers WHERE status = 'healthy' AND NOT cordoned AND "
                 "last_heartbeat > now() - interval '2 seconds' AND "
                 "coalesce((capacity->>'workers_online')::int, 0) >= 1 AND "
                 "max_free_gpus_per_worker >= ", gpus)) != "0";
    } catch (const std::exception&) {
      return false;
    }
  }, absl::Seconds(20));
  INFO("api log:\n" << api_->Log());
  REQUIRE(ready);
}

void LocalFleet::WaitUntilWorkersOnline(int n) {
  bool online = WaitFor([&] {
    return db_->Scalar("SELECT coalesce(sum((capacity->>'workers_online')::int), 0) FROM controllers") ==
           std::to_string(n);
  }, absl::Seconds(20));
  INFO("api log:\n" << api_->Log());
  REQUIRE(online);
}

void LocalFleet::StartSingleNode(const std::string& gpus, int schedulable) {
  StartApi();
  StartController();
  StartWorker("w1", gpus);
  WaitUntilSchedulable(schedulable);
}

std::string LocalFleet::api_address() const { return absl::StrCat("127.0.0.1:", api_port_); }

std::string LocalFleet::controller_address(size_t index) const {
  return absl::StrCat(controller_networks_.at(index).controller_ip, ":", controller_ports_.at(index));
}

namespace {

// Clients' threads make channels too, and Catch's assertions are not thread-safe (ThreadSanitizer
// caught one): a failure here throws instead, which Catch reports on a test's own thread and
// which ends the test process (std::terminate) on any other.
std::shared_ptr<grpc::ChannelCredentials> CredentialsOrThrow(const TlsFiles& files) {
  auto creds = MakeChannelCredentials(files);
  if (!creds.ok()) throw std::runtime_error("channel credentials: " + creds.status().ToString());
  return *std::move(creds);
}

}  // namespace

std::shared_ptr<grpc::Channel> LocalFleet::ChannelWithCert(const std::string& cert_prefix,
                                                           const std::string& ca) const {
  return grpc::CreateChannel(api_address(), CredentialsOrThrow({ca.empty() ? pki_->ca() : ca, cert_prefix + ".crt",
                                                                cert_prefix + ".key"}));
}

grpc::Status LocalFleet::CreateAsAdmin(const v1::SessionSpec& spec, v1::Session* session) const {
  v1::CreateSessionRequest request;
  request.set_wait_for_running(true);
  *request.mutable_spec() = spec;
  grpc::ClientContext ctx;
  return AdminSessions()->CreateSession(&ctx, request, session);
}

std::shared_ptr<grpc::Channel> LocalFleet::ChannelTo(int port, const std::string& cert_prefix) const {
  return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                             CredentialsOrThrow({pki_->ca(), cert_prefix + ".crt", cert_prefix + ".key"}));
}

std::shared_ptr<grpc::Channel> LocalFleet::ChannelWithoutCert() const {
  return grpc::CreateChannel(api_address(), CredentialsOrThrow({pki_->ca(), "", ""}));
}

std::unique_ptr<v1::SessionService::Stub> LocalFleet::AdminSessions(int port) const {
  return v1::SessionService::NewStub(
      port == 0 ? ChannelWithCert(pki_->dir() + "/admin-ops") : ChannelTo(port, pki_->dir() + "/admin-ops"));
}

LocalFleet::Rss LocalFleet::ResidentKib() {
  return {RssKib(api().pid()), RssKib(controller().pid()), RssKib(worker().pid())};
}

LocalFleet::Threads LocalFleet::ThreadCounts() {
  return {ThreadCount(api().pid()), ThreadCount(controller().pid()), ThreadCount(worker().pid())};
}

void LocalFleet::MeasureMemory() {
  if (!kSanitizedBuild) return;
  const char* options = std::getenv("ASAN_OPTIONS");
  const std::string without_quarantine =
      absl::StrCat(options != nullptr ? options : "", options != nullptr && *options != '\0' ? ":" : "",
                   "quarantine_size_mb=0:thread_local_quarantine_size_kb=0");
  for (auto* env : {&api_env, &controller_env, &worker_env}) (*env)["ASAN_OPTIONS"] = without_quarantine;
}

void LocalFleet::CheckGrowthBelow(const Rss& before, int64_t limit_kib) {
  const Rss now = ResidentKib();
  const Rss grew = {now.api - before.api, now.controller - before.controller, now.worker - before.worker};
  INFO("RSS growth (KiB): api " << grew.api << ", controller " << grew.controller << ", worker " << grew.worker);
  CHECK(grew.api < limit_kib);
  CHECK(grew.controller < limit_kib);
  CHECK(grew.worker < limit_kib);
}

v1::SessionSpec SleepSpec(const std::string& marker_seconds, int gpus) {
  v1::SessionSpec spec;
  spec.add_command("sleep");
  spec.add_command(marker_seconds);
  spec.mutable_resources()->mutable_gpus()->set_count(gpus);
  return spec;
}

v1::SessionSpec ShellSpec(const std::string& script, int gpus) {
  v1::SessionSpec spec;
  spec.add_command("/bin/sh");
  spec.add_command("-c");
  spec.add_command(script);
  spec.mutable_resources()->mutable_gpus()->set_count(gpus);
  return spec;
}

}  // namespace gantry::testing
