// Who may hold a node name. A controller's or worker's name is bound to the key of the
// certificate last issued for it (or, for a controller with an operator-issued certificate,
// the one it registered with). A join token is for one role, and mints a certificate only for
// a name nobody holds (or whose node handed it back as it stopped), or for the one name it is
// bound to; a renewal only for the key holding the name; a registration only with that key. So a join token, leaked from a node, cannot
// become another node (issue "Tenant isolation").
//
// The cluster-wide tokens from the API server's configuration follow the same rules; they
// are never spent. Thread-safe; blocking (see SessionStore).
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/identity.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct ClusterJoinTokens {
  std::string controller;  // --join-token: controller certificates and registrations
  std::string worker;      // --worker-join-token: worker certificates ("" for none)
};

// What a join token lets its holder ask for.
struct JoinGrant {
  std::string token_id;  // "" for a cluster-wide token
  Role role = Role::kWorker;
  std::string node_name;  // "" for any name nobody holds
  std::string Describe() const;
};

class NodeEnrollment {
 public:
  NodeEnrollment(PgPool* pool, ClusterJoinTokens cluster) : pool_(pool), cluster_(std::move(cluster)) {}

  // The grant of the join token `secret`: UNAUTHENTICATED if it is none of this cluster's, or
  // expired, used up or revoked (saying which: its holder knows the secret already).
  absl::StatusOr<JoinGrant> Authenticate(absl::string_view secret) const;

  using Signer = std::function<absl::StatusOr<std::string>()>;
  // A first certificate for `wanted`, whose CSR's key is `key_sha256`, with `grant`. `sign`
  // runs inside the transaction that re-checks the token, spends one use and binds the name:
  // nothing is written unless it succeeds. PERMISSION_DENIED for a role or name the token is
  // not for, ALREADY_EXISTS for a name a registered node holds (and has not handed back),
  // UNAUTHENTICATED if the token ran out meanwhile.
  absl::StatusOr<std::string> MintWithJoinToken(const JoinGrant& grant, const Identity& wanted,
                                                const std::string& key_sha256, const Signer& sign) const;
  // A renewal for `wanted` by its own certificate, whose key is `caller_key_sha256`:
  // PERMISSION_DENIED if the name is now bound to another key (an admin gave it to a new node).
  absl::StatusOr<std::string> MintRenewal(const Identity& wanted, const std::string& caller_key_sha256,
                                          const std::string& key_sha256, const Signer& sign) const;
  // A controller registering as `name` with the certificate whose key is `caller_key_sha256`,
  // presenting `join_token` (may be empty). Admitted with the cluster controller token or a
  // key that holds the name; a name nobody holds is bound to the key. PERMISSION_DENIED if
  // another key holds it; UNAUTHENTICATED if neither the token nor the key admits it.
  absl::Status AdmitRegistration(const std::string& name, absl::string_view join_token,
                                 const std::string& caller_key_sha256) const;
  // The node `node`, stopping gracefully, hands its name back: its key may take it again
  // (renewing, registering), and until then any join token of its role may claim it, which is
  // how a replaced Kubernetes node pod, whose key lived in memory, rejoins under its node's
  // name. PERMISSION_DENIED if `caller_key_sha256` does not hold the name.
  absl::Status Release(const Identity& node, const std::string& caller_key_sha256) const;

 private:
  PgPool* pool_;
  const ClusterJoinTokens cluster_;
};

// The SHA-256 (hex) of a public key in PEM, as names are bound to.
std::string KeySha256(const std::string& public_key_pem);

}  // namespace gantry::api
