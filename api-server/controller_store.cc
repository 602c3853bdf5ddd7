#include "api-server/controller_store.h"

#include <algorithm>

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <map>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api-server/session_store.h"
#include "api-server/sql_queries.h"
#include "common/json_util.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

std::string SkillsJson(const google::protobuf::RepeatedPtrField<std::string>& skills) {
  return JsonStringArray({skills.begin(), skills.end()});
}

std::string CapabilitiesJson(const google::protobuf::RepeatedPtrField<v1::CapabilityInfo>& caps) {
  std::string out = "[";
  for (int i = 0; i < caps.size(); ++i) {
    if (i > 0) out += ",";
    out += ToJson(caps[i]);
  }
  return out + "]";
}

}  // namespace

std::string CapacityJsonFields(const v1::ControllerCapacity& cap, const v1::ControllerLoad& load) {
  return absl::StrCat("\"capacity\":", ToJson(cap), ",\"load\":", ToJson(load),
                      ",\"gpus_total\":", cap.gpus_total(), ",\"gpus_free\":", cap.gpus_free(),
                      ",\"max_free_gpus_per_worker\":", cap.max_free_gpus_per_worker(),
                      ",\"max_gpu_memory_bytes\":", cap.max_gpu_memory_bytes(),
                      ",\"active_sessions\":", load.active_sessions());
}

std::string AnsweredRowJson(const std::string& id, const v1::ControllerCapacity& capacity,
                            const v1::ControllerLoad& load) {
  return absl::StrCat("{\"id\":\"", id, "\",", CapacityJsonFields(capacity, load), "}");
}

absl::StatusOr<std::pair<std::string, absl::Time>> ControllerStore::Register(
    const v1::RegisterControllerRequest& r, const std::string& token_sha256,
    absl::Duration token_lifetime) {
  std::pair<std::string, absl::Time> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const auto& cap = r.capacity();
    pqxx::result row = tx.exec_params(
        std::string(sql::kUpsertController), r.name(), r.type(), r.endpoint(),
        JsonStringMap(r.labels()), SkillsJson(r.skills()), CapabilitiesJson(r.capabilities()),
        ToJson(cap), cap.gpus_total(), cap.gpus_free(), cap.max_free_gpus_per_worker(),
        cap.max_gpu_memory_bytes());
    out.first = row[0][0].as<std::string>();
    pqxx::result expiry = ExecPrepared(tx, sql::kUpsertControllerToken, out.first,
                                         token_sha256, absl::ToDoubleSeconds(token_lifetime), 0.0);
    out.second = absl::FromUnixSeconds(expiry[0][0].as<int64_t>());
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

namespace {

const absl::Status& CredentialsRefused() {
  static const absl::Status kRefused = absl::UnauthenticatedError(
      "controller_id/controller_token not accepted: re-register with the join token");
  return kRefused;
}

// How a heartbeat finds its answer among store_heartbeats.sql's rows: by controller, token and
// the certificate's name.
std::string HeartbeatKey(const std::string& controller_id, const std::string& token_sha256,
                         const std::string& caller_name) {
  return absl::StrCat(controller_id, " ", token_sha256, " ", caller_name);
}

}  // namespace

absl::Status ControllerStore::VerifyToken(const std::string& controller_id, const std::string& token,
                                          const std::string& caller_name) {
  if (!IsUuid(controller_id) || token.empty()) return CredentialsRefused();
  bool ok = false;
  std::string name;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = ExecPrepared(tx, sql::kSelectControllerToken, controller_id);
    // Hash even when there is no row so the time taken does not reveal whether the id exists.
    std::string presented = Sha256Hex(token);
    if (r.empty()) return absl::OkStatus();
    // Both compared, whichever matches, so the time taken does not say which one did.
    const bool current = ConstantTimeEquals(presented, r[0][0].as<std::string>()) && r[0][1].as<bool>();
    const bool previous = ConstantTimeEquals(presented, r[0][3].as<std::string>()) && r[0][4].as<bool>();
    ok = current || previous;
    name = r[0][2].as<std::string>();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!ok) return CredentialsRefused();
  // Only a holder of the live token learns the name: it was that controller's to begin with.
  if (name != caller_name) {
    return absl::PermissionDeniedError(absl::StrCat("the certificate names controller \"", caller_name,
                                                    "\", but controller ", controller_id, " is \"", name,
                                                    "\": a controller acts only as itself"));
  }
  return absl::OkStatus();
}

struct ControllerStore::PendingHeartbeat {
  std::string key;  // HeartbeatKey
  std::string row;  // its element of store_heartbeats.sql's $1
  std::optional<absl::StatusOr<HeartbeatAnswer>> answer;  // set once written
};

