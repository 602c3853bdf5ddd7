#include "tools/bench/hollow_controllers.h"

#include <grpcpp/client_context.h>
#include <grpcpp/server_context.h>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/controller_service.grpc.pb.h"
#include "gantry/v1/registry_service.grpc.pb.h"
#include "tools/bench/load.h"

namespace gantry::bench {
namespace {

// Controllers per ControllerService server: each server's certificate names the loopback
// addresses of its controllers (one IP SAN each). Few, because the API server parses the
// certificate and keeps its names for every connection: with 1,000 SANs a certificate cost
// gantry-api ~400 KiB per connection more than a real controller's would.
constexpr int kControllersPerServer = 100;

// Controller i's own loopback address (all of 127.0.0.0/8 reaches lo), so the API server opens
// one connection per controller, as it does in a real fleet. Up to 24,500 controllers.
std::string LoopbackIp(int i) {
  return absl::StrCat("127.", 10 + i / kControllersPerServer, ".0.", i % kControllersPerServer + 1);
}

v1::ControllerCapacity HollowCapacity(int gpus) {
  v1::ControllerCapacity cap;
  cap.set_workers_online(1);
  cap.set_gpus_total(gpus);
  cap.set_gpus_free(gpus);
  cap.set_max_free_gpus_per_worker(gpus);
  cap.set_max_gpu_memory_bytes(int64_t{80} << 30);
  cap.add_gpu_models("Hollow H100");
  cap.set_max_sessions(100000);
  return cap;
}

}  // namespace

// Answers for every hollow controller alike: healthy with its GPUs free, and every placement
// taken at once and reported RUNNING. What a hollow controller does not do is refused as such.
class HollowControllers::Service final : public v1::ControllerService::Service {
 public:
  Service(int gpus, std::atomic<int64_t>* placements, std::atomic<int64_t>* health_checks,
          std::function<void(const std::string& session_id, int gpus)> taken)
      : capacity_(HollowCapacity(gpus)),
        placements_(placements),
        health_checks_(health_checks),
        taken_(std::move(taken)) {}

  grpc::Status HealthCheck(grpc::ServerContext*, const v1::HealthCheckRequest*,
                           v1::HealthCheckResponse* response) override {
    ++*health_checks_;
    response->set_status("healthy");
    *response->mutable_capacity() = capacity_;
    return grpc::Status::OK;
  }
  grpc::Status CreateSession(grpc::ServerContext*, const v1::ControllerCreateSessionRequest* request,
                             v1::ControllerSessionResponse* response) override {
    ++*placements_;
    taken_(request->session_id(), request->spec().resources().gpus().count());
    response->set_session_id(request->session_id());
    response->set_phase(v1::SESSION_PHASE_STARTING);
    response->set_worker_id("hollow-worker");
    for (int g = 0; g < request->spec().resources().gpus().count(); ++g) {
      response->add_gpu_uuids(absl::StrCat("GPU-hollow-", g));
    }
    return grpc::Status::OK;
  }
  grpc::Status DeleteSession(grpc::ServerContext*, const v1::ControllerSessionRequest* request,
                             v1::ControllerSessionResponse* response) override {
    response->set_session_id(request->session_id());
    response->set_phase(v1::SESSION_PHASE_TERMINATED);
    return grpc::Status::OK;
  }

