// The session state machine, shared by the API server (which stores phases) and the controller
// (which reports them). Every phase change in Gantry goes through IsLegalTransition.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "gantry/v1/types.pb.h"

namespace gantry {

// "RUNNING" for SESSION_PHASE_RUNNING: the form stored in PostgreSQL.
absl::string_view PhaseName(v1::SessionPhase phase);
absl::StatusOr<v1::SessionPhase> ParsePhase(absl::string_view name);

bool IsTerminal(v1::SessionPhase phase);

// PENDING -> SCHEDULED -> STARTING -> RUNNING <-> HIBERNATED; any live phase -> TERMINATING,
// TERMINATED or FAILED; skipping forward along the start path is allowed (a placement can
// report RUNNING directly); SCHEDULED -> SCHEDULED re-places on another controller after a
// refusal. Nothing leaves TERMINATED or FAILED.
bool IsLegalTransition(v1::SessionPhase from, v1::SessionPhase to);

}  // namespace gantry
