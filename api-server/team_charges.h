// What the creates of one transaction are charged to: each owner's team, and the quota of each
// team that has one, read under the team's lock, so the checks of CheckQuota hold until the
// transaction commits on however many replicas creates run. Also the reading of quotas with
// their use, for AdminService.
//
// The order a reserving transaction takes its locks in: the controller's, then its teams' in
// ascending key order. Nothing waits for a controller's lock while holding a team's, so no
// two transactions wait for each other.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <pqxx/transaction_base>

#include "absl/status/status.h"
#include "api-server/team_quota.h"

namespace gantry::api {

// select_quotas.sql: the quota of `team`, or of every team ("").
std::vector<TeamQuota> ReadQuotas(pqxx::transaction_base& tx, const std::string& team);

// The limits of a quota as stored (max_gpus_by_model: a JSON object) and back.
std::string ModelLimitsJson(const std::map<std::string, int>& limits);

class TeamCharges {
 public:
  // Before the controller's lock: the team of each of `owners`, and which have a quota.
  void Resolve(pqxx::transaction_base& tx, const std::vector<std::string>& owners);
  // Instead of Resolve: `owner`'s sessions are charged to `team` (as a session's row records).
  void Assume(const std::string& owner, const std::string& team, bool has_quota);
  // After it: each team with a quota locked, in key order, and its quota read.
  void LockAndRead(pqxx::transaction_base& tx);

  // The team `owner` (resolved) is charged to.
  const std::string& TeamOf(const std::string& owner) const;
  // CheckQuota for a session of `owner`'s, counted against its team if it fits.
  absl::Status Admit(const std::string& owner, const QuotaCharge& charge);
  // As Admit, for a session already counted in its team's use being charged `charge` instead
  // of `before` (a reservation moved to another controller).
  absl::Status Recharge(const std::string& owner, const QuotaCharge& before, const QuotaCharge& charge);

 private:
  std::map<std::string, std::string> team_of_;
  std::set<std::string> with_quota_;
  std::map<std::string, TeamQuota> quotas_;
};

}  // namespace gantry::api
