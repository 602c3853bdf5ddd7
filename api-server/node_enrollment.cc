#include "api-server/node_enrollment.h"

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/pg_pool.h"
#include "common/tokens.h"

namespace gantry::api {
namespace {

// A row of select_join_token.sql / claim_join_token.sql, checked.
absl::StatusOr<JoinGrant> GrantOf(const pqxx::row& row) {
  const std::string id = row[0].as<std::string>();
  if (row[3].as<bool>()) return absl::UnauthenticatedError(absl::StrCat("join token ", id, " has expired"));
  if (row[5].as<bool>()) return absl::UnauthenticatedError(absl::StrCat("join token ", id, " was revoked"));
  if (row[4].as<bool>()) {
    return absl::UnauthenticatedError(
        absl::StrCat("join token ", id, " is used up (", row[6].as<int>(), " certificate(s) minted)"));
  }
  auto role = ParseRole(row[1].as<std::string>());
  if (!role.ok()) return absl::InternalError(absl::StrCat("join token ", id, " has no valid role"));
  return JoinGrant{id, *role, row[2].as<std::string>()};
}

struct Holder {
  bool held = false;
  std::string key_sha256;           // "" for a controller held only by its registration
  std::string previous_key_sha256;  // the key it was renewed from, "" if none
  std::string bound_by;
  bool released = false;  // its node stopped gracefully and handed it back: a join token may claim it
  // The current key, or the one it was just renewed from (the same node's older certificate,
  // still presented on its open connections).
  bool HeldBy(const std::string& key) const {
    return held && !key.empty() && (key == key_sha256 || key == previous_key_sha256);
  }
};

Holder HolderOf(pqxx::transaction_base& tx, const Identity& node) {
  pqxx::result r = tx.exec_params(std::string(sql::kSelectNodeNameHolder), std::string(RoleName(node.role)), node.name);
  if (r.empty()) return {};
  return {true, r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(), r[0][3].as<bool>()};
}

std::string Named(const Identity& node) { return absl::StrCat(RoleName(node.role), " \"", node.name, "\""); }

}  // namespace

std::string JoinGrant::Describe() const {
  return token_id.empty() ? "the cluster join token" : absl::StrCat("join token ", token_id);
}

std::string KeySha256(const std::string& public_key_pem) { return Sha256Hex(public_key_pem); }

absl::StatusOr<JoinGrant> NodeEnrollment::Authenticate(absl::string_view secret) const {
  if (!cluster_.controller.empty() && ConstantTimeEquals(secret, cluster_.controller)) {
    return JoinGrant{"", Role::kController, ""};
  }
  if (!cluster_.worker.empty() && ConstantTimeEquals(secret, cluster_.worker)) return JoinGrant{"", Role::kWorker, ""};
  absl::StatusOr<JoinGrant> grant = absl::UnauthenticatedError("the join token is not this cluster's");
  // Looked up by its hash: the lookup's timing says nothing about the secret.
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kSelectJoinToken), Sha256Hex(secret));
    if (!r.empty()) grant = GrantOf(r[0]);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return grant;
}

absl::StatusOr<std::string> NodeEnrollment::MintWithJoinToken(const JoinGrant& grant, const Identity& wanted,
                                                              const std::string& key_sha256,
                                                              const Signer& sign) const {
  if (grant.role != wanted.role) {
    return absl::PermissionDeniedError(absl::StrCat(grant.Describe(), " mints ", RoleName(grant.role),
                                                    " certificates only, not a ", RoleName(wanted.role), "'s"));
  }
  const bool bound = !grant.node_name.empty();
  if (bound && grant.node_name != wanted.name) {
    return absl::PermissionDeniedError(absl::StrCat(grant.Describe(), " is bound to ", RoleName(grant.role), " \"",
                                                    grant.node_name, "\", not \"", wanted.name, "\""));
  }
  const std::string role(RoleName(wanted.role));
  const std::string taken = absl::StrCat(
      Named(wanted), " is held by a registered node, which renews its certificate with that certificate. To give the "
      "name to a new node, an admin deletes the node first", wanted.role == Role::kController ? " (gantryctl controller delete)" : "",
      ", or creates a join token bound to the name (gantryctl jointokens create --role ", role, " --name ", wanted.name,
      ")");
  absl::StatusOr<std::string> cert = absl::InternalError("not signed");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (!grant.token_id.empty()) {
      // Spent uses, an expiry or a revocation since it was authenticated count.
      pqxx::result r = tx.exec_params(std::string(sql::kClaimJoinToken), grant.token_id);
      if (r.empty()) return absl::UnauthenticatedError(absl::StrCat(grant.Describe(), " no longer exists"));
      if (auto again = GrantOf(r[0]); !again.ok()) return again.status();
    }
    const Holder holder = HolderOf(tx, wanted);
    if (!bound && holder.held && !holder.released) return absl::AlreadyExistsError(taken);
    cert = sign();
    if (!cert.ok()) return cert.status();
    const std::string how = grant.token_id.empty() ? "cluster join token" : absl::StrCat("join token ", grant.token_id);
    if (bound) {  // An admin gave it this name: it takes it over.
      tx.exec_params(std::string(sql::kBindNodeKey), role, wanted.name, key_sha256, how, false);
    } else if (holder.held) {  // Handed back: claimed, unless its node or another came first.
      if (tx.exec_params(std::string(sql::kClaimReleasedNodeName), role, wanted.name, key_sha256, how).empty()) {
        return absl::AlreadyExistsError(taken);
      }
    } else if (tx.exec_params(std::string(sql::kInsertNodeKey), role, wanted.name, key_sha256, how).empty()) {
      return absl::AlreadyExistsError(taken);  // Another node enrolled as it meanwhile.
    }
    if (!grant.token_id.empty()) tx.exec_params(std::string(sql::kCountJoinTokenUse), grant.token_id);
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return cert;
}

