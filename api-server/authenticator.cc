#include "api-server/authenticator.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/server_context.h>

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/nontransaction>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/pg_pool.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {
constexpr absl::string_view kBearerPrefix = "Bearer ";
constexpr size_t kMaxKeyBytes = 256;

bool ArrivedOverTls(const grpc::AuthContext* context) {
  return context != nullptr && !context->FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME).empty();
}
}  // namespace

absl::Status Authenticator::InstallBootstrapKey(const std::string& key) {
  if (key.empty()) return absl::OkStatus();
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    tx.exec_params(std::string(sql::kUpsertBootstrapApiKey), Sha256Hex(key));
    return absl::OkStatus();
  });
}

absl::StatusOr<Caller> Authenticator::LookupApiKey(const std::string& key) {
  static const absl::Status kRefused =
      absl::UnauthenticatedError("API key not accepted (unknown, revoked or expired)");
  if (key.empty() || key.size() > kMaxKeyBytes) return kRefused;
  absl::StatusOr<Caller> out = kRefused;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectApiKey), Sha256Hex(key));
    if (r.empty()) return absl::OkStatus();
    auto role = ParseRole(r[0][1].as<std::string>());
    if (!role.ok()) return role.status();
    out = Caller{*role, r[0][0].as<std::string>()};
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

CallCredentials CallCredentials::Of(const grpc::ServerContextBase& context) {
  CallCredentials out;
  const auto& metadata = context.client_metadata();
  auto auth = metadata.find("authorization");
  if (auth != metadata.end()) out.authorization.emplace(auth->second.data(), auth->second.size());
  out.peer = context.peer();
  out.auth_context = context.auth_context();
  auto forwarded = metadata.find(kForwardedPeerHeader);
  if (forwarded != metadata.end() && !ArrivedOverTls(out.auth_context.get())) {
    out.peer.assign(forwarded->second.data(), forwarded->second.size());
  }
  return out;
}

absl::StatusOr<Caller> Authenticator::AuthenticateClient(const grpc::ServerContext& context) {
  return AuthenticateClient(CallCredentials::Of(context));
}

std::optional<absl::StatusOr<Caller>> Authenticator::AuthenticateClientAtHand(const CallCredentials& credentials) {
  if (credentials.authorization.has_value()) return std::nullopt;
  return AuthenticateClient(credentials);
}

absl::StatusOr<Caller> Authenticator::AuthenticateClient(const CallCredentials& credentials) {
  if (credentials.authorization.has_value()) {
    absl::string_view value(*credentials.authorization);
    return limiter_->Guard(credentials.peer, [&]() -> absl::StatusOr<Caller> {
      if (!absl::StartsWith(value, kBearerPrefix)) {
        return absl::UnauthenticatedError("authorization header must be \"Bearer <api key>\"");
      }
      return LookupApiKey(std::string(value.substr(kBearerPrefix.size())));
    });
  }
  if (credentials.auth_context == nullptr) return absl::UnauthenticatedError("no credentials presented");
  auto identity = PeerIdentity(*credentials.auth_context);
  if (!identity.ok()) {
    return absl::UnauthenticatedError(absl::StrCat(
        identity.status().message(),
        "; present an API key (authorization: Bearer ...) or a user/admin client certificate"));
  }
  if (identity->role != Role::kUser && identity->role != Role::kAdmin) {
    return absl::PermissionDeniedError(absl::StrCat("a ", RoleName(identity->role),
                                                    " certificate cannot call client APIs"));
  }
  return Caller{identity->role, identity->Principal()};
}

absl::StatusOr<Caller> Authenticator::AuthenticateAdmin(const grpc::ServerContext& context) {
  auto caller = AuthenticateClient(context);
  if (!caller.ok()) return caller;
  if (!caller->is_admin()) {
    return absl::PermissionDeniedError(
        absl::StrCat(caller->principal, " is not an admin; AdminService needs the admin role"));
  }
  return caller;
}

absl::StatusOr<Identity> Authenticator::AuthenticateController(
    const grpc::ServerContext& context) {
  return RequirePeerRole(context.auth_context().get(), Role::kController, "RegistryService");
}

}  // namespace gantry::api
