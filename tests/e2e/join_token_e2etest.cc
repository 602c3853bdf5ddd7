// Join tokens that cannot become another node: per role, bound names, expiry, uses and
// revocation, the names registered nodes hold, and registrations that must bring the key that
// holds their name. Every refusal is checked for its status, and for nothing issued or changed.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"
#include "gantry/v1/registry_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

struct JoinFleet {
  LocalFleet fleet;
  std::unique_ptr<v1::AdminService::Stub> admin;

  JoinFleet() {
    fleet.api_env["GANTRY_NODE_SIGNER_CERT"] = fleet.pki().ca();
    fleet.api_env["GANTRY_NODE_SIGNER_KEY"] = fleet.pki().dir() + "/ca.key";
    fleet.StartApi();
    admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  }

  // A join token's secret; REQUIREs success.
  std::string Token(const std::string& role, const std::string& name = "", int max_uses = 1, int ttl_seconds = 0,
                    std::string* id = nullptr) {
    v1::CreateJoinTokenRequest request;
    request.set_role(role);
    request.set_node_name(name);
    request.set_max_uses(max_uses);
    if (ttl_seconds > 0) request.mutable_ttl()->set_seconds(ttl_seconds);
    v1::CreateJoinTokenResponse response;
    grpc::ClientContext ctx;
    grpc::Status s = admin->CreateJoinToken(&ctx, request, &response);
    INFO(s.error_message());
    REQUIRE(s.ok());
    if (id != nullptr) *id = response.join_token().id();
    return response.secret();
  }

  // IssueNodeCertificate for ROLE/NAME with a fresh key, authenticated by `token` or, if
  // `channel` is given, by its certificate. `key` gets the private key.
  grpc::Status Issue(const std::string& role, const std::string& name, const std::string& token,
                     std::shared_ptr<grpc::Channel> channel = nullptr, std::string* key = nullptr,
                     std::string* chain = nullptr) {
    auto private_key = x509::NewPrivateKey();
    v1::IssueNodeCertificateRequest request;
    request.set_role(role);
    request.set_name(name);
    request.set_csr_pem(*x509::MakeCsr(*private_key));
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::IssueNodeCertificateResponse response;
    grpc::Status s = v1::NodeCertificateService::NewStub(channel ? channel : fleet.ChannelWithoutCert())
                         ->IssueNodeCertificate(&ctx, request, &response);
    if (key != nullptr) *key = *private_key;
    if (chain != nullptr) *chain = response.certificate_chain_pem();
    return s;
  }

  // A channel presenting a certificate the API server issued (chain, key).
  std::shared_ptr<grpc::Channel> ChannelAs(const std::string& prefix, const std::string& chain,
                                           const std::string& key) {
    REQUIRE(WriteFile(prefix + ".crt", chain, 0644).ok());
    REQUIRE(WriteFile(prefix + ".key", key, 0600).ok());
    return fleet.ChannelWithCert(prefix);
  }

  int Issued() {
    const std::string log = fleet.api().Log();
    int n = 0;
    for (size_t at = 0; (at = log.find("node certificates: issued", at)) != std::string::npos; ++at) ++n;
    return n;
  }
  std::string Identities() {
    return fleet.db().Scalar(
        "SELECT coalesce(string_agg(role || '/' || name || ':' || key_sha256, ',' ORDER BY role, name), '') "
        "FROM node_identities");
  }
};

void CheckRefused(const grpc::Status& status, grpc::StatusCode code, const std::string& words) {
  INFO(status.error_code() << ": " << status.error_message());
  CHECK(status.error_code() == code);
  CHECK(absl::StrContains(status.error_message(), words));
}

grpc::Status Register(const std::shared_ptr<grpc::Channel>& channel, const std::string& name,
                      const std::string& join_token, const std::string& endpoint,
                      v1::RegisterControllerResponse* response = nullptr) {
  v1::RegisterControllerRequest request;
  request.set_join_token(join_token);
  request.set_name(name);
  request.set_type("gpu-node");
  request.set_endpoint(endpoint);
  grpc::ClientContext ctx;
  v1::RegisterControllerResponse ignored;
  return v1::RegistryService::NewStub(channel)->RegisterController(&ctx, request, response ? response : &ignored);
}

}  // namespace

