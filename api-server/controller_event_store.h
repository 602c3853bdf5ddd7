// The API server's end of the one event route: applies a part of a controller's ordered,
// numbered event stream in one transaction, in order, each change with optimistic concurrency
// on the session's version, and records the last sequence applied in the same transaction.
// So a part sent twice (its answer lost, or a retry reaching another replica) applies nothing
// twice, and a controller resends from the first sequence not acknowledged. One commit for a
// whole part: a burst of sessions reaching RUNNING is stored at the disk's pace, not one
// transaction each. Thread-safe; blocking.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api-server/session_store.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct ReportedChange {
  std::string session_id;
  uint64_t sequence = 0;  // 0: not numbered (applied whenever it comes)
  PhaseChange change;
};

// What to do with a reported change to a session as stored now.
enum class ReportVerdict {
  kApply,
  kIgnore,  // Stale or not the controller's to report; counted as applied.
  kStop,    // Ignored, and the controller is told to stop the session's process.
};
using ReportJudge = std::function<ReportVerdict(const v1::Session& stored, const ReportedChange& reported)>;

struct AppliedReports {
  uint64_t applied_through = 0;               // The last sequence now recorded (0: not numbered).
  std::vector<std::string> sessions_to_stop;  // Judged kStop, or unknown here.
  std::vector<v1::Session> applied;           // The sessions as stored after each applied change.
};

class ControllerEventStore {
 public:
  explicit ControllerEventStore(PgPool* pool) : pool_(pool) {}

  // Applies `changes` (in sequence order) reported by `controller_id` on `stream_id`. Changes
  // at or below the sequence already recorded for that stream are skipped; a new stream_id (the
  // controller restarted) starts from nothing. An empty stream_id applies every change and
  // records nothing. `judge` decides each change against the session as stored, re-asked after
  // a concurrent write. All or nothing: on an error nothing is applied or recorded.
  absl::StatusOr<AppliedReports> Apply(const std::string& controller_id, const std::string& stream_id,
                                       const std::vector<ReportedChange>& changes, const ReportJudge& judge);

 private:
  PgPool* pool_;
};

}  // namespace gantry::api