 private:
  const v1::ControllerCapacity capacity_;
  std::atomic<int64_t>* placements_;
  std::atomic<int64_t>* health_checks_;
  std::function<void(const std::string&, int)> taken_;
};

struct HollowControllers::Controller {
  std::string name;
  std::unique_ptr<v1::RegistryService::Stub> stub;
  v1::HeartbeatRequest beat;  // the same every time
  // Guarded by HollowControllers::ready_mu_.
  bool in_flight = false;
  std::optional<absl::Time> waiting;  // a beat that fell due while one was in flight
  // The call in flight; replaced (and the last one freed) only by the scheduler thread.
  std::unique_ptr<grpc::ClientContext> ctx;
  v1::HeartbeatResponse response;
};

HollowControllers::HollowControllers(HollowControllerOptions options) : options_(std::move(options)) {}

HollowControllers::~HollowControllers() {
  StopHeartbeats();
  for (auto& s : servers_) s.server->Shutdown(std::chrono::system_clock::now());
}

absl::Status HollowControllers::Start() {
  auto ca_cert = ReadFile(options_.ca_dir + "/ca.crt");
  auto ca_key = ReadFile(options_.ca_dir + "/ca.key");
  if (!ca_cert.ok() || !ca_key.ok()) return absl::NotFoundError("hollow controllers: no CA in " + options_.ca_dir);
  // One key for every certificate: issuing 10,000 of them then takes a second, not minutes.
  auto key = x509::NewPrivateKey();
  if (!key.ok()) return key.status();
  const std::string key_file = options_.work_dir + "/hollow-controllers.key";
  if (auto s = WriteFile(key_file, *key, 0600); !s.ok()) return s;
  auto public_key = x509::PublicKeyOf(*key);
  if (!public_key.ok()) return public_key.status();
  const absl::Time now = absl::Now();
  auto issue = [&](const std::string& name, std::vector<std::string> ips) -> absl::StatusOr<std::string> {
    x509::Leaf leaf{*public_key, Identity{Role::kController, name}, {}, std::move(ips), now - absl::Minutes(1),
                    now + absl::Hours(24)};
    auto cert = x509::SignLeaf(leaf, *ca_cert, *ca_key);
    if (!cert.ok()) return cert.status();
    std::string file = absl::StrCat(options_.work_dir, "/", name, ".crt");
    if (auto s = WriteFile(file, *cert, 0644); !s.ok()) return s;
    return file;
  };

  db_ = std::make_unique<PgPool>(options_.database_dsn, 4);
  service_ = std::make_unique<Service>(options_.gpus_each, &placements_, &health_checks_,
                                       [this](const std::string& id, int gpus) { ReportRunning(id, gpus); });
  std::vector<int> ports;
  const int endpoints = options_.endpoints > 0 ? std::min(options_.endpoints, options_.count) : options_.count;
  for (int first = 0; first < endpoints; first += kControllersPerServer) {
    std::vector<std::string> ips;
    for (int i = first; i < std::min(endpoints, first + kControllersPerServer); ++i) ips.push_back(LoopbackIp(i));
    auto cert = issue(absl::StrCat(options_.name_prefix, "server-", first / kControllersPerServer), ips);
    if (!cert.ok()) return cert.status();
    auto creds = MakeServerCredentials({options_.ca_dir + "/ca.crt", *cert, key_file, absl::ZeroDuration()},
                                       ClientCertPolicy::kRequire);
    if (!creds.ok()) return creds.status();
    // Every address of 127.0.0.0/8 at once: the controllers' addresses are all on lo.
    auto running = StartGrpcServer("0.0.0.0:0", *creds, {service_.get()});
    if (!running.ok()) return running.status();
    ports.push_back(running->port);
    servers_.push_back(std::move(*running));
  }

  for (int i = 0; i < options_.count; ++i) {
    auto c = std::make_unique<Controller>();
    c->name = absl::StrCat(options_.name_prefix, i);
    auto cert = issue(c->name, {});
    if (!cert.ok()) return cert.status();
    auto creds = MakeChannelCredentials({options_.ca_dir + "/ca.crt", *cert, key_file, absl::ZeroDuration()});
    if (!creds.ok()) return creds.status();
    c->stub = v1::RegistryService::NewStub(CreateInternalChannel(options_.api_address, *creds, true));
    controllers_.push_back(std::move(c));
  }

  std::atomic<int> refused{0};
  std::mutex error_mu;
  std::string error;
  ClosedLoop(options_.count, 64, [&](int i) {
    Controller& c = *controllers_[i];
    v1::RegisterControllerRequest request;
    request.set_join_token(options_.join_token);
    request.set_name(c.name);
    request.set_type("hollow");
    const int endpoint = i % endpoints;
    request.set_endpoint(absl::StrCat(LoopbackIp(endpoint), ":", ports[endpoint / kControllersPerServer]));
    *request.mutable_capacity() = HollowCapacity(options_.gpus_each);
    v1::RegisterControllerResponse registered;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status s = c.stub->RegisterController(&ctx, request, &registered);
    if (!s.ok()) {
      if (refused++ == 0) {
        std::lock_guard<std::mutex> lock(error_mu);
        error = absl::StrCat("register ", c.name, ": ", s.error_message());
      }
      return false;
    }
    c.beat.set_controller_id(registered.controller_id());
    c.beat.set_controller_token(registered.controller_token());
    *c.beat.mutable_capacity() = request.capacity();
    // Holding nothing, and saying so, as a real controller does: the API server runs its full
    // reconciliation for every beat.
    c.beat.set_session_ids_complete(true);
    return true;
  });
  if (refused > 0) return absl::UnavailableError(absl::StrCat(refused.load(), " registrations failed; first: ", error));
  for (auto& c : controllers_) by_id_[c->beat.controller_id()] = c.get();
  return absl::OkStatus();
}

void HollowControllers::ReportRunning(const std::string& session_id, int gpus) {
  std::string controller_id;
  absl::Status looked_up = db_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params("SELECT coalesce(controller_id::text, '') FROM sessions WHERE id = $1::uuid",
                                    session_id);
    if (!r.empty()) controller_id = r[0][0].as<std::string>();
    return absl::OkStatus();
  });
  auto c = by_id_.find(controller_id);
  if (!looked_up.ok() || c == by_id_.end()) return;  // Its create then fails, and the scenario says so.
  v1::ReportSessionEventsRequest report;
  report.set_controller_id(c->second->beat.controller_id());
  report.set_controller_token(c->second->beat.controller_token());
  v1::SessionEvent* event = report.add_events();
  event->set_session_id(session_id);
  event->set_phase(v1::SESSION_PHASE_RUNNING);
  event->set_worker_id("hollow-worker");
  for (int g = 0; g < gpus; ++g) event->add_gpu_uuids(absl::StrCat("GPU-hollow-", g));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ReportSessionEventsResponse answer;
  (void)c->second->stub->ReportSessionEvents(&ctx, report, &answer);
}

