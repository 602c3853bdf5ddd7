// Who is calling: the role and name carried in the peer certificate's SPIFFE URI SAN
// (spiffe://gantry/<role>[/<name>]), or in an API key. Every server checks the role, not
// only that the certificate chains to the cluster CA.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace grpc {
class AuthContext;
}

namespace gantry {

enum class Role { kApiServer, kController, kWorker, kAdmin, kUser };

absl::string_view RoleName(Role role);
absl::StatusOr<Role> ParseRole(absl::string_view name);

struct Identity {
  Role role;
  // Empty for the API server; the controller/worker/user/admin name otherwise.
  std::string name;

  // The principal that owns sessions: "user/NAME" or "admin/NAME".
  std::string Principal() const;
  std::string SpiffeId() const;
};

// Names: 1..63 bytes of [a-z0-9], '-', '.', '_', starting with a letter or digit.
bool IsValidName(absl::string_view name);

// Parses spiffe://gantry/api-server, spiffe://gantry/{controller,worker,admin,user}/NAME.
absl::StatusOr<Identity> ParseSpiffeId(absl::string_view uri);

// The identity in the authenticated peer's certificate. UNAUTHENTICATED when there is no
// certificate or it carries no (or more than one) gantry SPIFFE ID.
absl::StatusOr<Identity> PeerIdentity(const grpc::AuthContext& auth);

// The public key (SubjectPublicKeyInfo PEM) of the authenticated peer's certificate.
absl::StatusOr<std::string> PeerPublicKey(const grpc::AuthContext& auth);

// The peer's identity if its certificate has `role`; UNAUTHENTICATED without a usable
// certificate (`auth` may be null), PERMISSION_DENIED naming `what` for another role.
absl::StatusOr<Identity> RequirePeerRole(const grpc::AuthContext* auth, Role role,
                                         absl::string_view what);

}  // namespace gantry
