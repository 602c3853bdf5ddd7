#include "api-server/admin_store.h"

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "api-server/session_store.h"
#include "api-server/sql_queries.h"
#include "api-server/team_charges.h"
#include "api-server/team_quota.h"
#include "common/json_util.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/proto_time.h"

namespace gantry::api {
namespace {

v1::ControllerStatus ParseStatus(const std::string& s) {
  if (s == "healthy") return v1::CONTROLLER_STATUS_HEALTHY;
  if (s == "unhealthy") return v1::CONTROLLER_STATUS_UNHEALTHY;
  if (s == "offline") return v1::CONTROLLER_STATUS_OFFLINE;
  return v1::CONTROLLER_STATUS_UNSPECIFIED;
}

// The two conditions a controller's health is made of, from columns 14.. of
// select_controllers.sql (status is column 4, the last heartbeat 11).
void AddConditions(const pqxx::row& row, absl::Duration freshness, v1::Controller* c) {
  v1::ControllerCondition* heartbeating = c->add_conditions();
  heartbeating->set_type("Heartbeating");
  heartbeating->set_ok(row[16].as<bool>());
  if (!heartbeating->ok()) {
    if (c->has_last_heartbeat()) *heartbeating->mutable_since() = c->last_heartbeat();
    heartbeating->set_message(absl::StrCat("no heartbeat in the last ", absl::FormatDuration(freshness)));
  }
  v1::ControllerCondition* reachable = c->add_conditions();
  reachable->set_type("Reachable");
  reachable->set_ok(c->status() == v1::CONTROLLER_STATUS_HEALTHY);
  if (!reachable->ok()) {
    if (double since = row[14].as<double>(); since > 0) EpochSecondsToProto(since, reachable->mutable_since());
    reachable->set_message(absl::StrCat("health checks unanswered: ", row[15].as<std::string>()));
  }
}

// Columns as in select_controllers.sql. The jsonb columns were written from these same protos,
// so one JSON object parses them all into the Controller message.
absl::StatusOr<v1::Controller> RowToController(const pqxx::row& row, absl::Duration freshness) {
  v1::Controller c;
  std::string json = absl::StrCat(R"({"labels":)", row[5].as<std::string>(), R"(,"capacity":)",
                                  row[6].as<std::string>(), R"(,"load":)", row[7].as<std::string>(),
                                  R"(,"skills":)", row[9].as<std::string>(), R"(,"capabilities":)",
                                  row[10].as<std::string>(), "}");
  absl::Status parsed = FromJson(json, &c);
  if (!parsed.ok()) return parsed;
  c.set_id(row[0].as<std::string>());
  c.set_name(row[1].as<std::string>());
  c.set_type(row[2].as<std::string>());
  c.set_endpoint(row[3].as<std::string>());
  c.set_status(ParseStatus(row[4].as<std::string>()));
  c.set_cordoned(row[8].as<bool>());
  if (double hb = row[11].as<double>(); hb > 0) EpochSecondsToProto(hb, c.mutable_last_heartbeat());
  EpochSecondsToProto(row[12].as<double>(), c.mutable_create_time());
  EpochSecondsToProto(row[13].as<double>(), c.mutable_update_time());
  AddConditions(row, freshness, &c);
  return c;
}

absl::Status ControllerNotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("controller ", id, " not found"));
}

}  // namespace

absl::Status AdminStore::InsertApiKey(const std::string& key_id, const std::string& key_sha256,
                                      const std::string& principal, const std::string& role,
                                      int64_t expire_epoch_seconds, const std::string& team) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    tx.exec_params(std::string(sql::kInsertApiKey), key_id, key_sha256, principal, role,
                   expire_epoch_seconds);
    if (!team.empty()) ExecPrepared(tx, sql::kUpsertPrincipalTeam, principal, team);
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status AdminStore::RevokeApiKey(const std::string& key_id) {
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !tx.exec_params(std::string(sql::kRevokeApiKey), key_id).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found ? absl::OkStatus()
               : absl::NotFoundError(absl::StrCat("key_id: no API key \"", key_id.substr(0, 64), "\""));
}

