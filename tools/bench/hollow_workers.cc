#include "tools/bench/hollow_workers.h"

#include <grpcpp/client_context.h>

#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/worker_service.grpc.pb.h"

namespace gantry::bench {

struct HollowWorkers::Worker {
  std::string name;
  std::unique_ptr<v1::WorkerService::Stub> stub;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::ControllerMessage>> stream;
  std::mutex write_mu;
  std::atomic<bool> stopping{false};
  std::thread reader, heartbeats;
  v1::RegisterWorkerRequest registration;

  bool Write(const v1::WorkerMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream->Write(m);
  }
};

HollowWorkers::HollowWorkers(HollowWorkerOptions options) : options_(std::move(options)) {}

HollowWorkers::~HollowWorkers() {
  for (auto& w : workers_) {
    w->stopping = true;
    w->ctx.TryCancel();
  }
  for (auto& w : workers_) {
    if (w->heartbeats.joinable()) w->heartbeats.join();
    if (w->reader.joinable()) w->reader.join();
  }
}

absl::Status HollowWorkers::Start() {
  auto ca_cert = ReadFile(options_.ca_dir + "/ca.crt");
  auto ca_key = ReadFile(options_.ca_dir + "/ca.key");
  if (!ca_cert.ok() || !ca_key.ok()) return absl::NotFoundError("hollow workers: no CA in " + options_.ca_dir);
  for (int i = 0; i < options_.count; ++i) {
    auto w = std::make_unique<Worker>();
    w->name = absl::StrCat(options_.name_prefix, i);
    auto key = x509::NewPrivateKey();
    if (!key.ok()) return key.status();
    absl::Time now = absl::Now();
    x509::Leaf leaf{*x509::PublicKeyOf(*key), Identity{Role::kWorker, w->name}, {}, {}, now - absl::Minutes(1),
                    now + absl::Hours(24)};
    auto cert = x509::SignLeaf(leaf, *ca_cert, *ca_key);
    if (!cert.ok()) return cert.status();
    std::string prefix = absl::StrCat(options_.work_dir, "/", w->name);
    if (auto s = WriteFile(prefix + ".key", *key, 0600); !s.ok()) return s;
    if (auto s = WriteFile(prefix + ".crt", *cert, 0644); !s.ok()) return s;
    auto creds = MakeChannelCredentials({options_.ca_dir + "/ca.crt", prefix + ".crt", prefix + ".key", absl::ZeroDuration()});
    if (!creds.ok()) return creds.status();
    w->stub = v1::WorkerService::NewStub(CreateInternalChannel(options_.controller_address, *creds, true));

    w->registration.set_name(w->name);
    w->registration.set_max_sessions(100000);
    auto* hw = w->registration.mutable_hardware();
    hw->set_cpu_cores(64);
    hw->set_memory_bytes(int64_t{512} << 30);
    for (int g = 0; g < options_.gpus_each; ++g) {
      auto* gpu = hw->add_gpus();
      gpu->set_uuid(absl::StrCat("GPU-", w->name, "-", g));
      gpu->set_name("Hollow H100");
      gpu->set_index(g);
      gpu->set_memory_total_bytes(int64_t{80} << 30);
      gpu->set_memory_free_bytes(int64_t{80} << 30);
      gpu->set_simulated(true);
    }
    grpc::ClientContext reg_ctx;
    reg_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::RegisterWorkerResponse registered;
    grpc::Status s = w->stub->RegisterWorker(&reg_ctx, w->registration, &registered);
    if (!s.ok()) return absl::UnavailableError(absl::StrCat("register ", w->name, ": ", s.error_message()));
    w->stream = w->stub->Connect(&w->ctx);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(registered.worker_id());
    if (!w->Write(hello)) return absl::UnavailableError(absl::StrCat("connect ", w->name));
    int interval_ms = registered.heartbeat_interval_ms() > 0 ? registered.heartbeat_interval_ms() : 1000;

    Worker* raw = w.get();
    raw->heartbeats = std::thread([raw, interval_ms] {
      while (!raw->stopping.load()) {
        v1::WorkerMessage beat;
        for (const auto& g : raw->registration.hardware().gpus()) *beat.mutable_heartbeat()->add_gpus() = g;
        if (!raw->Write(beat)) return;
        for (int waited = 0; waited < interval_ms && !raw->stopping.load(); waited += 20) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
    raw->reader = std::thread([this, raw] {
      v1::ControllerMessage m;
      int64_t pid = 100000;
      while (raw->stream->Read(&m)) {
        v1::WorkerMessage reply;
        auto* event = reply.mutable_session_event();
        if (m.has_start_session()) {
          event->set_session_id(m.start_session().session_id());
          event->set_kind(v1::WorkerSessionEvent::KIND_STARTED);
          event->set_pid(++pid);
          starts_++;
        } else if (m.has_stop_session()) {
          event->set_session_id(m.stop_session().session_id());
          event->set_kind(v1::WorkerSessionEvent::KIND_EXITED);
          event->set_stop_requested(true);
          event->set_term_signal(15);
          stops_++;
        } else {
          continue;  // hollow: nothing else is answered
        }
        if (!raw->Write(reply)) break;
      }
    });
    workers_.push_back(std::move(w));
  }
  return absl::OkStatus();
}

}  // namespace gantry::bench
