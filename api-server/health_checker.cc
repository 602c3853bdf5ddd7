#include "api-server/health_checker.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "api-server/controller_store.h"
#include "api-server/sql_queries.h"
#include "common/pg_pool.h"

namespace gantry::api {
namespace {
// Distinct from the migration lock; the same on every replica.
constexpr int64_t kHealthLeaderLockKey = 0x67616e747279 + 1;

// Health checks in flight at once: enough for 10,000 controllers in a fraction of a 5 s
// interval, few enough that a new leader's first round does not stall on TLS handshakes.
constexpr int kParallelChecks = 256;
}  // namespace

HealthChecker::HealthChecker(HealthCheckConfig config, PgPool* pool, SessionStore* sessions,
                             ControllerClient* client, PlacementResumer* resumer)
    : config_(std::move(config)), pool_(pool), sessions_(sessions), client_(client), resumer_(resumer) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Start() { thread_ = std::thread([this] { Loop(); }); }

void HealthChecker::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  lock_conn_.reset();  // Closing the connection releases the lock for the other replicas.
}

bool HealthChecker::leading() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

bool HealthChecker::TryLead() {
  try {
    if (lock_conn_ != nullptr) {
      // Still ours only while the connection that holds it lives.
      pqxx::nontransaction tx(*lock_conn_);
      tx.exec("SELECT 1");
      return true;
    }
    auto conn = OpenConnection(config_.dsn);  // Never silently reconnected: the lock would be gone.
    bool got = false;
    {
      pqxx::nontransaction tx(*conn);
      got = tx.exec_params("SELECT pg_try_advisory_lock($1)", kHealthLeaderLockKey)[0][0].as<bool>();
    }
    if (got) lock_conn_ = std::move(conn);
    return got;
  } catch (const std::exception& e) {
    lock_conn_.reset();
    return false;
  }
}

void HealthChecker::Loop() {
  while (true) {
    // Rounds start an interval apart however long one takes (thousands of controllers take a
    // while), so a dead controller is declared unhealthy after its missed checks, not later.
    const auto next_round = std::chrono::steady_clock::now() + absl::ToChronoMilliseconds(config_.interval);
    bool lead = TryLead();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (lead != leading_) {
        spdlog::info(lead ? "this replica now runs the controller health checks"
                          : "this replica no longer runs the controller health checks");
      }
      leading_ = lead;
    }
    if (lead) CheckAll();
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_until(lock, next_round, [&] { return stopping_; })) {
      return;
    }
  }
}

void HealthChecker::CheckAll() {
  if (!config_.database_ready()) return;  // Start-up (migrating) or an outage the monitor reports.
  std::vector<Target> listed;
  absl::Status read = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectControllersToCheck),
                                          absl::ToDoubleSeconds(config_.heartbeat_late))) {
      listed.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                        row[4].as<bool>(), row[3].as<bool>()});
    }
    return absl::OkStatus();
  });
  if (!read.ok()) {
    spdlog::warn("health checks skipped: {}", read.ToString());
    return;
  }
  std::vector<Target> targets = ChooseTargets(std::move(listed));
  std::vector<std::string> endpoints;
  for (const Target& t : targets) endpoints.push_back(t.endpoint);
  auto answers = client_->HealthCheckAll(endpoints, config_.timeout, kParallelChecks);
  std::vector<HealthyAnswer> healthy;
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    if (answers[i].ok()) {
      healthy.push_back({t.id, std::move(*answers[i])});
      continue;
    }
    std::string before, after;
    // Offline (its sessions FAILED) only when its heartbeats stopped too, for as long as the
    // misses took: one that heartbeats but cannot be called is alive, only unreachable.
    const double silent_for = absl::ToDoubleSeconds(config_.interval * config_.offline_after);
    const std::string why = std::string(answers[i].status().message()).substr(0, 300);
    absl::Status recorded = pool_->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      pqxx::result r = tx.exec_params(std::string(sql::kRecordHealthCheckMiss), t.id, config_.unhealthy_after,
                                      config_.offline_after, silent_for, why, t.late);
      if (!r.empty()) {
        before = r[0][0].as<std::string>();
        after = r[0][1].as<std::string>();
      }
      return absl::OkStatus();
    });
    if (!recorded.ok() || before == after) continue;
    spdlog::warn("controller {} ({}) is now {}: {}", t.name, t.id, after, answers[i].status().ToString());
  }
  RecordHealthy(healthy);
  FailSessionsOfLostControllers();
  RecoverAbandonedPlacements();
}

