// Waits for a session's stored state to reach a condition: the changes a controller reports on
// the event route land in PostgreSQL through whichever replica it reaches, and this replica
// hears of them from SessionWatchHub's notifications, so a caller that wants the outcome in
// its answer (a create with wait_for_running, a hibernate, a wake) waits for that, not for a
// controller's answer. No polling: it reads once per notification. Thread-safe; blocking.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/session_store.h"
#include "api-server/session_watch_hub.h"

namespace gantry::api {

class SessionWaiter {
 public:
  SessionWaiter(SessionWatchHub* hub, SessionStore* sessions) : hub_(hub), sessions_(sessions) {}

  // The session as stored once `reached` holds for it, or as last read when `deadline` passes
  // first or a re-read finds the database not answering in time (the first read's error is
  // returned as it is). With every watch slot of the hub taken, the session as it is now.
  absl::StatusOr<v1::Session> Until(const std::string& id, const std::function<bool(const v1::Session&)>& reached,
                                    absl::Time deadline);

 private:
  SessionWatchHub* hub_;
  SessionStore* sessions_;
};

}  // namespace gantry::api
