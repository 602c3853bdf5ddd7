#include "api-server/session_rows.h"

#include <pqxx/result>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/json_util.h"
#include "common/pg_prepared.h"
#include "common/proto_time.h"
#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::api {

absl::StatusOr<v1::Session> RowToSession(const pqxx::row& row) {
  v1::Session s;
  s.set_id(row[0].as<std::string>());
  s.set_owner(row[1].as<std::string>());
  s.set_request_id(row[2].as<std::string>());
  s.set_template_id(row[3].as<std::string>());
  s.set_controller_id(row[4].as<std::string>());
  s.set_worker_id(row[5].as<std::string>());
  s.set_node_id(row[6].as<std::string>());
  auto phase = ParsePhase(row[7].as<std::string>());
  if (!phase.ok()) return phase.status();
  s.set_phase(*phase);
  absl::Status spec_ok = FromJson(row[8].as<std::string>(), s.mutable_spec());
  if (!spec_ok.ok()) return spec_ok;
  auto gpus = ParseJsonStringArray(row[9].as<std::string>());
  if (!gpus.ok()) return gpus.status();
  for (auto& g : *gpus) s.add_gpu_uuids(std::move(g));
  s.set_url(row[10].as<std::string>());
  s.set_message(row[11].as<std::string>());
  s.set_version(row[12].as<int64_t>());
  EpochSecondsToProto(row[13].as<double>(), s.mutable_create_time());
  EpochSecondsToProto(row[14].as<double>(), s.mutable_update_time());
  if (double ended = row[15].as<double>(); ended > 0) EpochSecondsToProto(ended, s.mutable_end_time());
  // A JSON array of Condition, parsed as the one field of a Session.
  if (const std::string conditions = row[16].as<std::string>(); conditions != "[]") {
    v1::Session holder;
    RETURN_IF_ERROR(FromJson(absl::StrCat("{\"conditions\":", conditions, "}"), &holder));
    *s.mutable_conditions() = std::move(*holder.mutable_conditions());
  }
  return s;
}

absl::StatusOr<v1::Session> ReadSession(pqxx::transaction_base& tx, const std::string& id) {
  pqxx::result r = ExecPrepared(tx, sql::kSelectSession, id);
  if (r.empty()) return absl::NotFoundError(absl::StrCat("session ", id, " not found"));
  return RowToSession(r[0]);
}

absl::StatusOr<std::optional<v1::Session>> WritePhaseChange(pqxx::work& tx, const v1::Session& current,
                                                            const PhaseChange& change) {
  const std::string gpus = change.gpu_uuids ? JsonStringArray(*change.gpu_uuids) : std::string();
  pqxx::result r = ExecPrepared(tx, sql::kUpdateSessionPhase, current.id(), current.version(),
                                std::string(PhaseName(change.phase)), change.message, change.controller_id,
                                change.worker_id, change.node_id, gpus, change.url, IsTerminal(change.phase));
  if (r.empty()) return std::nullopt;
  ExecPrepared(tx, sql::kInsertSessionEvent, current.id(), std::string(PhaseName(current.phase())),
               std::string(PhaseName(change.phase)), change.message);
  ASSIGN_OR_RETURN(v1::Session stored, RowToSession(r[0]));
  return std::optional<v1::Session>(std::move(stored));
}

}  // namespace gantry::api
