#include "controller/log_relay.h"

#include "absl/strings/str_cat.h"
#include "common/tokens.h"

namespace gantry::controller {

std::string LogRelay::Open(const std::string& worker_name) {
  std::lock_guard<std::mutex> lock(mu_);
  // Unguessable, so one worker cannot inject lines into another's stream by guessing ids.
  std::string id = absl::StrCat("logs-", ++next_id_, "-", RandomToken(12));
  streams_[id].worker = worker_name;
  return id;
}

void LogRelay::Close(const std::string& stream_id) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream_id);
}

void LogRelay::Deliver(const std::string& worker_name, const v1::WorkerLogLines& batch) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(batch.stream_id());
    if (it == streams_.end() || it->second.worker != worker_name || !it->second.failure.ok()) return;
    if (static_cast<int>(it->second.batches.size()) >= window_) {
      it->second.failure = absl::ResourceExhaustedError(
          "the worker sent log batches beyond its credit; stream closed");
      it->second.batches.clear();
    } else {
      it->second.batches.push_back(batch);
    }
  }
  cv_.notify_all();
}

void LogRelay::WorkerLost(const std::string& worker_name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, s] : streams_) {
      if (s.worker == worker_name && s.failure.ok()) {
        s.failure = absl::UnavailableError(
            absl::StrCat("worker ", worker_name, " disconnected while streaming logs"));
      }
    }
  }
  cv_.notify_all();
}

absl::StatusOr<std::optional<v1::WorkerLogLines>> LogRelay::Next(const std::string& stream_id,
                                                                 absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] {
    auto it = streams_.find(stream_id);
    return it == streams_.end() || !it->second.batches.empty() || !it->second.failure.ok();
  };
  cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), ready);
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return absl::CancelledError("log stream closed");
  if (!it->second.batches.empty()) {
    v1::WorkerLogLines batch = std::move(it->second.batches.front());
    it->second.batches.pop_front();
    return std::optional<v1::WorkerLogLines>(std::move(batch));
  }
  if (!it->second.failure.ok()) return it->second.failure;
  return std::optional<v1::WorkerLogLines>();
}

size_t LogRelay::open_streams() {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

}  // namespace gantry::controller
