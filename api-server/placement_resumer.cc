#include "api-server/placement_resumer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace gantry::api {

PhaseChange FromControllerAnswer(const v1::ControllerSessionResponse& answer, const std::string& controller_id) {
  PhaseChange change;
  change.phase = answer.phase();
  change.message = answer.message();
  change.controller_id = controller_id;
  change.worker_id = answer.worker_id();
  change.node_id = answer.node_id();
  change.gpu_uuids = std::vector<std::string>(answer.gpu_uuids().begin(), answer.gpu_uuids().end());
  change.url = answer.url();
  return change;
}

absl::StatusOr<v1::Session> StoreControllerAnswer(SessionStore* sessions, const std::string& session_id,
                                                  const std::string& controller_id,
                                                  const v1::ControllerSessionResponse& answer,
                                                  absl::Duration patience) {
  const PhaseChange change = FromControllerAnswer(answer, controller_id);
  const absl::Time give_up = absl::Now() + patience;  // the first attempt counts too
  auto placed = sessions->Transition(session_id, change);
  while (placed.status().code() == absl::StatusCode::kUnavailable && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(200));
    placed = sessions->Transition(session_id, change);
  }
  // The controller's pushed events can overtake its answer; then the stored state is newer.
  if (placed.status().code() == absl::StatusCode::kFailedPrecondition) return sessions->Get(session_id);
  return placed;
}

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
  const absl::Duration patience = std::clamp(TimeLeftToAnswer(deadline), absl::ZeroDuration(), store_patience_);
  return StoreControllerAnswer(sessions_, session.id(), target->id, *answer, patience);
}

}  // namespace gantry::api