absl::StatusOr<HeartbeatAnswer> ControllerStore::Heartbeat(const v1::HeartbeatRequest& r,
                                                           const std::string& caller_name,
                                                           absl::Duration unheld_grace, absl::Duration recent,
                                                           absl::Time deadline) {
  // Anything but a UUID would fail the whole batch's statement, not just this heartbeat.
  if (!IsUuid(r.controller_id()) || r.controller_token().empty()) return CredentialsRefused();
  const std::string id = absl::AsciiStrToLower(r.controller_id());  // as PostgreSQL returns it
  const std::string token_sha256 = Sha256Hex(r.controller_token());
  std::vector<std::string> held, garbage;  // garbage: names no session of ours, so unwanted
  for (const auto& session_id : r.session_ids()) (IsUuid(session_id) ? held : garbage).push_back(session_id);
  PendingHeartbeat mine;
  mine.key = HeartbeatKey(id, token_sha256, caller_name);
  mine.row = absl::StrCat("{\"id\":\"", id, "\",\"token_sha256\":\"", token_sha256,
                          "\",\"name\":", JsonString(caller_name), ",",
                          CapacityJsonFields(r.capacity(), r.load()),
                          ",\"skills\":", SkillsJson(r.skills()),
                          ",\"capabilities\":", CapabilitiesJson(r.capabilities()),
                          ",\"held\":", JsonStringArray(held),
                          ",\"held_complete\":", r.session_ids_complete() ? "true" : "false",
                          ",\"unheld_grace_s\":", absl::ToDoubleSeconds(unheld_grace),
                          ",\"recent_s\":", absl::ToDoubleSeconds(recent), "}");
  if (!heartbeats_.Submit("", &mine, deadline)) {
    return absl::UnavailableError(
        "the database did not answer in time: the heartbeat waited its whole deadline behind another write");
  }
  absl::StatusOr<HeartbeatAnswer> answer = *std::move(mine.answer);
  if (answer.status().code() == absl::StatusCode::kUnauthenticated) {
    // Refused: say PERMISSION_DENIED if it was another controller's live token (rare, so the
    // batch statement leaves that to this second look).
    absl::Status why = VerifyToken(id, r.controller_token(), caller_name);
    if (why.code() == absl::StatusCode::kPermissionDenied) return why;
  }
  if (answer.ok()) answer->unwanted.insert(answer->unwanted.end(), garbage.begin(), garbage.end());
  return answer;
}

void ControllerStore::WriteHeartbeats(const std::vector<PendingHeartbeat*>& batch) {
  std::string rows = "[";
  for (const PendingHeartbeat* p : batch) absl::StrAppend(&rows, rows.size() > 1 ? "," : "", p->row);
  rows += "]";
  std::map<std::string, HeartbeatAnswer> answers;  // by HeartbeatKey, for each heartbeat accepted
  auto ids = [](const pqxx::field& f) -> std::vector<std::string> {
    if (f.is_null()) return {};
    return absl::StrSplit(f.as<std::string>(), ',');
  };
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    answers.clear();  // Run may retry.
    pqxx::nontransaction tx(c);  // One statement: atomic on its own.
    for (const auto& row : ExecPrepared(tx, sql::kStoreHeartbeats, rows)) {
      answers[HeartbeatKey(row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>())] =
          HeartbeatAnswer{row[3].as<bool>(), ids(row[4]), ids(row[5])};
    }
    return absl::OkStatus();
  });
  for (PendingHeartbeat* p : batch) {
    auto it = answers.find(p->key);
    if (!s.ok()) {
      p->answer = s;
    } else if (it == answers.end()) {
      p->answer = CredentialsRefused();  // unknown, deregistered, or not its live token
    } else {
      p->answer = it->second;  // a copy: the same controller may have beaten twice in one batch
    }
  }
}

absl::Status ControllerStore::MarkOffline(const std::string& controller_id) {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    ExecPrepared(tx, sql::kMarkControllerOffline, controller_id);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ControllerTarget>> ControllerStore::Candidates(
    const PlacementRequest& p, int limit) {
  std::vector<ControllerTarget> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    // Not prepared: a generic plan cannot see which of its optional filters are empty, and the
    // custom plan reads a few rows by the selection index where a generic one might scan all.
    pqxx::result r = tx.exec_params(std::string(sql::kSelectControllerCandidates), p.gpu_count,
                                    p.min_gpu_memory_bytes, absl::ToDoubleSeconds(freshness_),
                                    p.controller_id, p.controller_type, p.selector_json, limit,
                                    p.skills_json, p.gpu_model);
    for (const auto& row : r) {
      out.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<InvokeCandidateRow>> ControllerStore::InvokeCandidateRows(const std::string& capability) {
  std::vector<InvokeCandidateRow> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectInvokeCandidates), capability,
                                    absl::ToDoubleSeconds(freshness_));
    for (const auto& row : r) {
      out.push_back({{row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>()},
                     row[3].as<std::string>(),
                     row[4].as<int>()});
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<v1::ServedCapability>> ControllerStore::ServedCapabilities(const std::string& prefix) {
  std::vector<v1::ServedCapability> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    out.clear();
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectServedCapabilities), prefix,
                                    absl::ToDoubleSeconds(freshness_));
    for (const auto& row : r) {
      v1::ServedCapability& served = out.emplace_back();
      served.set_name(row[0].as<std::string>());
      for (absl::string_view v : absl::StrSplit(row[1].as<std::string>(), ',')) served.add_versions(std::string(v));
      served.set_controllers(row[2].as<int>());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<FleetSummary> ControllerStore::Summary() {
  FleetSummary out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectFleetGpuSummary),
                                    absl::ToDoubleSeconds(freshness_));
    out.selectable_controllers = r[0][0].as<int>();
    out.max_free_gpus_per_worker = r[0][1].as<int>();
    out.registered_controllers = r[0][2].as<int>();
    out.gpus_total = r[0][3].as<int64_t>();
    out.gpus_reserved = r[0][4].as<int64_t>();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<ControllerTarget> ControllerStore::Get(const std::string& controller_id) {
  if (!IsUuid(controller_id)) {
    return absl::NotFoundError(absl::StrCat("controller \"", controller_id, "\" not found"));
  }
  absl::StatusOr<ControllerTarget> out = absl::NotFoundError(
      absl::StrCat("controller ", controller_id, " not found"));
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = ExecPrepared(tx, sql::kSelectControllerEndpoint, controller_id);
    if (!r.empty()) out = ControllerTarget{controller_id, r[0][0].as<std::string>(), r[0][1].as<std::string>()};
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

}  // namespace gantry::api
