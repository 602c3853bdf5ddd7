#include "controller/worker_pulse.h"

#include <algorithm>

namespace gantry::controller {

WorkerPulse::WorkerPulse(const std::vector<v1::GpuInfo>& gpus, std::vector<std::string> skills, absl::Time now,
                         absl::Duration overdue_after)
    : overdue_after_(overdue_after), last_beat_(now), skills_(std::move(skills)) {
  gpus_.reserve(gpus.size());
  for (const auto& g : gpus) gpus_.push_back({g.uuid(), g.memory_free_bytes(), g.utilization_percent()});
}

std::optional<std::vector<std::string>> WorkerPulse::Beat(const v1::WorkerHeartbeat& beat, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_beat_ > overdue_after_) gap_ended_ = now;
  last_beat_ = now;
  active_invokes_ = beat.active_invokes();
  // Live figures only for GPUs the worker registered: a heartbeat cannot add one.
  for (const auto& reported : beat.gpus()) {
    for (auto& g : gpus_) {
      if (g.uuid == reported.uuid()) {
        g.memory_free_bytes = reported.memory_free_bytes();
        g.utilization_percent = reported.utilization_percent();
      }
    }
  }
  // Skills follow the worker's models directory.
  if (std::equal(skills_.begin(), skills_.end(), beat.skills().begin(), beat.skills().end())) return std::nullopt;
  skills_.assign(beat.skills().begin(), beat.skills().end());
  return skills_;
}

void WorkerPulse::Restart(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  last_beat_ = now;
  gap_ended_ = absl::InfinitePast();  // A new stream: what the old one carried late is moot.
}

absl::Time WorkerPulse::deadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_beat_ + overdue_after_;
}

bool WorkerPulse::WentSilent(absl::Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (now - last_beat_ > overdue_after_) return true;
  return last_beat_ - gap_ended_ < overdue_after_;
}

absl::Time WorkerPulse::last_beat() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_beat_;
}

int WorkerPulse::active_invokes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return active_invokes_;
}

void WorkerPulse::CopyLiveFigures(std::vector<v1::GpuInfo>& gpus) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < gpus.size() && i < gpus_.size(); ++i) {
    gpus[i].set_memory_free_bytes(gpus_[i].memory_free_bytes);
    gpus[i].set_utilization_percent(gpus_[i].utilization_percent);
  }
}

}  // namespace gantry::controller
