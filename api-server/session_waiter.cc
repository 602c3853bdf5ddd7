#include "api-server/session_waiter.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace gantry::api {

absl::StatusOr<v1::Session> SessionWaiter::Until(const std::string& id,
                                                 const std::function<bool(const v1::Session&)>& reached,
                                                 absl::Time deadline) {
  // Subscribed before the first read, so no change can slip between the two.
  auto subscription = hub_->Subscribe(id);
  auto session = sessions_->Get(id);
  if (!subscription.ok()) return session;
  // Re-read now and then even without a notification (one lost with the hub's connection is
  // made up by waking everyone, but a safety net costs one read): not the mechanism.
  constexpr absl::Duration kRecheck = absl::Seconds(30);
  while (session.ok() && !reached(*session)) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    const bool changed = (*subscription)->Wait(std::min(left, kRecheck));
    if (!changed && absl::Now() >= deadline) break;
    auto again = sessions_->Get(id);
    // A re-read the database cannot answer in time (a wake at the edge of the caller's
    // deadline, whose database calls end with it) leaves the session as last read: the caller
    // gets that, not an outage it did not have.
    const auto code = again.status().code();
    if (code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded) break;
    session = std::move(again);
  }
  return session;
}

}  // namespace gantry::api
