// Finishes placements an API server replica left half done. A replica reserves a session's GPUs
// and stores it SCHEDULED before it asks the controller to start it; if the replica dies in
// between, or before it stores the answer, the session stays SCHEDULED although its client may
// have been told about it (a retry with the same request_id finds it). Resuming asks the same
// controller again: CreateSession is idempotent there (a session it already holds is answered
// with its state, never started twice), so resuming is safe even while the first replica is
// still waiting for its answer.
//
// Used by SessionManager when a retried create finds its session SCHEDULED, and by the health
// check leader for sessions left SCHEDULED past the controller call timeout.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/session_store.h"

namespace gantry::api {

// What a call serving a client whose deadline is `deadline` has left to wait on others: a
// second is kept for the reply's way back. InfiniteDuration without a deadline; not positive
// once too late.
inline absl::Duration TimeLeftToAnswer(absl::Time deadline) { return deadline - absl::Seconds(1) - absl::Now(); }

// The request that asks a session's controller to start it.
v1::ControllerCreateSessionRequest StartRequestFor(const v1::Session& session);

// What a controller's answer about a session changes in PostgreSQL.
PhaseChange FromControllerAnswer(const v1::ControllerSessionResponse& answer, const std::string& controller_id);

// Stores a controller's answer to CreateSession for `session_id` on `controller_id`. The
// controller reports this outcome only through that answer, so storing it retries through a
// PostgreSQL outage for up to `patience`. If the controller's pushed events got there first,
// the newer stored state is returned.
absl::StatusOr<v1::Session> StoreControllerAnswer(SessionStore* sessions, const std::string& session_id,
                                                  const std::string& controller_id,
                                                  const v1::ControllerSessionResponse& answer,
                                                  absl::Duration patience);

class PlacementResumer {
 public:
  // `call_timeout`: how long the controller may take (zero: the client's own call timeout).
  PlacementResumer(SessionStore* sessions, ControllerStore* controllers, ControllerClient* client,
                   absl::Duration call_timeout, absl::Duration store_patience)
      : sessions_(sessions),
        controllers_(controllers),
        client_(client),
        call_timeout_(call_timeout),
        store_patience_(store_patience) {}

  // Asks the controller `session` is reserved on to start it, and stores the answer. Writes
  // nothing unless the controller accepted: the controller's refusal (or the reason it could
  // not be asked) is returned for the caller to decide on. A client's retried create passes its
  // own deadline: the call and the storing then end a second before it (the reply's way back),
  // whatever the configured timeout and patience, so the retry is answered, not timed out.
  absl::StatusOr<v1::Session> Resume(const v1::Session& session, absl::Time deadline = absl::InfiniteFuture());

 private:
  SessionStore* sessions_;
  ControllerStore* controllers_;
  ControllerClient* client_;
  absl::Duration call_timeout_;
  absl::Duration store_patience_;
};

}  // namespace gantry::api
