// The certificate matrix (issue 7): certificates that chain to the cluster CA but are expired,
// not yet valid, or name no Gantry identity; and identities used at the wrong door or under
// another's name. Each is refused with the right status and leaves nothing behind. (Another
// CA, and the controller's and registry's doors, are in auth_e2etest.cc.)
#include <catch2/catch.hpp>

#include <fstream>

#include "absl/strings/match.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/registry_service.grpc.pb.h"
#include "gantry/v1/worker_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status TryCreate(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::CreateSessionRequest request;
  request.set_wait_for_running(true);
  *request.mutable_spec() = SleepSpec("3600.8171", 0);
  v1::Session out;
  return v1::SessionService::NewStub(channel)->CreateSession(&ctx, request, &out);
}

// An admin certificate valid from `from_days` for `days` days (gantry-pki's test options).
std::string IssueAdminValidity(LocalFleet& fleet, const std::string& name, int from_days, int days) {
  std::string prefix = fleet.dir().Sub(name);
  RunCommand(BinaryPath("gantry-pki") + " issue --dir '" + fleet.pki().dir() + "' --role admin --name " + name +
             " --days " + std::to_string(days) + " --not-before-offset-days " + std::to_string(from_days) +
             " --out '" + prefix + "'");
  return prefix;
}

// A certificate from the cluster CA that carries no spiffe://gantry identity.
std::string IssueWithoutIdentity(LocalFleet& fleet) {
  auto ca_cert = ReadFile(fleet.pki().ca());
  auto ca_key = ReadFile(fleet.pki().dir() + "/ca.key");
  auto key = x509::NewPrivateKey();
  absl::Time now = absl::Now();
  x509::Leaf leaf{*x509::PublicKeyOf(*key), Identity{Role::kAdmin, "ops"}, {}, {}, now - absl::Minutes(1),
                  now + absl::Hours(1)};
  leaf.with_identity = false;
  auto cert = x509::SignLeaf(leaf, *ca_cert, *ca_key);
  REQUIRE(cert.ok());
  REQUIRE(x509::Inspect(*cert)->spiffe_id.empty());
  std::string prefix = fleet.dir().Sub("anonymous");
  std::ofstream(prefix + ".crt") << *cert;
  std::ofstream(prefix + ".key") << *key;
  return prefix;
}

}  // namespace

TEST_CASE("cert matrix: expired, not yet valid and identity-less certificates are refused, and nothing is written",
          "[e2e][auth][faults]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto sessions = [&] { return fleet.db().Scalar("SELECT count(*) FROM sessions"); };

  SECTION("expired: the handshake fails") {
    grpc::Status s = TryCreate(fleet.ChannelWithCert(IssueAdminValidity(fleet, "expired", -10, 1)));
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  SECTION("not yet valid: the handshake fails") {
    grpc::Status s = TryCreate(fleet.ChannelWithCert(IssueAdminValidity(fleet, "future", 2, 30)));
    CHECK(s.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  SECTION("the CA's own signature but no Gantry identity: UNAUTHENTICATED") {
    grpc::Status s = TryCreate(fleet.ChannelWithCert(IssueWithoutIdentity(fleet)));
    CHECK(s.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  SECTION("for contrast, a valid admin certificate is served") {
    CHECK(TryCreate(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops")).ok());
    CHECK(sessions() == "1");
    return;
  }
  CHECK(sessions() == "0");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM session_events") == "0");
  CHECK(PidsWithCmdline("3600.3808").empty());
}

TEST_CASE("cert matrix: a worker cannot pose as another worker or as a controller", "[e2e][auth][faults]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");  // worker w1 connected to node1
  auto w9 = fleet.ChannelTo(std::stoi(fleet.controller_address().substr(fleet.controller_address().rfind(':') + 1)),
                            fleet.pki().Issue("worker", "w9"));

  SECTION("registering under w1's name with w9's certificate") {
    v1::RegisterWorkerRequest request;
    request.set_name("w1");
    v1::RegisterWorkerResponse response;
    grpc::ClientContext ctx;
    grpc::Status s = v1::WorkerService::NewStub(w9)->RegisterWorker(&ctx, request, &response);
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(absl::StrContains(s.error_message(), "does not match the certificate's worker \"w9\""));
    // w1 is untouched: still the one worker, and sessions still go to it.
    v1::Session session;
    REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.7172"), &session).ok());
    CHECK(session.worker_id() == "node1/w1");
  }
  SECTION("a worker certificate at the API server's registry") {
    auto api = fleet.ChannelWithCert(fleet.pki().dir() + "/worker-w9");
    v1::RegisterControllerRequest request;
    request.set_join_token(kJoinToken);
    request.set_name("w9");
    v1::RegisterControllerResponse response;
    grpc::ClientContext ctx;
    grpc::Status s = v1::RegistryService::NewStub(api)->RegisterController(&ctx, request, &response);
    CHECK(s.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(fleet.db().Scalar("SELECT count(*) FROM controllers WHERE name = 'w9'") == "0");
  }
}

}  // namespace gantry::testing
