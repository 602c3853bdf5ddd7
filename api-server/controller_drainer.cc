#include "api-server/controller_drainer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::api {
namespace {
// Sessions stopped at once: each stop is a controller call and two writes; a few in parallel
// drain a busy node in seconds without flooding its controller.
constexpr int kParallelStops = 8;
// Sessions one call looks at; a drain of more goes on at the next call.
constexpr int kMaxPerCall = 10000;
}  // namespace

absl::StatusOr<v1::DrainControllerResponse> ControllerDrainer::Drain(const Caller& caller, const std::string& id,
                                                                      absl::Time deadline) {
  ASSIGN_OR_RETURN(v1::Controller controller, admin_->SetCordoned(id, true));
  ASSIGN_OR_RETURN(std::vector<std::string> live, store_->LiveSessionIdsOn(controller.id(), kMaxPerCall));
  std::atomic<size_t> next{0};
  std::atomic<int> stopped{0};
  auto stop_some = [&] {
    for (size_t i; absl::Now() < deadline && (i = next++) < live.size();) {
      auto done = sessions_->Delete(caller, live[i]);
      if (done.ok() && IsTerminal(done->phase())) ++stopped;
    }
  };
  std::vector<std::thread> stoppers;
  for (int t = 0; t < std::min<int>(kParallelStops, static_cast<int>(live.size())); ++t) stoppers.emplace_back(stop_some);
  for (auto& t : stoppers) t.join();
  ASSIGN_OR_RETURN(int remaining, store_->LiveSessionsOn(controller.id()));
  spdlog::info("controller {} draining: {} session(s) stopped by {}, {} left", controller.name(), stopped.load(),
               caller.principal, remaining);
  v1::DrainControllerResponse response;
  *response.mutable_controller() = std::move(controller);
  response.set_remaining_sessions(remaining);
  response.set_stopped_sessions(stopped.load());
  return response;
}

}  // namespace gantry::api