absl::StatusOr<std::vector<v1::Controller>> AdminStore::ListControllers(
    const std::string& status, const std::string& after_name, int limit) {
  std::vector<v1::Controller> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectControllers), status, after_name, limit,
                                    std::string(), absl::ToDoubleSeconds(freshness_));
    for (const auto& row : r) {
      auto controller = RowToController(row, freshness_);
      if (!controller.ok()) return controller.status();
      out.push_back(std::move(*controller));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Controller> AdminStore::GetController(const std::string& id) {
  if (!IsUuid(id)) return ControllerNotFound(id.substr(0, 64));
  absl::StatusOr<v1::Controller> out = ControllerNotFound(id);
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectControllers), std::string(),
                                    std::string(), 1, id, absl::ToDoubleSeconds(freshness_));
    if (!r.empty()) out = RowToController(r[0], freshness_);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status AdminStore::SetCordoned(const std::string& id, bool cordoned) {
  if (!IsUuid(id)) return ControllerNotFound(id.substr(0, 64));
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !tx.exec_params(std::string(sql::kSetControllerCordoned), id, cordoned).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found ? absl::OkStatus() : ControllerNotFound(id);
}

absl::Status AdminStore::RecordAnswered(const std::string& id, const v1::ControllerCapacity& capacity,
                                        const v1::ControllerLoad& load) {
  const std::string rows = absl::StrCat("[", AnsweredRowJson(id, capacity, load), "]");
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_params(std::string(sql::kRecordHealthChecksOk), rows);
    return absl::OkStatus();
  });
}

absl::StatusOr<int> AdminStore::LiveSessionsOn(const std::string& id) {
  int n = 0;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    n = tx.exec_params(std::string(sql::kCountLiveSessionsOnController), id)[0][0].as<int>();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return n;
}

absl::StatusOr<std::vector<std::string>> AdminStore::LiveSessionIdsOn(const std::string& id, int limit) {
  std::vector<std::string> ids;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectLiveSessionIdsOnController), id, limit)) {
      ids.push_back(row[0].as<std::string>());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return ids;
}

absl::Status AdminStore::DeleteController(const std::string& id) {
  if (!IsUuid(id)) return ControllerNotFound(id.substr(0, 64));
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !tx.exec_params(std::string(sql::kDeleteController), id).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found ? absl::OkStatus() : ControllerNotFound(id);
}

absl::StatusOr<absl::Time> AdminStore::ReplaceToken(const std::string& id,
                                                    const std::string& token_sha256,
                                                    absl::Duration lifetime, absl::Duration grace) {
  absl::Time expiry;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kUpsertControllerToken), id, token_sha256,
                                    absl::ToDoubleSeconds(lifetime), absl::ToDoubleSeconds(grace));
    expiry = absl::FromUnixSeconds(r[0][0].as<int64_t>());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return expiry;
}

absl::StatusOr<v1::ClusterStatus> AdminStore::ClusterStatus() {
  v1::ClusterStatus out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);  // One snapshot for all the counts.
    for (const auto& row : tx.exec_params(std::string(sql::kSelectClusterCounts), absl::ToDoubleSeconds(freshness_))) {
      const std::string kind = row[0].as<std::string>(), key = row[1].as<std::string>();
      const int n = row[2].as<int>();
      if (kind == "condition") {
        if (key == "Reachable") out.set_controllers_unreachable(n);
        if (key == "Heartbeating") out.set_controllers_not_heartbeating(n);
        continue;
      }
      (kind == "controller" ? *out.mutable_controllers_by_status() : *out.mutable_sessions_by_phase())[key] = n;
    }
    pqxx::result gpus = tx.exec_params(std::string(sql::kSelectClusterGpus),
                                       absl::ToDoubleSeconds(freshness_));
    out.set_gpus_total(gpus[0][0].as<int>());
    out.set_gpus_used(gpus[0][1].as<int>());
    for (const TeamQuota& quota : ReadQuotas(tx, "")) *out.add_quotas() = QuotaToProto(quota);
    for (const auto& row : ExecPrepared(tx, sql::kSelectPriorityClassStatus)) {
      v1::PriorityClassStatus* c = out.add_priority_classes();
      c->set_priority_class(row[0].as<std::string>());
      c->set_queued(row[1].as<int>());
      const absl::Duration wait = absl::Microseconds(static_cast<int64_t>(row[2].as<double>() * 1e6));
      c->mutable_oldest_wait()->set_seconds(absl::ToInt64Seconds(wait));
      c->mutable_oldest_wait()->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(wait % absl::Seconds(1))));
      c->set_preempted(row[3].as<int>());
    }
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<ControllerTarget>> AdminStore::Reachable(const std::string& id) {
  std::vector<ControllerTarget> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectControllerEndpoints), id)) {
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace gantry::api
