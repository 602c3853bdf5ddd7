// Decides who a client-facing call comes from: a bearer API key (looked up by its SHA-256) or
// the client certificate's SPIFFE identity. Only user and admin identities may use the client
// APIs; controllers use RegistryService only.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "api-server/failed_auth_limiter.h"
#include "common/identity.h"

namespace grpc {
class ServerContext;
}

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct Caller {
  Role role = Role::kUser;
  // "user/alice", "admin/ops": owner of the sessions this caller creates.
  std::string principal;
  bool is_admin() const { return role == Role::kAdmin; }
};

class Authenticator {
 public:
  // `limiter` slows down guessing of API keys.
  Authenticator(PgPool* pool, FailedAuthLimiter* limiter) : pool_(pool), limiter_(limiter) {}

  // A user or admin caller; UNAUTHENTICATED without valid credentials, PERMISSION_DENIED for a
  // certificate of another role (a worker or controller calling client APIs), RESOURCE_EXHAUSTED
  // for an API key from an address that has presented too many wrong ones.
  absl::StatusOr<Caller> AuthenticateClient(const grpc::ServerContext& context);

  // As AuthenticateClient, and PERMISSION_DENIED unless the caller is an admin.
  absl::StatusOr<Caller> AuthenticateAdmin(const grpc::ServerContext& context);

  // The controller certificate's identity; PERMISSION_DENIED for any other role.
  absl::StatusOr<Identity> AuthenticateController(const grpc::ServerContext& context);

  // Stores the configured bootstrap admin key (hashed). Called once the schema exists.
  absl::Status InstallBootstrapKey(const std::string& key);

 private:
  absl::StatusOr<Caller> LookupApiKey(const std::string& key);

  PgPool* pool_;
  FailedAuthLimiter* limiter_;
};

}  // namespace gantry::api
