#include "api-server/session_stop.h"

#include "absl/strings/str_cat.h"

namespace gantry::api {

absl::StatusOr<v1::Session> StopOnController(SessionStore* sessions, ControllerStore* controllers,
                                             ControllerClient* client, const v1::Session& session,
                                             const std::string& message) {
  const std::string& id = session.id();
  if (!session.controller_id().empty()) {
    auto target = controllers->Get(session.controller_id());
    if (target.ok()) {
      auto stopped = client->DeleteSession(target->endpoint, id);
      if (!stopped.ok() && stopped.status().code() != absl::StatusCode::kNotFound) {
        return absl::UnavailableError(absl::StrCat("could not stop session ", id, " (", stopped.status().message(),
                                                   "); it stays TERMINATING: retry DeleteSession"));
      }
    }
  }
  PhaseChange terminated;
  terminated.phase = v1::SESSION_PHASE_TERMINATED;
  terminated.message = message;
  auto done = sessions->Transition(id, terminated);
  if (done.status().code() == absl::StatusCode::kFailedPrecondition) return sessions->Get(id);
  return done;
}

}  // namespace gantry::api
