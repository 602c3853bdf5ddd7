#include "api-server/session_pruner.h"

#include <algorithm>

#include <pqxx/nontransaction>
#include <pqxx/result>
#include <spdlog/spdlog.h>

#include "api-server/sql_queries.h"
#include "common/pg_pool.h"

namespace gantry::api {

SessionPruner::SessionPruner(SessionPruneConfig config, PgPool* pool, std::function<bool()> leading)
    : config_(config), pool_(pool), leading_(std::move(leading)) {}

void SessionPruner::Start() { task_.Start(interval(), /*run_at_start=*/false, [this] { Pass(); }); }

absl::Duration SessionPruner::interval() const {
  return std::clamp(config_.retention / 4, absl::Seconds(1), absl::Minutes(1));
}

absl::StatusOr<int64_t> SessionPruner::PruneOnce() {
  const absl::Time stop_at = absl::Now() + config_.pass_budget;
  int64_t removed = 0;
  while (absl::Now() < stop_at) {
    int64_t batch = 0;
    absl::Status s = pool_->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      batch = tx.exec_params(std::string(sql::kPruneEndedSessions), absl::ToDoubleSeconds(config_.retention),
                             config_.batch)[0][0]
                  .as<int64_t>();
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    removed += batch;
    if (batch < config_.batch) break;  // None left past the retention.
  }
  return removed;
}

void SessionPruner::Pass() {
  if (!leading_()) return;
  auto removed = PruneOnce();
  if (!removed.ok()) {
    spdlog::warn("pruning ended sessions skipped this time: {}", removed.status().ToString());
  } else if (*removed > 0) {
    spdlog::info("{} ended session(s) older than {} pruned, with their events", *removed,
                 absl::FormatDuration(config_.retention));
  }
}

}  // namespace gantry::api
