#include "api-server/controller_event_store.h"

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "api-server/request_validation.h"
#include "api-server/session_rows.h"
#include "api-server/sql_queries.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/status.h"

namespace gantry::api {
namespace {

constexpr int kMaxOptimisticRetries = 8;

}  // namespace

absl::StatusOr<AppliedReports> ControllerEventStore::Apply(const std::string& controller_id,
                                                           const std::string& stream_id,
                                                           const std::vector<ReportedChange>& changes,
                                                           const ReportJudge& judge) {
  AppliedReports out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    out = AppliedReports();
    pqxx::work tx(c);
    uint64_t applied_through = 0;
    if (!stream_id.empty()) {
      pqxx::result r = ExecPrepared(tx, sql::kLockEventStream, controller_id, stream_id);
      // Another stream's sequence means nothing here: a restarted controller numbers from 1.
      if (r[0][0].as<std::string>() == stream_id) applied_through = r[0][1].as<uint64_t>();
    }
    uint64_t last = applied_through;
    for (const ReportedChange& reported : changes) {
      if (reported.sequence != 0 && reported.sequence <= applied_through) continue;  // Applied before.
      last = std::max(last, reported.sequence);
      if (!IsUuid(reported.session_id)) {
        out.sessions_to_stop.push_back(reported.session_id);
        continue;
      }
      for (int attempt = 0;; ++attempt) {
        if (attempt == kMaxOptimisticRetries) {
          return absl::AbortedError(absl::StrCat("session ", reported.session_id,
                                                 " is changing too fast to apply its controller's report; retry"));
        }
        auto stored = ReadSession(tx, reported.session_id);
        if (stored.status().code() == absl::StatusCode::kNotFound) {
          out.sessions_to_stop.push_back(reported.session_id);
          break;
        }
        if (!stored.ok()) return stored.status();
        const ReportVerdict verdict = judge(*stored, reported);
        if (verdict == ReportVerdict::kStop) out.sessions_to_stop.push_back(reported.session_id);
        if (verdict != ReportVerdict::kApply) break;
        ASSIGN_OR_RETURN(auto written, WritePhaseChange(tx, *stored, reported.change));
        if (!written) continue;  // Changed by another writer since it was read: judged again.
        out.applied.push_back(std::move(*written));
        break;
      }
    }
    if (!stream_id.empty() && last != applied_through) {
      ExecPrepared(tx, sql::kAdvanceEventStream, controller_id, stream_id, last);
    }
    tx.commit();
    out.applied_through = stream_id.empty() ? 0 : last;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace gantry::api
