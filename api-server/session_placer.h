// Starts a session whose GPUs are reserved on a controller: asks that controller to start it;
// when the controller refuses, moves the reservation to the next candidate and asks that one,
// until one takes it or none is left. What becomes of it once taken reaches PostgreSQL on the
// controller's event route (RegistryManager), never from the answer here. Runs on a create's
// own thread when its caller waits for RUNNING, and on the start pool's threads for a create
// acknowledged as soon as its reservation was durable. Thread-safe; blocking.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/session_store.h"

namespace gantry::api {

// Why the controllers tried did not take a session, in the order they were tried.
struct PlacementRefusals {
  std::vector<std::string> reasons;  // "NAME: why"
  bool all_unavailable = true;       // Every one unreachable: an outage to retry, not a full fleet.
  bool taken_by_none = false;        // Set by Place when no candidate was left to try.
};

class SessionPlacer {
 public:
  SessionPlacer(SessionStore* sessions, ControllerClient* client) : sessions_(sessions), client_(client) {}

  // `session` is SCHEDULED and reserved on `target`; `others` are the candidates it may move
  // to, in order. Returns the session, SCHEDULED on the controller that took it (or whose
  // answer is late: PlacementResumer asks it again); FAILED when a controller failed it for a
  // reason no other controller could fix. When every controller refuses (RESOURCE_EXHAUSTED
  // or UNAVAILABLE), `refusals->taken_by_none` is set and:
  // - `acknowledged` (its client was told about it): the session becomes FAILED with the
  //   reasons, which releases its reservation, and is returned;
  // - not acknowledged: it is removed, with nothing left written, and the status is
  //   RESOURCE_EXHAUSTED (UNAVAILABLE when every one was unreachable) for the caller to word.
  // Controller calls end a second before `deadline` (the reply's way back).
  absl::StatusOr<v1::Session> Place(v1::Session session, ControllerTarget target,
                                    std::vector<ControllerTarget> others, absl::Time deadline, bool acknowledged,
                                    PlacementRefusals* refusals);

 private:
  // Moves `session` from `from` to the first of `others` with room (removed from `others` as
  // tried). False, with `session` unchanged, when none has; an error when PostgreSQL failed
  // or the session moved on meanwhile.
  absl::StatusOr<bool> MoveToNext(v1::Session* session, ControllerTarget* from, std::vector<ControllerTarget>* others,
                                  PlacementRefusals* refusals);

  SessionStore* sessions_;
  ControllerClient* client_;
};

}  // namespace gantry::api
