#include "api-server/preemption_store.h"

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api-server/controller_room.h"
#include "api-server/session_rows.h"
#include "api-server/sql_queries.h"
#include "api-server/team_charges.h"
#include "common/json_util.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/proto_time.h"
#include "common/status.h"

namespace gantry::api {
namespace {

std::vector<PreemptionCandidate> ReadCandidates(pqxx::transaction_base& tx, const PlacementRequest& p,
                                                int32_t priority, absl::Duration freshness, int limit) {
  // Not prepared, as controller candidates are not: its optional filters decide the plan.
  pqxx::result r = tx.exec_params(std::string(sql::kSelectPreemptionCandidates), p.gpu_count, p.min_gpu_memory_bytes,
                                  absl::ToDoubleSeconds(freshness), p.controller_id, p.controller_type,
                                  p.selector_json, p.skills_json, p.gpu_model, priority, limit);
  std::vector<PreemptionCandidate> out;
  out.reserve(r.size());
  for (const auto& row : r) {
    PreemptionCandidate c;
    c.session_id = row[0].as<std::string>();
    c.priority_class = row[1].as<std::string>();
    c.gpus = row[2].as<int>();
    c.priority = row[3].as<int32_t>();
    c.started = absl::FromUnixMicros(static_cast<int64_t>(row[4].as<double>() * 1e6));
    c.over_quota = row[5].as<bool>();
    c.controller_id = row[6].as<std::string>();
    c.worker_id = row[7].as<std::string>();
    c.worker_gpus_free = row[8].as<int>();
    c.controller_unreserved = row[9].as<int>();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<PreemptionCandidate>> PreemptionStore::Candidates(const PlacementRequest& placement,
                                                                             int32_t priority, int limit) {
  std::vector<PreemptionCandidate> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    out = ReadCandidates(tx, placement, priority, freshness_, limit);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

template <typename Place>
absl::StatusOr<Preemption> PreemptionStore::Preempt(const PlacementRequest& placement, const std::string& controller_id,
                                                    const std::string& owner, int32_t priority, const Place& place) {
  if (!placement.controller_id.empty() && placement.controller_id != controller_id) {
    return absl::InvalidArgumentError("controller_id: the preemption was planned on another controller");
  }
  absl::StatusOr<Preemption> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    // Locks in a reservation's order (team_charges.h): teams resolved, the controller, the team.
    TeamCharges teams;
    teams.Resolve(tx, {owner});
    const std::optional<ControllerRoom> room = LockRoom(tx, controller_id);
    if (!room) {
      out = NoRoom(controller_id, room, placement.gpu_count);
      return absl::OkStatus();  // Rolled back: nothing written.
    }
    teams.LockAndRead(tx);
    // Nothing is preempted for a session its team's quota would refuse once the room is made.
    if (absl::Status fits = teams.Admit(owner, room->ChargeFor(placement.gpu_count, placement.gpu_model)); !fits.ok()) {
      out = fits;
      return absl::OkStatus();
    }
    // Planned again under the lock, from the sessions there now: another preemption or a
    // session's end since the first plan changes what is needed.
    PlacementRequest here = placement;
    here.controller_id = controller_id;
    const std::optional<PreemptionPlan> plan =
        PlanPreemption(placement.gpu_count, ReadCandidates(tx, here, priority, freshness_, 1000));
    if (!plan) {
      out = absl::ResourceExhaustedError(absl::StrCat(
          "controller ", controller_id, ": no set of running sessions of lower priority makes room there now"));
      return absl::OkStatus();
    }
    // Not naming the victims: they may be other tenants'.
    absl::StatusOr<v1::Session> preemptor =
        place(tx, absl::StrCat("queued: preempting ", plan->victims.size(), " session(s) of lower priority on worker ",
                               plan->worker_id, "; placed once they have stopped"),
              teams.TeamOf(owner));
    if (!preemptor.ok()) {
      out = preemptor.status();
      return absl::OkStatus();
    }
    Preemption done{*preemptor, {}};
    const std::string why = absl::StrCat(
        "preempted by session ", preemptor->id(), " (priority class \"", preemptor->spec().priority_class(),
        "\", priority ", priority, "), which needed its GPUs");
    v1::Condition condition;
    condition.set_type("Preempted");
    condition.set_status("True");
    condition.set_reason("HigherPriority");
    condition.set_message(why);
    ToProto(absl::Now(), condition.mutable_last_transition_time());
    const std::string condition_json = ToJson(condition);
    for (const PreemptionCandidate& v : plan->victims) {
      pqxx::result r = ExecPrepared(tx, sql::kPreemptSession, v.session_id, why, preemptor->id(), condition_json);
      if (r.empty()) continue;  // It ended meanwhile: its GPUs are free anyway.
      ASSIGN_OR_RETURN(v1::Session victim, RowToSession(r[0]));
      done.victims.push_back(std::move(victim));
    }
    tx.commit();
    out = std::move(done);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<Preemption> PreemptionStore::PreemptForCreate(const PlacementRequest& placement,
                                                             const std::string& controller_id,
                                                             const QueuedCreate& create) {
  return Preempt(placement, controller_id, create.owner, create.priority,
                 [&](pqxx::work& tx, const std::string& message,
                     const std::string& team) -> absl::StatusOr<v1::Session> {
                   pqxx::result r = ExecPrepared(
                       tx, sql::kInsertQueuedSession, create.owner, create.request_id, create.template_id,
                       ToJson(create.spec), JsonStringMap(create.spec.labels()),
                       create.spec.resources().gpus().count(), team, create.priority,
                       absl::ToDoubleSeconds(create.queue_timeout), create.placement_json, message, controller_id);
                   if (r.empty()) {
                     return absl::AlreadyExistsError(absl::StrCat("request_id \"", create.request_id,
                                                                  "\" was used already by ", create.owner));
                   }
                   return RowToSession(r[0]);
                 });
}

absl::StatusOr<Preemption> PreemptionStore::PreemptForQueued(const PlacementRequest& placement,
                                                             const std::string& controller_id,
                                                             const v1::Session& queued, int32_t priority) {
  return Preempt(placement, controller_id, queued.owner(), priority,
                 [&](pqxx::work& tx, const std::string& message,
                     const std::string& /*team: its row's already*/) -> absl::StatusOr<v1::Session> {
                   pqxx::result r = ExecPrepared(tx, sql::kNominateQueuedSession, queued.id(), controller_id, message);
                   if (r.empty()) {
                     return absl::FailedPreconditionError(absl::StrCat("session ", queued.id(), " is no longer queued"));
                   }
                   return RowToSession(r[0]);
                 });
}

absl::StatusOr<PreemptionStore::Stopping> PreemptionStore::VictimsStopping(const std::string& preemptor_id,
                                                                            absl::Duration stale_after) {
  Stopping out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : ExecPrepared(tx, sql::kSelectVictimsStopping, preemptor_id,
                                        absl::ToDoubleSeconds(stale_after))) {
      ++out.count;
      if (!row[17].as<bool>()) continue;
      ASSIGN_OR_RETURN(v1::Session victim, RowToSession(row));
      out.stale.push_back(std::move(victim));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace gantry::api
