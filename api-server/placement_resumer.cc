#include "api-server/placement_resumer.h"

#include "absl/strings/str_cat.h"

namespace gantry::api {

v1::ControllerCreateSessionRequest StartRequestFor(const v1::Session& session) {
  v1::ControllerCreateSessionRequest call;
  call.set_session_id(session.id());
  call.set_owner(session.owner());
  call.set_template_id(session.template_id());
  *call.mutable_spec() = session.spec();
  return call;
}

absl::StatusOr<v1::Session> PlacementResumer::Resume(const v1::Session& session, absl::Time deadline) {
  if (session.phase() != v1::SESSION_PHASE_SCHEDULED) {
    return absl::FailedPreconditionError(absl::StrCat("session ", session.id(), " is not SCHEDULED"));
  }
  auto target = controllers_->Get(session.controller_id());
  if (!target.ok()) return target.status();
  const absl::Duration left = TimeLeftToAnswer(deadline);
  if (left <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("no time left to ask the controller before the call's deadline");
  }
  // The configured timeout (zero: the client's own), cut to what the caller has left.
  absl::Duration call_timeout = call_timeout_;
  if (left != absl::InfiniteDuration() && (call_timeout == absl::ZeroDuration() || call_timeout > left)) {
    call_timeout = left;
  }
  auto answer = client_->CreateSession(target->endpoint, StartRequestFor(session), call_timeout);
  if (!answer.ok()) return answer.status();
  // Taken, or held already: the controller reports its state on the event route (again, if it
  // held it), which is what moves it on in PostgreSQL.
  return session;
}

}  // namespace gantry::api
