#include "worker/controller_connection.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "worker/command_queue.h"
#include "worker/process_metrics.h"

namespace gantry::worker {

ControllerConnection::ControllerConnection(ConnectionConfig config, Redialer* controller)
    : config_(std::move(config)), controller_(controller) {}

ControllerConnection::~ControllerConnection() { Stop(); }

void ControllerConnection::Start() { thread_ = std::thread([this] { Loop(); }); }

void ControllerConnection::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ControllerConnection::Stream* ControllerConnection::CurrentStream() {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_;
}

bool ControllerConnection::Write(const v1::WorkerMessage& message) {
  std::lock_guard<std::mutex> write(write_mu_);
  Stream* stream = CurrentStream();
  return stream != nullptr && stream->Write(message);
}

void ControllerConnection::Send(const v1::WorkerSessionEvent& event) {
  if (event.kind() == v1::WorkerSessionEvent::KIND_STARTED) {
    // A first sample of the new process now, not up to a metrics interval later: until then
    // GetSessionMetrics can only say "never sampled".
    std::lock_guard<std::mutex> lock(mu_);
    sample_soon_ = true;
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> write(write_mu_);
  if (Stream* stream = CurrentStream(); stream != nullptr) {
    v1::WorkerMessage message;
    *message.mutable_session_event() = event;
    if (stream->Write(message)) return;
  }
  if (pending_.size() >= config_.max_pending_events) pending_.pop_front();
  pending_.push_back(event);
}

void ControllerConnection::SetSkills(const std::vector<std::string>& skills,
                                     const std::vector<v1::ModelInfo>& models) {
  std::lock_guard<std::mutex> lock(mu_);
  skills_ = skills;
  models_ = models;
}

bool ControllerConnection::SendLogs(const v1::WorkerLogLines& batch) {
  v1::WorkerMessage message;
  *message.mutable_logs() = batch;
  return Write(message);
}

bool ControllerConnection::SendInvokeOutput(const v1::WorkerInvokeOutput& output) {
  v1::WorkerMessage message;
  *message.mutable_invoke_output() = output;
  return Write(message);
}

void ControllerConnection::Loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    int32_t heartbeat_ms = 0;
    absl::Time started = absl::Now();
    RunStream(&heartbeat_ms);
    // A stream that lived a while was healthy: start the backoff over.
    if (absl::Now() - started > absl::Seconds(10)) controller_->Recovered();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoMilliseconds(controller_->Backoff()), [&] { return stopping_; });
  }
}

void ControllerConnection::RunStream(int32_t* heartbeat_ms) {
  controller_->Redial();  // Every attempt on a fresh channel.
  std::shared_ptr<grpc::Channel> channel = controller_->Channel();
  if (channel == nullptr) return;  // No credentials to offer now: the next attempt asks again.
  auto stub = v1::WorkerService::NewStub(channel);
  v1::RegisterWorkerResponse registered;
  {
    v1::RegisterWorkerRequest registration = config_.registration;
    {
      std::lock_guard<std::mutex> lock(mu_);
      registration.clear_skills();
      for (const auto& k : skills_) registration.add_skills(k);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::Status s = stub->RegisterWorker(&ctx, registration, &registered);
    if (!s.ok()) {
      spdlog::warn("register with controller at {}: {} (code {})", config_.controller_url,
                   s.error_message(), static_cast<int>(s.error_code()));
      return;
    }
  }
  *heartbeat_ms = registered.heartbeat_interval_ms() > 0 ? registered.heartbeat_interval_ms() : 1000;

  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream = stub->Connect(&ctx);
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(registered.worker_id());
  for (auto& r : runner_->Running()) *hello.mutable_hello()->add_sessions() = std::move(r);
  if (!stream->Write(hello)) {
    spdlog::warn("connect: {}", stream->Finish().error_message());
    return;
  }
  {
    // Under write_mu_ throughout, so no new event overtakes the ones kept while disconnected.
    std::lock_guard<std::mutex> write(write_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) {
        ctx.TryCancel();
      }
      context_ = &ctx;
      stream_ = stream.get();
    }
    // Everything that happened while disconnected, in order.
    while (!pending_.empty()) {
      v1::WorkerMessage message;
      *message.mutable_session_event() = pending_.front();
      if (!stream->Write(message)) break;
      pending_.pop_front();
    }
  }
  spdlog::info("connected to controller at {} as {} ({} running session(s) re-reported)",
               config_.controller_url, registered.worker_id(), hello.hello().sessions_size());

  std::atomic<bool> stream_done{false};
  std::thread heartbeats([&] {
    ProcessMetrics metrics;
    absl::Time next_metrics = absl::Now();
    while (!stream_done.load()) {
      v1::WorkerMessage beat;
      beat.mutable_heartbeat()->set_active_sessions(runner_->active());
      if (invokes_ != nullptr) beat.mutable_heartbeat()->set_active_invokes(invokes_->active());
      if (config_.gpu_source) {
        for (auto& g : config_.gpu_source()) *beat.mutable_heartbeat()->add_gpus() = std::move(g);
      } else {
        for (const auto& g : config_.registration.hardware().gpus()) *beat.mutable_heartbeat()->add_gpus() = g;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& k : skills_) beat.mutable_heartbeat()->add_skills(k);
        for (const auto& m : models_) *beat.mutable_heartbeat()->add_models() = m;
      }
      if (!Write(beat)) break;
      bool sample_now = absl::Now() >= next_metrics;
      {
        std::lock_guard<std::mutex> lock(mu_);
        sample_now = sample_now || std::exchange(sample_soon_, false);
      }
      if (sample_now) {
        next_metrics = absl::Now() + config_.metrics_interval;
        std::map<pid_t, int64_t> gpu_memory;
        if (config_.gpu_memory_by_pid) gpu_memory = config_.gpu_memory_by_pid();
        for (const auto& [session, usage] : metrics.Sample(runner_->Groups(), gpu_memory)) {
          v1::WorkerMessage m;
          m.mutable_metrics()->set_session_id(session);
          *m.mutable_metrics()->mutable_usage() = usage;
          if (!Write(m)) break;
        }
      }
      std::unique_lock<std::mutex> lock(mu_);
      absl::Duration wait = std::min(absl::Milliseconds(*heartbeat_ms), next_metrics - absl::Now());
      cv_.wait_for(lock, absl::ToChronoMilliseconds(std::max(wait, absl::Milliseconds(10))),
                   [&] { return stopping_ || stream_done.load() || sample_soon_; });
    }
  });

  {
    // Acted on off this thread (command_queue.h), in order within each session's lane, so this
    // thread is back in Read at once and the connection is always read, pings included. Leaving
    // this scope runs every command received before the stream ended.
    CommandQueue commands;
    v1::ControllerMessage command;
    while (stream->Read(&command)) {
      if (ExecuteInvokeCommand(command)) {
        command.Clear();
        continue;
      }
      const size_t bytes = command.ByteSizeLong();
      std::string lane = SessionLane(command);
      commands.Push(std::move(lane), [this, c = std::move(command)] { Execute(c); }, bytes);
      command.Clear();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    context_ = nullptr;
  }
  {
    // No write may still be using the stream once it is finished and freed below. One blocked
    // on a controller that stopped reading is ended now rather than when the transport gives up.
    std::unique_lock<std::mutex> write(write_mu_, std::try_to_lock);
    if (!write.owns_lock()) {
      ctx.TryCancel();
      write.lock();
    }
  }
  // The controller's end of every log stream is gone with the stream.
  if (logs_ != nullptr) logs_->CancelAll();
  if (invokes_ != nullptr) invokes_->CancelAll();  // So is every request's client.
  stream_done = true;
  cv_.notify_all();
  heartbeats.join();
  grpc::Status status = stream->Finish();
  spdlog::warn("stream to controller ended: {} (code {}); reconnecting", status.error_message(),
               static_cast<int>(status.error_code()));
}