void HollowControllers::Beat(Controller* c, absl::Time due) {
  c->ctx = std::make_unique<grpc::ClientContext>();
  c->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  c->response.Clear();
  ++in_flight_;
  c->stub->async()->Heartbeat(c->ctx.get(), &c->beat, &c->response, [this, c, due](grpc::Status s) {
    const absl::Time answered = absl::Now();
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(lags_mu_);
      lags_ms_.push_back(absl::ToDoubleMilliseconds(answered - due));
    } else {
      ++failures_;
    }
    {
      // The next beat is sent by the scheduler thread, which also frees this call's context:
      // not from inside the call's own callback.
      std::lock_guard<std::mutex> lock(ready_mu_);
      if (c->waiting.has_value()) {
        ready_.emplace_back(c, *c->waiting);
        c->waiting.reset();
      } else {
        c->in_flight = false;
      }
    }
    ready_cv_.notify_one();
    --in_flight_;
  });
}

void HollowControllers::Scheduler(absl::Duration interval) {
  const absl::Duration step = interval / std::max<size_t>(controllers_.size(), 1);
  const absl::Time start = absl::Now();
  for (int64_t k = 0;; ++k) {
    const absl::Time due = start + step * k;
    Controller* c = controllers_[k % controllers_.size()].get();
    std::unique_lock<std::mutex> lock(ready_mu_);
    // Until this beat falls due, send the ones that waited for their controller's last answer.
    while (true) {
      while (!ready_.empty()) {
        auto [waited, waited_due] = ready_.front();
        ready_.pop_front();
        lock.unlock();
        Beat(waited, waited_due);
        lock.lock();
      }
      if (stopping_) return;
      if (absl::Now() >= due) break;
      ready_cv_.wait_until(lock, absl::ToChronoTime(due));
    }
    if (c->in_flight) {
      if (!c->waiting.has_value()) c->waiting = due;  // Two behind: the older due time stands.
      continue;
    }
    c->in_flight = true;
    lock.unlock();
    Beat(c, due);
  }
}

void HollowControllers::StartHeartbeats(absl::Duration interval) {
  stopping_ = false;
  scheduler_ = std::thread([this, interval] { Scheduler(interval); });
}

void HollowControllers::StopHeartbeats() {
  {
    std::lock_guard<std::mutex> lock(ready_mu_);
    stopping_ = true;
  }
  ready_cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  // Let the calls in flight finish: their callbacks use the controllers.
  for (int waited = 0; in_flight_.load() > 0 && waited < 3000; ++waited) absl::SleepFor(absl::Milliseconds(10));
  std::lock_guard<std::mutex> lock(ready_mu_);
  ready_.clear();
  for (auto& c : controllers_) {
    c->in_flight = false;
    c->waiting.reset();
  }
}

std::vector<double> HollowControllers::TakeLagsMs() {
  std::lock_guard<std::mutex> lock(lags_mu_);
  return std::exchange(lags_ms_, {});
}

int64_t HollowControllers::TakeFailures() { return failures_.exchange(0); }

}  // namespace gantry::bench
