#include "api-server/team_charges.h"

#include <google/protobuf/struct.pb.h>

#include <algorithm>
#include <utility>

#include <pqxx/result>

#include "api-server/sql_queries.h"
#include "common/json_util.h"
#include "common/pg_prepared.h"

namespace gantry::api {
namespace {

std::map<std::string, int> ModelMap(const std::string& json) {
  std::map<std::string, int> out;
  google::protobuf::Struct parsed;
  if (!FromJson(json, &parsed).ok()) return out;  // Written by ModelLimitsJson: cannot happen.
  for (const auto& [key, value] : parsed.fields()) out[key] = static_cast<int>(value.number_value());
  return out;
}

}  // namespace

std::string ModelLimitsJson(const std::map<std::string, int>& limits) {
  google::protobuf::Struct out;
  for (const auto& [key, max] : limits) (*out.mutable_fields())[key].set_number_value(max);
  return ToJson(out);
}

std::vector<TeamQuota> ReadQuotas(pqxx::transaction_base& tx, const std::string& team) {
  std::vector<TeamQuota> out;
  for (const auto& row : ExecPrepared(tx, sql::kSelectQuotas, team)) {
    TeamQuota q;
    q.team = row[0].as<std::string>();
    q.limits.max_gpus = row[1].as<int>();
    q.limits.max_sessions = row[2].as<int>();
    q.limits.max_gpu_memory_bytes = row[3].as<int64_t>();
    q.limits.max_gpus_by_model = ModelMap(row[4].as<std::string>());
    q.use.sessions = row[5].as<int>();
    q.use.gpus = row[6].as<int>();
    q.use.gpu_memory_bytes = row[7].as<int64_t>();
    q.use.gpus_by_model = ModelMap(row[8].as<std::string>());
    q.updated = absl::FromUnixMicros(static_cast<int64_t>(row[9].as<double>() * 1e6));
    q.limits.weight = row[10].as<int>();
    out.push_back(std::move(q));
  }
  return out;
}

void TeamCharges::Resolve(pqxx::transaction_base& tx, const std::vector<std::string>& owners) {
  for (const auto& row : ExecPrepared(tx, sql::kSelectTeamsOf, JsonStringArray(owners))) {
    const std::string team = row[1].as<std::string>();
    team_of_[row[0].as<std::string>()] = team;
    if (row[2].as<bool>()) with_quota_.insert(team);
  }
}

void TeamCharges::Assume(const std::string& owner, const std::string& team, bool has_quota) {
  team_of_[owner] = team;
  if (has_quota) with_quota_.insert(team);
}

void TeamCharges::LockAndRead(pqxx::transaction_base& tx) {
  std::vector<std::pair<int32_t, std::string>> keyed;
  for (const std::string& team : with_quota_) keyed.emplace_back(TeamLockKey(team), team);
  std::sort(keyed.begin(), keyed.end());
  int32_t last = 0;
  for (size_t i = 0; i < keyed.size(); ++i) {
    if (i == 0 || keyed[i].first != last) ExecPrepared(tx, sql::kLockTeamForQuota, keyed[i].first);
    last = keyed[i].first;
  }
  // Each its own statement, after the locks: the snapshot has what the lock's last holder
  // committed.
  for (const std::string& team : with_quota_) {
    for (TeamQuota& q : ReadQuotas(tx, team)) quotas_[q.team] = std::move(q);
  }
}

const std::string& TeamCharges::TeamOf(const std::string& owner) const {
  auto it = team_of_.find(owner);
  return it == team_of_.end() ? owner : it->second;
}

absl::Status TeamCharges::Admit(const std::string& owner, const QuotaCharge& charge) {
  auto it = quotas_.find(TeamOf(owner));
  if (it == quotas_.end()) return absl::OkStatus();  // No quota (or deleted since Resolve).
  absl::Status fits = CheckQuota(it->second, charge);
  if (fits.ok()) AddCharge(&it->second, charge);
  return fits;
}

absl::Status TeamCharges::Recharge(const std::string& owner, const QuotaCharge& before, const QuotaCharge& charge) {
  auto it = quotas_.find(TeamOf(owner));
  if (it == quotas_.end()) return absl::OkStatus();
  TeamQuota without = it->second;  // What the team holds but this session.
  without.use.gpus -= before.gpus;
  without.use.gpu_memory_bytes -= before.gpu_memory_bytes;
  for (auto& [key, used] : without.use.gpus_by_model) {
    if (ModelMatches(before.gpu_model, key)) used -= before.gpus;
  }
  // Its place among the team's sessions it keeps, whatever max_sessions became meanwhile.
  without.limits.max_sessions = 0;
  return CheckQuota(without, charge);
}

}  // namespace gantry::api