bool ControllerConnection::ExecuteInvokeCommand(const v1::ControllerMessage& command) {
  if (invokes_ == nullptr) return false;
  switch (command.msg_case()) {
    case v1::ControllerMessage::kInvoke:
      invokes_->Start(command.invoke());
      return true;
    case v1::ControllerMessage::kInvokeCredit:
      invokes_->AddCredit(command.invoke_credit().invoke_id(), command.invoke_credit().credit(),
                          command.invoke_credit().credit_bytes());
      return true;
    case v1::ControllerMessage::kCancelInvoke:
      invokes_->Cancel(command.cancel_invoke().invoke_id());
      return true;
    case v1::ControllerMessage::kDrain:
      // Here, so every invoke read after it sees it; the sessions' part keeps the queue's order.
      invokes_->SetDraining(!command.drain().resume());
      return false;
    default:
      return false;
  }
}

std::string ControllerConnection::SessionLane(const v1::ControllerMessage& command) {
  // A session's own lifecycle commands; everything else (logs, invokes, drain) keeps the
  // stream's order with all of them, as when one thread ran every command.
  switch (command.msg_case()) {
    case v1::ControllerMessage::kStartSession:
      return command.start_session().session_id();
    case v1::ControllerMessage::kStopSession:
      return command.stop_session().session_id();
    case v1::ControllerMessage::kHibernateSession:
      return command.hibernate_session().session_id();
    case v1::ControllerMessage::kWakeSession:
      return command.wake_session().session_id();
    default:
      return "";
  }
}

void ControllerConnection::Execute(const v1::ControllerMessage& command) {
  switch (command.msg_case()) {
    case v1::ControllerMessage::kStartSession:
      runner_->Start(command.start_session());
      break;
    case v1::ControllerMessage::kStopSession:
      runner_->Stop(command.stop_session());
      break;
    case v1::ControllerMessage::kHibernateSession:
      runner_->Hibernate(command.hibernate_session().session_id());
      break;
    case v1::ControllerMessage::kWakeSession:
      runner_->Wake(command.wake_session().session_id());
      break;
    case v1::ControllerMessage::kStreamLogs:
      if (logs_ != nullptr) logs_->Start(command.stream_logs());
      break;
    case v1::ControllerMessage::kLogCredit:
      if (logs_ != nullptr) logs_->AddCredit(command.log_credit().stream_id(), command.log_credit().credit());
      break;
    case v1::ControllerMessage::kCancelLogs:
      if (logs_ != nullptr) logs_->Cancel(command.cancel_logs().stream_id());
      break;
    case v1::ControllerMessage::kInvoke:
    case v1::ControllerMessage::kInvokeCredit:
    case v1::ControllerMessage::kCancelInvoke:
      break;  // Only here when this worker serves no capabilities (ExecuteInvokeCommand).
    case v1::ControllerMessage::kDrain:
      spdlog::info(command.drain().resume() ? "drain over: taking new sessions and invokes again"
                                            : "draining: no new sessions or invokes; running ones carry on");
      runner_->SetDraining(!command.drain().resume());  // The invokes' part ran as it was read.
      break;
    default:
      spdlog::warn("controller sent a command this worker does not handle yet ({})",
                   static_cast<int>(command.msg_case()));
  }
}

bool ControllerConnection::connected() {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_ != nullptr;
}

}  // namespace gantry::worker