TEST_CASE("join tokens mint only their role, their name, while they last, and never a name a node holds",
          "[e2e][auth][bootstrap]") {
  JoinFleet f;
  // A worker token mints a worker certificate, once.
  const std::string worker_token = f.Token("worker");
  std::string w5_key, w5_chain;
  REQUIRE(f.Issue("worker", "w5", worker_token, nullptr, &w5_key, &w5_chain).ok());
  const std::string after_first = f.Identities();
  REQUIRE(absl::StrContains(after_first, "worker/w5:"));
  CHECK(f.Issued() == 1);

  CheckRefused(f.Issue("worker", "w6", worker_token), grpc::StatusCode::UNAUTHENTICATED, "used up");
  // A worker's token mints no controller certificate; the cluster's controller token no worker's.
  CheckRefused(f.Issue("controller", "node9", f.Token("worker", "", 5)), grpc::StatusCode::PERMISSION_DENIED,
               "mints worker certificates only");
  CheckRefused(f.Issue("worker", "w9", kJoinToken), grpc::StatusCode::PERMISSION_DENIED,
               "mints controller certificates only");
  // A name a node holds: neither a fresh token nor the cluster's may take it.
  CheckRefused(f.Issue("worker", "w5", f.Token("worker")), grpc::StatusCode::ALREADY_EXISTS,
               "worker \"w5\" is held by a registered node");
  f.fleet.StartController("node1");  // Registered with its operator-issued certificate, whose key now holds node1.
  const std::string node1_row = "SELECT c.endpoint || ' ' || t.token_sha256 FROM controllers c "
                                "JOIN controller_tokens t ON t.controller_id = c.id WHERE c.name = 'node1'";
  // Its key holds the name from the moment its certificate is first seen, a little before its
  // registration is stored: wait for both, or node1's row would change under the checks below.
  REQUIRE(WaitFor([&] {
    return f.fleet.db().Scalar("SELECT count(*) FROM node_identities WHERE name = 'node1'") == "1" &&
           !f.fleet.db().Scalar(node1_row).empty();
  }, absl::Seconds(15)));
  const std::string held = f.Identities();
  const std::string node1_before = f.fleet.db().Scalar(node1_row);
  CheckRefused(f.Issue("controller", "node1", f.Token("controller")), grpc::StatusCode::ALREADY_EXISTS,
               "controller \"node1\" is held by a registered node");
  CheckRefused(f.Issue("controller", "node1", kJoinToken), grpc::StatusCode::ALREADY_EXISTS, "gantryctl controller delete");
  // A bound token mints its own name only.
  CheckRefused(f.Issue("worker", "w7", f.Token("worker", "w8")), grpc::StatusCode::PERMISSION_DENIED,
               "is bound to worker \"w8\", not \"w7\"");
  // Expired and revoked tokens mint nothing.
  std::string expiring_id;
  const std::string expiring = f.Token("worker", "", 1, 1, &expiring_id);
  const std::string expiry = f.fleet.db().Scalar("SELECT expires_at FROM join_tokens WHERE id = '" + expiring_id + "'");
  REQUIRE(WaitFor([&] { return f.fleet.db().Scalar("SELECT now() > '" + expiry + "'::timestamptz") == "t"; },
                  absl::Seconds(5)));
  CheckRefused(f.Issue("worker", "w10", expiring), grpc::StatusCode::UNAUTHENTICATED, "has expired");
  std::string revoked_id;
  const std::string revoked = f.Token("worker", "", 3, 0, &revoked_id);
  {
    v1::RevokeJoinTokenRequest request;
    request.set_id(revoked_id);
    v1::RevokeJoinTokenResponse response;
    grpc::ClientContext ctx;
    REQUIRE(f.admin->RevokeJoinToken(&ctx, request, &response).ok());
  }
  CheckRefused(f.Issue("worker", "w11", revoked), grpc::StatusCode::UNAUTHENTICATED, "was revoked");
  CheckRefused(f.Issue("worker", "w12", "gantry_join_guessed-0123456789"), grpc::StatusCode::UNAUTHENTICATED,
               "not this cluster's");

  // None of that issued a certificate, bound a name or changed node1.
  CHECK(f.Issued() == 1);
  CHECK(f.Identities() == held);
  CHECK(f.fleet.db().Scalar(node1_row) == node1_before);
  CHECK(f.fleet.db().Scalar("SELECT count(*) FROM controllers") == "1");

  // Only hashes are stored, and the list shows what each token did.
  CHECK(f.fleet.db().Scalar("SELECT count(*) FROM join_tokens WHERE secret_sha256 LIKE 'gantry_join_%'") == "0");
  v1::ListJoinTokensResponse listed;
  grpc::ClientContext list_ctx;
  REQUIRE(f.admin->ListJoinTokens(&list_ctx, v1::ListJoinTokensRequest(), &listed).ok());
  int used_up = 0, revoked_seen = 0;
  for (const auto& t : listed.join_tokens()) {
    CHECK(t.created_by() == "admin/ops");
    used_up += t.uses() == t.max_uses();
    revoked_seen += t.has_revoke_time();
  }
  CHECK(used_up == 1);
  CHECK(revoked_seen == 1);
  CHECK(listed.DebugString().find("gantry_join_") == std::string::npos);

  SECTION("a token bound to a held name gives it to a new node, and the old certificate no longer renews") {
    std::string new_key, new_chain;
    REQUIRE(f.Issue("worker", "w5", f.Token("worker", "w5"), nullptr, &new_key, &new_chain).ok());
    auto old_w5 = f.ChannelAs(f.fleet.dir().Sub("old-w5-cert"), w5_chain, w5_key);
    CheckRefused(f.Issue("worker", "w5", "", old_w5), grpc::StatusCode::PERMISSION_DENIED, "no longer renews");
    auto new_w5 = f.ChannelAs(f.fleet.dir().Sub("new-w5-cert"), new_chain, new_key);
    CHECK(f.Issue("worker", "w5", "", new_w5).ok());
    CHECK(f.Issued() == 3);
  }
}

