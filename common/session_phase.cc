#include "common/session_phase.h"

#include "absl/strings/str_cat.h"

namespace gantry {

using v1::SessionPhase;

absl::string_view PhaseName(SessionPhase phase) {
  switch (phase) {
    case v1::SESSION_PHASE_PENDING: return "PENDING";
    case v1::SESSION_PHASE_SCHEDULED: return "SCHEDULED";
    case v1::SESSION_PHASE_STARTING: return "STARTING";
    case v1::SESSION_PHASE_RUNNING: return "RUNNING";
    case v1::SESSION_PHASE_HIBERNATED: return "HIBERNATED";
    case v1::SESSION_PHASE_TERMINATING: return "TERMINATING";
    case v1::SESSION_PHASE_TERMINATED: return "TERMINATED";
    case v1::SESSION_PHASE_FAILED: return "FAILED";
    default: return "UNSPECIFIED";
  }
}

absl::StatusOr<SessionPhase> ParsePhase(absl::string_view name) {
  for (int p = v1::SESSION_PHASE_PENDING; p <= v1::SESSION_PHASE_FAILED; ++p) {
    auto phase = static_cast<SessionPhase>(p);
    if (PhaseName(phase) == name) return phase;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown session phase \"", name, "\""));
}

bool IsTerminal(SessionPhase phase) {
  return phase == v1::SESSION_PHASE_TERMINATED || phase == v1::SESSION_PHASE_FAILED;
}

bool IsLegalTransition(SessionPhase from, SessionPhase to) {
  if (IsTerminal(from)) return false;
  // Nothing moves to where it is (a duplicate report is not a change), except a placement that
  // a controller refused: SCHEDULED again, on the next controller (move_reservation.sql).
  if (from == to && to != v1::SESSION_PHASE_SCHEDULED) return false;
  if (from == v1::SESSION_PHASE_UNSPECIFIED || to == v1::SESSION_PHASE_UNSPECIFIED ||
      to == v1::SESSION_PHASE_PENDING) {
    return false;
  }
  switch (to) {
    case v1::SESSION_PHASE_FAILED:
    case v1::SESSION_PHASE_TERMINATED:
      return true;
    case v1::SESSION_PHASE_TERMINATING:
      return from != v1::SESSION_PHASE_TERMINATING;
    case v1::SESSION_PHASE_SCHEDULED:
      return from == v1::SESSION_PHASE_PENDING || from == v1::SESSION_PHASE_SCHEDULED;
    case v1::SESSION_PHASE_STARTING:
      return from == v1::SESSION_PHASE_PENDING || from == v1::SESSION_PHASE_SCHEDULED;
    case v1::SESSION_PHASE_RUNNING:
      return from == v1::SESSION_PHASE_PENDING || from == v1::SESSION_PHASE_SCHEDULED ||
             from == v1::SESSION_PHASE_STARTING || from == v1::SESSION_PHASE_HIBERNATED;
    case v1::SESSION_PHASE_HIBERNATED:
      return from == v1::SESSION_PHASE_RUNNING;
    default:
      return false;
  }
}

}  // namespace gantry