absl::StatusOr<std::string> NodeEnrollment::MintRenewal(const Identity& wanted, const std::string& caller_key_sha256,
                                                        const std::string& key_sha256, const Signer& sign) const {
  absl::StatusOr<std::string> cert = absl::InternalError("not signed");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    const Holder holder = HolderOf(tx, wanted);
    if (!holder.key_sha256.empty() && !holder.HeldBy(caller_key_sha256)) {
      return absl::PermissionDeniedError(absl::StrCat(
          Named(wanted), " is now held by another key (bound by ", holder.bound_by,
          "): this certificate no longer renews; the node needs a join token bound to its name"));
    }
    cert = sign();
    if (!cert.ok()) return cert.status();
    tx.exec_params(std::string(sql::kBindNodeKey), std::string(RoleName(wanted.role)), wanted.name, key_sha256,
                   "renewal", holder.HeldBy(caller_key_sha256));
    tx.commit();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return cert;
}

absl::Status NodeEnrollment::AdmitRegistration(const std::string& name, absl::string_view join_token,
                                               const std::string& caller_key_sha256) const {
  const Identity node{Role::kController, name};
  const bool cluster_token = !cluster_.controller.empty() && ConstantTimeEquals(join_token, cluster_.controller);
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    Holder holder = HolderOf(tx, node);
    if (holder.HeldBy(caller_key_sha256)) {
      // Back after handing its name back (a graceful restart that kept its certificate).
      if (holder.released) {
        tx.exec_params(std::string(sql::kHoldNodeNameAgain), "controller", name);
        tx.commit();
      }
      return absl::OkStatus();
    }
    if (!cluster_token) {
      return absl::UnauthenticatedError(
          "join_token: not accepted (registering needs the cluster join token, or a certificate whose key holds the "
          "name)");
    }
    if (!holder.key_sha256.empty()) {
      return absl::PermissionDeniedError(absl::StrCat(
          Named(node), " is registered with another certificate key (bound by ", holder.bound_by,
          "); to give its name to a new node, an admin deletes it first (gantryctl controller delete)"));
    }
    // Held by nobody, or by a registration from before keys were bound: this key holds it now.
    if (holder.held) {
      tx.exec_params(std::string(sql::kBindNodeKey), "controller", name, caller_key_sha256, "registration", false);
    } else if (tx.exec_params(std::string(sql::kInsertNodeKey), "controller", name, caller_key_sha256, "registration")
                   .empty()) {
      return absl::AbortedError(absl::StrCat(Named(node), " was bound by another registration meanwhile; try again"));
    }
    tx.commit();
    return absl::OkStatus();
  });
}

absl::Status NodeEnrollment::Release(const Identity& node, const std::string& caller_key_sha256) const {
  return pool_->Run([&](pqxx::connection& c) {
    pqxx::work tx(c);
    if (tx.exec_params(std::string(sql::kReleaseNodeName), std::string(RoleName(node.role)), node.name,
                       caller_key_sha256)
            .empty()) {
      return absl::PermissionDeniedError(
          absl::StrCat(Named(node), " is not held by this certificate's key: nothing to hand back"));
    }
    tx.commit();
    return absl::OkStatus();
  });
}

}  // namespace gantry::api
