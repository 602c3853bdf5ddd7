// Decides who a client-facing call comes from: a bearer API key (looked up by its SHA-256) or
// the client certificate's SPIFFE identity. Only user and admin identities may use the client
// APIs; controllers use RegistryService only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "api-server/failed_auth_limiter.h"
#include "common/identity.h"

namespace grpc {
class AuthContext;
class ServerContext;
class ServerContextBase;
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

// What a call presents to prove who it comes from, copied out of its context so it can be
// checked on another thread, after the call's handler has returned (a reactor's admission runs
// on a pool: an API key is looked up in PostgreSQL).
// The HTTP gateway (api-server/http) calls this server in-process, with no socket and no TLS,
// and names its HTTP client's address in this header (as gRPC writes a peer: "ipv4:IP:PORT",
// "ipv6:[IP]:PORT"), so the guessing limiter counts each HTTP
// client apart. Only an in-process call is believed: every network listener of gantry-api is
// TLS, so a call from the network has a transport security type, and its header is ignored.
inline constexpr char kForwardedPeerHeader[] = "gantry-forwarded-peer";

struct CallCredentials {
  std::optional<std::string> authorization;  // The "authorization" header, as sent.
  std::string peer;                          // Where it comes from (the guessing limiter's key).
  std::shared_ptr<const grpc::AuthContext> auth_context;  // The TLS peer's certificate.

  static CallCredentials Of(const grpc::ServerContextBase& context);
};

class Authenticator {
 public:
  // `limiter` slows down guessing of API keys.
  Authenticator(PgPool* pool, FailedAuthLimiter* limiter) : pool_(pool), limiter_(limiter) {}

  // A user or admin caller; UNAUTHENTICATED without valid credentials, PERMISSION_DENIED for a
  // certificate of another role (a worker or controller calling client APIs), RESOURCE_EXHAUSTED
  // for an API key from an address that has presented too many wrong ones.
  absl::StatusOr<Caller> AuthenticateClient(const grpc::ServerContext& context);
  absl::StatusOr<Caller> AuthenticateClient(const CallCredentials& credentials);

  // As AuthenticateClient where that needs nothing but the call itself (a certificate); nullopt
  // where it would ask PostgreSQL (an API key). Never waits: for a reaction, which must not.
  std::optional<absl::StatusOr<Caller>> AuthenticateClientAtHand(const CallCredentials& credentials);

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
