// The normal stop path of a TERMINATING session, whoever asked for it (a delete, a
// preemption): its controller stops the process (SIGTERM, the spec's grace, SIGKILL) and the
// session is stored TERMINATED. Blocking.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/session_store.h"

namespace gantry::api {

// Stops `session` (TERMINATING) on its controller, if it has one, and stores it TERMINATED with
// `message`. UNAVAILABLE, the session left TERMINATING, when its controller could not be asked:
// a retry (or the placement sweep, for a controller that is gone) finishes it. A session that
// moved on meanwhile (ended by its controller) is returned as stored.
absl::StatusOr<v1::Session> StopOnController(SessionStore* sessions, ControllerStore* controllers,
                                             ControllerClient* client, const v1::Session& session,
                                             const std::string& message);

}  // namespace gantry::api
