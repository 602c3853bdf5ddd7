// A session's row and its phase changes, inside a transaction the caller owns: what
// SessionStore and ControllerEventStore share, so a phase change is written one way whichever
// route it came by.
#pragma once

#include <pqxx/row>
#include <pqxx/transaction>
#include <pqxx/transaction_base>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "api-server/session_store.h"  // PhaseChange
#include "gantry/v1/session_service.pb.h"

namespace gantry::api {

// A row with select_session.sql's columns (conditions included).
absl::StatusOr<v1::Session> RowToSession(const pqxx::row& row);

// NOT_FOUND if there is no such session.
absl::StatusOr<v1::Session> ReadSession(pqxx::transaction_base& tx, const std::string& id);

// Writes `change` over `current` (as read in this transaction or before): the phase, the
// placement fields the change sets, and its session_events row, if the row is still at
// current.version() (optimistic concurrency). The session as now stored; nullopt when someone
// changed it since `current` was read, and nothing was written: re-read and decide again. The
// caller has checked that the state machine allows the move.
absl::StatusOr<std::optional<v1::Session>> WritePhaseChange(pqxx::work& tx, const v1::Session& current,
                                                            const PhaseChange& change);

}  // namespace gantry::api
