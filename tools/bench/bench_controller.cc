#include "tools/bench/bench_controller.h"

#include <grpcpp/server_context.h>

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "common/tls.h"

namespace gantry::bench {

class BenchController::Service final : public v1::WorkerService::Service {
 public:
  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override {
    response->set_worker_id(absl::StrCat("bench/", request->name()));
    response->set_heartbeat_interval_ms(1000);
    return grpc::Status::OK;
  }

  grpc::Status Connect(grpc::ServerContext* ctx,
                       grpc::ServerReaderWriter<v1::ControllerMessage, v1::WorkerMessage>* stream) override {
    v1::WorkerMessage message;
    if (!stream->Read(&message) || !message.has_hello()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "hello");
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream_ = stream;
    }
    changed_.notify_all();
    while (stream->Read(&message)) {
      if (!message.has_session_event()) continue;  // heartbeats, metrics, logs
      const auto& event = message.session_event();
      std::lock_guard<std::mutex> lock(mu_);
      reports_[event.session_id()] = event.kind();
      changed_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    (void)ctx;
    return grpc::Status::OK;
  }

  bool WaitForWorker(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return stream_ != nullptr; });
  }

  // Sends `command` and waits until the session's report is one of `kinds`.
  bool SendAndWait(const std::string& session_id, const v1::ControllerMessage& command,
                   std::initializer_list<v1::WorkerSessionEvent::Kind> kinds, v1::WorkerSessionEvent::Kind wanted,
                   absl::Duration timeout) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stream_ == nullptr) return false;
      reports_.erase(session_id);
      // One writer at a time on the stream; Connect's thread only reads.
      std::lock_guard<std::mutex> write(write_mu_);
      if (!stream_->Write(command)) return false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    bool reported = changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
      auto it = reports_.find(session_id);
      return it != reports_.end() && std::find(kinds.begin(), kinds.end(), it->second) != kinds.end();
    });
    return reported && reports_[session_id] == wanted;
  }

 private:
  std::mutex mu_;
  std::mutex write_mu_;
  std::condition_variable changed_;
  grpc::ServerReaderWriter<v1::ControllerMessage, v1::WorkerMessage>* stream_ = nullptr;
  std::map<std::string, v1::WorkerSessionEvent::Kind> reports_;
};

BenchController::BenchController(testing::Pki& pki) : service_(std::make_unique<Service>()) {
  const std::string prefix = pki.Issue("controller", "bench-controller");
  auto creds = MakeServerCredentials({pki.ca(), prefix + ".crt", prefix + ".key", absl::ZeroDuration()},
                                     ClientCertPolicy::kRequire);
  if (!creds.ok()) throw std::runtime_error(creds.status().ToString());
  auto running = StartGrpcServer("127.0.0.1:0", *creds, {service_.get()});
  if (!running.ok()) throw std::runtime_error(running.status().ToString());
  server_ = std::move(*running);
}

BenchController::~BenchController() {
  if (server_.server != nullptr) server_.server->Shutdown(std::chrono::system_clock::now());
}

std::string BenchController::address() const { return absl::StrCat("127.0.0.1:", server_.port); }

bool BenchController::WaitForWorker(absl::Duration timeout) { return service_->WaitForWorker(timeout); }

bool BenchController::Start(const std::string& session_id, const v1::SessionSpec& spec, absl::Duration timeout) {
  v1::ControllerMessage command;
  command.mutable_start_session()->set_session_id(session_id);
  *command.mutable_start_session()->mutable_spec() = spec;
  return service_->SendAndWait(session_id, command,
                               {v1::WorkerSessionEvent::KIND_STARTED, v1::WorkerSessionEvent::KIND_START_FAILED},
                               v1::WorkerSessionEvent::KIND_STARTED, timeout);
}

bool BenchController::Stop(const std::string& session_id, absl::Duration timeout) {
  v1::ControllerMessage command;
  command.mutable_stop_session()->set_session_id(session_id);
  command.mutable_stop_session()->set_grace_period_ms(1000);
  return service_->SendAndWait(session_id, command, {v1::WorkerSessionEvent::KIND_EXITED},
                               v1::WorkerSessionEvent::KIND_EXITED, timeout);
}

}  // namespace gantry::bench
