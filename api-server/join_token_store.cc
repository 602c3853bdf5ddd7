#include "api-server/join_token_store.h"

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "api-server/request_validation.h"
#include "api-server/sql_queries.h"
#include "common/identity.h"
#include "common/pg_pool.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

constexpr absl::Duration kDefaultTtl = absl::Hours(24);
constexpr absl::Duration kMaxTtl = absl::Hours(24 * 30);
constexpr int kMaxUses = 10000;

}  // namespace

absl::StatusOr<v1::CreateJoinTokenResponse> JoinTokenStore::Create(const v1::CreateJoinTokenRequest& request,
                                                                   const std::string& created_by) {
  if (request.role() != "controller" && request.role() != "worker") {
    return absl::InvalidArgumentError("role: must be \"controller\" or \"worker\"");
  }
  if (!request.node_name().empty() && !IsValidName(request.node_name())) {
    return absl::InvalidArgumentError("node_name: 1..63 of [a-z0-9._-], starting with a letter or digit, or empty");
  }
  absl::Duration ttl = kDefaultTtl;
  if (request.has_ttl()) {
    ttl = absl::Seconds(request.ttl().seconds()) + absl::Nanoseconds(request.ttl().nanos());
    if (ttl < absl::Seconds(1) || ttl > kMaxTtl) {
      return absl::InvalidArgumentError(
          absl::StrCat("ttl: must be 1s..", absl::FormatDuration(kMaxTtl), " (default 24h)"));
    }
  }
  const int max_uses = request.max_uses() == 0 ? 1 : request.max_uses();
  if (max_uses < 1 || max_uses > kMaxUses) {
    return absl::InvalidArgumentError(absl::StrCat("max_uses: must be 1..", kMaxUses, " (default 1)"));
  }
  v1::CreateJoinTokenResponse response;
  response.set_secret(absl::StrCat(kJoinTokenPrefix, RandomToken(32)));
  v1::JoinToken* token = response.mutable_join_token();
  token->set_role(request.role());
  token->set_node_name(request.node_name());
  token->set_max_uses(max_uses);
  token->set_created_by(created_by);
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kInsertJoinToken), request.role(), request.node_name(),
                                    Sha256Hex(response.secret()), absl::ToDoubleSeconds(ttl), max_uses, created_by);
    token->set_id(r[0][0].as<std::string>());
    token->mutable_expire_time()->set_seconds(r[0][1].as<int64_t>());
    token->mutable_create_time()->set_seconds(r[0][2].as<int64_t>());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  spdlog::info("join token {} created by {} for {} {}, {} use(s), until {}", token->id(), created_by,
               request.role(), request.node_name().empty() ? "(any new name)" : request.node_name(), max_uses,
               absl::FormatTime(absl::FromUnixSeconds(token->expire_time().seconds())));
  return response;
}

absl::StatusOr<v1::ListJoinTokensResponse> JoinTokenStore::List() {
  v1::ListJoinTokensResponse response;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec(std::string(sql::kSelectJoinTokens))) {
      v1::JoinToken* t = response.add_join_tokens();
      t->set_id(row[0].as<std::string>());
      t->set_role(row[1].as<std::string>());
      t->set_node_name(row[2].as<std::string>());
      t->mutable_expire_time()->set_seconds(row[3].as<int64_t>());
      t->set_max_uses(row[4].as<int32_t>());
      t->set_uses(row[5].as<int32_t>());
      t->set_created_by(row[6].as<std::string>());
      t->mutable_create_time()->set_seconds(row[7].as<int64_t>());
      if (row[8].as<int64_t>() != 0) t->mutable_last_use_time()->set_seconds(row[8].as<int64_t>());
      if (row[9].as<int64_t>() != 0) t->mutable_revoke_time()->set_seconds(row[9].as<int64_t>());
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::Status JoinTokenStore::Revoke(const std::string& id) {
  if (!IsUuid(id)) return absl::InvalidArgumentError("id: a join token id, as CreateJoinToken or ListJoinTokens show it");
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !tx.exec_params(std::string(sql::kRevokeJoinToken), id).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!found) return absl::NotFoundError(absl::StrCat("id: no join token ", id));
  spdlog::info("join token {} revoked", id);
  return absl::OkStatus();
}

}  // namespace gantry::api