TEST_CASE("a controller registers only with the key that holds its name, until an admin deletes it",
          "[e2e][auth][bootstrap]") {
  JoinFleet f;
  f.fleet.StartController("node1");
  const std::string row = "SELECT c.endpoint || ' ' || t.token_sha256 FROM controllers c "
                          "JOIN controller_tokens t ON t.controller_id = c.id WHERE c.name = 'node1'";
  // Registered, not only bootstrapped: the name is bound to the key when the certificate is
  // issued, and the registration comes after (reading the row in between read "", as an ASan
  // run once did).
  REQUIRE(WaitFor([&] {
    return f.fleet.db().Scalar("SELECT count(*) FROM node_identities") == "1" && !f.fleet.db().Scalar(row).empty();
  }, absl::Seconds(15)));
  const std::string before = f.fleet.db().Scalar(row);
  const std::string bound = f.fleet.db().Scalar("SELECT key_sha256 FROM node_identities");

  // Another certificate for node1 (from the CA, a new key): even with the cluster's join token it
  // cannot take node1's registration, and without it is not admitted at all.
  auto impostor = f.fleet.ChannelWithCert(f.fleet.pki().Issue("controller", "node1", f.fleet.dir().Sub("impostor")));
  CheckRefused(Register(impostor, "node1", kJoinToken, "127.0.0.1:1"), grpc::StatusCode::PERMISSION_DENIED,
               "registered with another certificate key");
  CheckRefused(Register(impostor, "node1", "", "127.0.0.1:1"), grpc::StatusCode::UNAUTHENTICATED, "join_token");
  CHECK(f.fleet.db().Scalar(row) == before);
  CHECK(f.fleet.db().Scalar("SELECT key_sha256 FROM node_identities") == bound);

  // The controller itself re-registers (after a restart) by its key, no token needed.
  auto own = f.fleet.ChannelWithCert(f.fleet.pki().dir() + "/controller-node1");
  CHECK(Register(own, "node1", "", f.fleet.controller_address()).ok());

  // Once an admin deletes it (no live sessions), the name is free for the new key.
  f.fleet.controller().Signal(SIGKILL);
  REQUIRE(f.fleet.controller().Wait(absl::Seconds(10)) != -1);
  v1::DeleteControllerRequest del;
  del.set_id(f.fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'"));
  v1::DeleteControllerResponse deleted;
  grpc::ClientContext del_ctx;
  grpc::Status s = f.admin->DeleteController(&del_ctx, del, &deleted);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(f.fleet.db().Scalar("SELECT count(*) FROM node_identities") == "0");
  CHECK(Register(impostor, "node1", kJoinToken, "127.0.0.1:1").ok());
  CHECK(f.fleet.db().Scalar("SELECT key_sha256 FROM node_identities") != bound);
}

}  // namespace gantry::testing
