// Finishes placements an API server replica left half done. A replica reserves a session's GPUs
// and stores it SCHEDULED before it asks the controller to start it; if the replica dies in
// between, or the controller's answer is late, the session stays SCHEDULED although its client
// may have been told about it (a retry with the same request_id finds it). Resuming asks the
// same controller again: CreateSession is idempotent there (a session it already holds is
// answered with its state and reported again on the event route, never started twice), so
// resuming is safe even while the first replica is still waiting for its answer.
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

class PlacementResumer {
 public:
  // `call_timeout`: how long the controller may take (zero: the client's own call timeout).
  PlacementResumer(ControllerStore* controllers, ControllerClient* client, absl::Duration call_timeout)
      : controllers_(controllers), client_(client), call_timeout_(call_timeout) {}

  // Asks the controller `session` is reserved on to start it, and returns `session` once it
  // took it (its outcome follows on the event route). Writes nothing: the controller's refusal
  // (or the reason it could not be asked) is returned for the caller to decide on. A client's
  // retried create passes its own deadline: the call then ends a second before it (the reply's
  // way back), whatever the configured timeout, so the retry is answered, not timed out.
  absl::StatusOr<v1::Session> Resume(const v1::Session& session, absl::Time deadline = absl::InfiniteFuture());

 private:
  ControllerStore* controllers_;
  ControllerClient* client_;
  absl::Duration call_timeout_;
};

}  // namespace gantry::api
