// Join tokens in PostgreSQL, as an admin manages them (AdminService.CreateJoinToken,
// ListJoinTokens, RevokeJoinToken). What a token buys is decided by NodeEnrollment. Requests
// are validated here, naming the field. Thread-safe; blocking (see SessionStore).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

class JoinTokenStore {
 public:
  explicit JoinTokenStore(PgPool* pool) : pool_(pool) {}

  // A new token and its secret (stored only as a hash). `created_by`: the admin's principal.
  absl::StatusOr<v1::CreateJoinTokenResponse> Create(const v1::CreateJoinTokenRequest& request,
                                                     const std::string& created_by);
  absl::StatusOr<v1::ListJoinTokensResponse> List();
  absl::Status Revoke(const std::string& id);  // NOT_FOUND

 private:
  PgPool* pool_;
};

// The secret a node presents. The prefix tells a leaked one for what it is.
constexpr char kJoinTokenPrefix[] = "gantry_join_";

}  // namespace gantry::api
