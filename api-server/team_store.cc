#include "api-server/team_store.h"

#include <algorithm>

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "api-server/sql_queries.h"
#include "api-server/team_charges.h"
#include "api-server/team_quota.h"
#include "common/identity.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/status.h"

namespace gantry::api {
namespace {

constexpr size_t kMaxModelLimits = 32;
constexpr size_t kMaxModelKeyBytes = 63;

absl::Status ValidateQuota(const v1::SetQuotaRequest& request) {
  RETURN_IF_ERROR(ValidateTeamName(request.team(), "team"));
  if (request.max_gpus() < 0) return absl::InvalidArgumentError("max_gpus: must be 0 (no limit) or more");
  if (request.weight() < 0 || request.weight() > 1000) {
    return absl::InvalidArgumentError("weight: must be 1..1000 (0 or unset: 1)");
  }
  if (request.max_sessions() < 0) return absl::InvalidArgumentError("max_sessions: must be 0 (no limit) or more");
  if (request.max_gpu_memory_bytes() < 0) {
    return absl::InvalidArgumentError("max_gpu_memory_bytes: must be 0 (no limit) or more");
  }
  if (request.max_gpus_by_model_size() > static_cast<int>(kMaxModelLimits)) {
    return absl::InvalidArgumentError(absl::StrCat("max_gpus_by_model: at most ", kMaxModelLimits, " models"));
  }
  for (const auto& [model, max] : request.max_gpus_by_model()) {
    bool printable = !model.empty() && model.size() <= kMaxModelKeyBytes;
    for (char c : model) printable = printable && absl::ascii_isprint(static_cast<unsigned char>(c));
    if (!printable) {
      return absl::InvalidArgumentError(absl::StrCat("max_gpus_by_model: a model is 1..", kMaxModelKeyBytes,
                                                     " printable characters (a part of its name, e.g. \"a100\")"));
    }
    if (max < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_gpus_by_model[\"", model, "\"]: must be 0 (no limit) or more"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePrincipal(const std::string& principal, const char* field) {
  std::vector<std::string> parts = absl::StrSplit(principal, absl::MaxSplits('/', 1));
  if (parts.size() == 2 && (parts[0] == "user" || parts[0] == "admin") && IsValidName(parts[1])) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": a principal is \"user/NAME\" or \"admin/NAME\" (NAME 1..63 of [a-z0-9._-])"));
}

absl::Status TeamStore::SetPrincipalTeam(const v1::SetPrincipalTeamRequest& request) {
  RETURN_IF_ERROR(ValidatePrincipal(request.principal(), "principal"));
  if (!request.team().empty() && !IsValidName(request.team())) {
    return absl::InvalidArgumentError(
        "team: 1..63 of [a-z0-9._-] starting with a letter or digit, or \"\" for the principal's team of one");
  }
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    if (request.team().empty()) {
      ExecPrepared(tx, sql::kDeletePrincipalTeam, request.principal());
    } else {
      ExecPrepared(tx, sql::kUpsertPrincipalTeam, request.principal(), request.team());
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ListTeamsResponse> TeamStore::ListTeams() {
  std::map<std::string, v1::Team> teams;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);  // One snapshot for members and quotas.
    for (const auto& row : ExecPrepared(tx, sql::kSelectPrincipalTeams)) {
      v1::Team& team = teams[row[0].as<std::string>()];
      team.set_name(row[0].as<std::string>());
      team.add_principals(row[1].as<std::string>());
    }
    for (const TeamQuota& quota : ReadQuotas(tx, "")) {
      v1::Team& team = teams[quota.team];
      team.set_name(quota.team);
      *team.mutable_quota() = QuotaToProto(quota);
    }
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  v1::ListTeamsResponse out;
  for (auto& [name, team] : teams) *out.add_teams() = std::move(team);
  return out;
}

absl::StatusOr<v1::Quota> TeamStore::SetQuota(const v1::SetQuotaRequest& request) {
  RETURN_IF_ERROR(ValidateQuota(request));
  std::map<std::string, int> by_model(request.max_gpus_by_model().begin(), request.max_gpus_by_model().end());
  absl::StatusOr<v1::Quota> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    ExecPrepared(tx, sql::kUpsertQuota, request.team(), request.max_gpus(), request.max_sessions(),
                 ModelLimitsJson(by_model), request.max_gpu_memory_bytes(), std::max(request.weight(), 1));
    std::vector<TeamQuota> quotas = ReadQuotas(tx, request.team());
    tx.commit();
    if (!quotas.empty()) out = QuotaToProto(quotas.front());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Quota> TeamStore::GetQuota(const std::string& team) {
  RETURN_IF_ERROR(ValidateTeamName(team, "team"));
  std::vector<TeamQuota> quotas;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    quotas = ReadQuotas(tx, team);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (quotas.empty()) return absl::NotFoundError(absl::StrCat("team: \"", team, "\" has no quota"));
  return QuotaToProto(quotas.front());
}

absl::StatusOr<v1::ListQuotasResponse> TeamStore::ListQuotas() {
  v1::ListQuotasResponse out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const TeamQuota& quota : ReadQuotas(tx, "")) *out.add_quotas() = QuotaToProto(quota);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status TeamStore::DeleteQuota(const std::string& team) {
  RETURN_IF_ERROR(ValidateTeamName(team, "team"));
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !ExecPrepared(tx, sql::kDeleteQuota, team).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("team: \"", team, "\" has no quota"));
}

}  // namespace gantry::api
