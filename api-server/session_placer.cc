#include "api-server/session_placer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "api-server/placement_resumer.h"
#include "common/request_ids.h"
#include "common/status.h"

namespace gantry::api {

absl::StatusOr<v1::Session> SessionPlacer::Place(v1::Session session, ControllerTarget target,
                                                 std::vector<ControllerTarget> others, absl::Time deadline,
                                                 bool acknowledged, PlacementRefusals* refusals) {
  for (;;) {
    NoteController(target.name);
    // Within the caller's deadline, so a controller that cannot be reached leaves time for the
    // next candidate.
    const absl::Duration left = TimeLeftToAnswer(deadline);
    auto response = client_->CreateSession(target.endpoint, StartRequestFor(session),
                                           left > absl::ZeroDuration() ? left : absl::Milliseconds(100));
    if (response.ok()) {
      // Taken. Its outcome (RUNNING, or FAILED with why) comes on the controller's event route,
      // and a delete that raced this start is settled there too (a report on a session that
      // ended is answered "stop it"): this answer is never stored.
      NoteWorker(response->worker_id());
      return session;
    }
    const absl::Status& refused = response.status();
    if (refused.code() == absl::StatusCode::kDeadlineExceeded) {
      // Not a refusal: the controller may have started the session and only its answer be
      // late (a busy node). The session is durable and its GPUs reserved, so it stays
      // SCHEDULED; PlacementResumer finishes it (CreateSession is idempotent on the
      // controller) on a retry with its request_id or in the health check leader's sweep,
      // which fails it if the controller stays silent. Failing it here would kill a process
      // the controller may be starting, and trying the next candidate could run it twice.
      return session;
    }
    if (refused.code() != absl::StatusCode::kResourceExhausted && refused.code() != absl::StatusCode::kUnavailable) {
      // Not a refusal another controller could fix: the session keeps the record of why.
      PhaseChange failed;
      failed.phase = v1::SESSION_PHASE_FAILED;
      failed.message = absl::StrCat("placement failed: ", refused.message());
      auto stored = sessions_->Transition(session.id(), failed);
      if (acknowledged) return stored;
      return Annotate(refused, absl::StrCat("session ", session.id(), " FAILED"));
    }
    // (Had an UNAVAILABLE controller started it after all, its next heartbeat lists it, and the
    // reconciliation there tells it to stop a session it is not placed on.)
    refusals->reasons.push_back(absl::StrCat(target.name, ": ", refused.message()));
    refusals->all_unavailable = refusals->all_unavailable && refused.code() == absl::StatusCode::kUnavailable;
    ASSIGN_OR_RETURN(bool moved, MoveToNext(&session, &target, &others, refusals));
    if (!moved) break;
  }
  refusals->taken_by_none = true;
  const std::string tried = absl::StrJoin(refusals->reasons, "; ");
  if (!acknowledged) {
    // Never acknowledged to anyone: remove it, which releases its reservation.
    RETURN_IF_ERROR(sessions_->Discard(session.id()));
    return absl::Status(refusals->all_unavailable ? absl::StatusCode::kUnavailable
                                                  : absl::StatusCode::kResourceExhausted,
                        absl::StrCat("no controller tried would start it (tried ", tried, ")"));
  }
  PhaseChange failed;
  failed.phase = v1::SESSION_PHASE_FAILED;
  failed.message = absl::StrCat("no controller would start it (tried ", tried, "); create it again to retry");
  failed.only_from = v1::SESSION_PHASE_SCHEDULED;  // One that moved on meanwhile stays as it is.
  auto stored = sessions_->Transition(session.id(), failed);
  if (stored.status().code() == absl::StatusCode::kFailedPrecondition) return sessions_->Get(session.id());
  return stored;
}

absl::StatusOr<bool> SessionPlacer::MoveToNext(v1::Session* session, ControllerTarget* from,
                                               std::vector<ControllerTarget>* others, PlacementRefusals* refusals) {
  while (!others->empty()) {
    ControllerTarget next = others->front();
    others->erase(others->begin());
    Reservation reservation{next.id, absl::StrCat("placing on controller ", next.name, " after a refusal (",
                                                  refusals->reasons.back(), ")")};
    auto moved = sessions_->MoveReservation(*session, from->id, reservation);
    if (moved.status().code() == absl::StatusCode::kResourceExhausted) {
      refusals->reasons.push_back(absl::StrCat(next.name, ": ", moved.status().message()));
      refusals->all_unavailable = false;
      continue;  // Taken by a concurrent create since the candidates were listed.
    }
    if (!moved.ok()) return moved.status();
    *session = *std::move(moved);
    *from = std::move(next);
    return true;
  }
  return false;
}

}  // namespace gantry::api