std::vector<HealthChecker::Target> HealthChecker::ChooseTargets(std::vector<Target> listed) {
  const absl::Time now = absl::Now();
  std::vector<Target> chosen;
  std::vector<std::pair<absl::Time, Target>> sweep;  // Not urgent: by when last called.
  std::map<std::string, absl::Time> still_there;
  for (auto& target : listed) {
    auto it = last_called_.find(target.id);
    const absl::Time last = it == last_called_.end() ? absl::InfinitePast() : it->second;
    still_there[target.id] = last;
    if (target.urgent) {
      chosen.push_back(std::move(target));
    } else {
      sweep.emplace_back(last, std::move(target));
    }
  }
  last_called_ = std::move(still_there);  // Forgets deleted and offline controllers.
  // A share each round so that every one is called within the sweep; and any overdue.
  const double rounds_per_sweep = std::max(1.0, absl::FDivDuration(config_.reachability_sweep, config_.interval));
  size_t share = static_cast<size_t>(std::ceil(static_cast<double>(sweep.size()) / rounds_per_sweep));
  std::sort(sweep.begin(), sweep.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  // Never called by this leader (it has just taken the lead) counts as oldest, but is spread
  // over the sweep like the rest: its status and heartbeats are in PostgreSQL meanwhile.
  for (size_t i = 0; i < sweep.size(); ++i) {
    const absl::Time last = sweep[i].first;
    if (i < share || (last != absl::InfinitePast() && last < now - config_.reachability_sweep)) {
      chosen.push_back(std::move(sweep[i].second));
    }
  }
  for (const Target& t : chosen) last_called_[t.id] = now;
  return chosen;
}

void HealthChecker::RecordHealthy(const std::vector<HealthyAnswer>& healthy) {
  // In statements of a few hundred rows: one commit for many controllers, without holding
  // thousands of row locks (which heartbeats wait on) for one long statement.
  constexpr size_t kRowsPerStatement = 500;
  for (size_t first = 0; first < healthy.size(); first += kRowsPerStatement) {
    std::string rows = "[";
    for (size_t i = first; i < std::min(healthy.size(), first + kRowsPerStatement); ++i) {
      const auto& [id, answer] = healthy[i];
      absl::StrAppend(&rows, i == first ? "" : ",", AnsweredRowJson(id, answer.capacity(), answer.load()));
    }
    rows += "]";
    absl::Status s = pool_->Run([&](pqxx::connection& c) {
      pqxx::nontransaction tx(c);
      tx.exec_params(std::string(sql::kRecordHealthChecksOk), rows);
      return absl::OkStatus();
    });
    if (!s.ok()) spdlog::warn("recording healthy controllers skipped this round: {}", s.ToString());
  }
}

void HealthChecker::RecoverAbandonedPlacements() {
  struct Stuck {
    std::string id, endpoint;
    bool past_timeout, past_give_up;
  };
  std::vector<Stuck> stuck;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectStuckPlacements),
                                          absl::ToDoubleSeconds(config_.placement_resume_after),
                                          absl::ToDoubleSeconds(config_.placement_timeout),
                                          absl::ToDoubleSeconds(config_.placement_give_up))) {
      stuck.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<bool>(), row[3].as<bool>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return;
  // Each resumption is a controller call: at most an interval's worth per tick, so health
  // checks are not held up; the rest wait for the next tick.
  const absl::Time budget_end = absl::Now() + config_.interval;
  int resumed = 0, failed = 0;
  for (const Stuck& st : stuck) {
    std::string why = "its controller is not healthy";
    if (st.endpoint.empty()) {
      if (!st.past_timeout) continue;
    } else {
      if (absl::Now() >= budget_end) continue;
      auto session = sessions_->Get(st.id);
      if (!session.ok()) continue;
      auto placed = resumer_->Resume(*session);
      if (placed.ok()) {
        ++resumed;
        continue;
      }
      const auto code = placed.status().code();
      if (code == absl::StatusCode::kFailedPrecondition) continue;  // Moved on meanwhile.
      const bool for_now = code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
      // A healthy controller that cannot answer in time is busy, not gone (it may be starting
      // the session now, and will report it): asked again each tick, up to the give-up bound.
      // (Failing these at the unhealthy bound failed 1 of 500 creates of the failover test on a
      // loaded 2-core machine: "could not take it: Deadline Exceeded", its controller healthy.)
      if (for_now && !st.past_give_up) continue;
      why = for_now ? absl::StrCat("its controller, though healthy, did not answer for it within ",
                                   absl::FormatDuration(config_.placement_give_up), ": ", placed.status().message())
                    : absl::StrCat("its controller refused it: ", placed.status().message());
    }
    PhaseChange change;
    change.phase = v1::SESSION_PHASE_FAILED;
    change.message = absl::StrCat("placement abandoned by the API server placing it, and not resumed: ", why);
    change.only_from = v1::SESSION_PHASE_SCHEDULED;  // One that moved on meanwhile stays as it is.
    if (!sessions_->Transition(st.id, change).ok()) continue;
    ++failed;
    // Best effort: had the controller started it, nothing else would ever stop it.
    if (!st.endpoint.empty()) (void)client_->DeleteSession(st.endpoint, st.id);
  }
  if (resumed > 0) spdlog::info("{} abandoned placement(s) resumed", resumed);
  if (failed > 0) spdlog::warn("{} abandoned placement(s) marked FAILED", failed);
}

// Separate from marking the controller offline, and repeated every tick, so sessions are
// failed even if a previous leader died between the two steps.
void HealthChecker::FailSessionsOfLostControllers() {
  struct Lost {
    std::string session_id, controller;
    bool by_missed_checks;
  };
  std::vector<Lost> lost;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectSessionsOnLostControllers),
                                          config_.offline_after,
                                          absl::ToDoubleSeconds(config_.deregistered_grace))) {
      lost.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<bool>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return;
  for (const auto& l : lost) {
    PhaseChange failed;
    failed.phase = v1::SESSION_PHASE_FAILED;
    failed.message =
        l.by_missed_checks
            ? absl::StrCat("controller ", l.controller, " went offline (", config_.offline_after,
                           " health checks missed); the session's state is unknown")
            : absl::StrCat("controller ", l.controller, " deregistered and did not come back within ",
                           absl::FormatDuration(config_.deregistered_grace), "; the session's state is unknown");
    (void)sessions_->Transition(l.session_id, failed);
  }
  if (!lost.empty()) spdlog::warn("{} session(s) on offline controllers marked FAILED", lost.size());
}

}  // namespace gantry::api
