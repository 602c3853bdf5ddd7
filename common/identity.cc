#include "common/identity.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/x509.h"

namespace gantry {
namespace {
constexpr absl::string_view kSpiffePrefix = "spiffe://gantry/";
}

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kApiServer: return "api-server";
    case Role::kController: return "controller";
    case Role::kWorker: return "worker";
    case Role::kAdmin: return "admin";
    case Role::kUser: return "user";
  }
  return "unknown";
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  for (Role r : {Role::kApiServer, Role::kController, Role::kWorker, Role::kAdmin, Role::kUser}) {
    if (RoleName(r) == name) return r;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", name, "\": expected api-server, controller, worker, admin or user"));
}

std::string Identity::Principal() const { return absl::StrCat(RoleName(role), "/", name); }

std::string Identity::SpiffeId() const {
  if (role == Role::kApiServer) return absl::StrCat(kSpiffePrefix, RoleName(role));
  return absl::StrCat(kSpiffePrefix, RoleName(role), "/", name);
}

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

absl::StatusOr<Identity> ParseSpiffeId(absl::string_view uri) {
  if (!absl::StartsWith(uri, kSpiffePrefix)) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate URI SAN \"", uri, "\" is not a spiffe://gantry/ identity"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(uri.substr(kSpiffePrefix.size()), '/');
  auto role = ParseRole(parts[0]);
  if (!role.ok()) return absl::UnauthenticatedError(role.status().message());
  if (*role == Role::kApiServer) {
    if (parts.size() != 1) return absl::UnauthenticatedError("api-server identity takes no name");
    return Identity{*role, ""};
  }
  if (parts.size() != 2 || !IsValidName(parts[1])) {
    return absl::UnauthenticatedError(
        absl::StrCat("certificate identity \"", uri, "\" needs exactly one valid NAME"));
  }
  return Identity{*role, std::string(parts[1])};
}

absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("no client certificate presented");
  }
  const Identity* found = nullptr;
  Identity identity;
  for (const auto& value : auth.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    absl::string_view uri(value.data(), value.size());
    if (!absl::StartsWith(uri, kSpiffePrefix)) continue;
    if (found != nullptr) {
      return absl::UnauthenticatedError("certificate carries more than one gantry identity");
    }
    auto parsed = ParseSpiffeId(uri);
    if (!parsed.ok()) return parsed.status();
    identity = *parsed;
    found = &identity;
  }
  if (found == nullptr) {
    return absl::UnauthenticatedError("client certificate has no spiffe://gantry/ URI SAN");
  }
  return identity;
}

absl::StatusOr<std::string> PeerPublicKey(const grpc::AuthContext& auth) {
  auto pem = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (!auth.IsPeerAuthenticated() || pem.empty()) return absl::UnauthenticatedError("no client certificate presented");
  return x509::PublicKeyOfCert(std::string(pem.front().data(), pem.front().size()));
}

absl::StatusOr<Identity> RequirePeerRole(const grpc::AuthContext* auth, Role role,
                                         absl::string_view what) {
  if (auth == nullptr) return absl::UnauthenticatedError("no client certificate");
  auto identity = PeerIdentity(*auth);
  if (!identity.ok()) return identity.status();
  if (identity->role != role) {
    return absl::PermissionDeniedError(absl::StrCat(what, " needs a certificate of role ",
                                                    RoleName(role), ", not ", RoleName(identity->role)));
  }
  return identity;
}

}  // namespace gantry
