// The node TLS bootstrap: controllers and workers that start with only the cluster CA and the
// join token get their certificates from the API server, run sessions with them, renew them
// before they expire without a restart, and every wrong request is refused with nothing issued.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

constexpr char kWorkerJoinToken[] = "test-worker-join-token-0123";

// The API server signs with the test CA; controller node1 and worker w1 bring no certificate.
void UseBootstrap(LocalFleet& fleet) {
  fleet.api_env["GANTRY_NODE_SIGNER_CERT"] = fleet.pki().ca();
  fleet.api_env["GANTRY_NODE_SIGNER_KEY"] = fleet.pki().dir() + "/ca.key";
  fleet.controller_env["GANTRY_TLS_CERT"] = "";
  fleet.controller_env["GANTRY_TLS_KEY"] = "";
  fleet.controller_env["GANTRY_TLS_BOOTSTRAP_DIR"] = fleet.dir().Sub("node1-tls");
  fleet.controller_env["GANTRY_TLS_REFRESH_INTERVAL"] = "1s";
  fleet.worker_env["GANTRY_TLS_CERT"] = "";
  fleet.worker_env["GANTRY_TLS_KEY"] = "";
  fleet.worker_env["GANTRY_TLS_BOOTSTRAP_DIR"] = fleet.dir().Sub("w1-tls");
  // Workers have a token of their own, given as a file (the controller's stays the cluster's).
  fleet.api_env["GANTRY_WORKER_JOIN_TOKEN"] = kWorkerJoinToken;
  REQUIRE(WriteFile(fleet.dir().Sub("worker-join-token"), std::string(kWorkerJoinToken) + "\n", 0600).ok());
  fleet.worker_env["GANTRY_JOIN_TOKEN_FILE"] = fleet.dir().Sub("worker-join-token");
}

x509::CertInfo InspectFile(const std::string& path) {
  auto pem = ReadFile(path);
  REQUIRE(pem.ok());
  auto info = x509::Inspect(*pem);
  REQUIRE(info.ok());
  return *info;
}

v1::IssueNodeCertificateRequest Request(const std::string& role, const std::string& name) {
  auto key = x509::NewPrivateKey();
  auto csr = x509::MakeCsr(*key);
  v1::IssueNodeCertificateRequest request;
  request.set_role(role);
  request.set_name(name);
  request.set_csr_pem(*csr);
  return request;
}

grpc::Status Issue(const std::shared_ptr<grpc::Channel>& channel, const v1::IssueNodeCertificateRequest& request,
                   const std::string& token = "", v1::IssueNodeCertificateResponse* response = nullptr) {
  grpc::ClientContext ctx;
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  v1::IssueNodeCertificateResponse ignored;
  return v1::NodeCertificateService::NewStub(channel)->IssueNodeCertificate(&ctx, request,
                                                                            response ? response : &ignored);
}

void CheckRefused(const grpc::Status& status, grpc::StatusCode code, const std::string& words) {
  INFO(status.error_code() << ": " << status.error_message());
  CHECK(status.error_code() == code);
  CHECK(absl::StrContains(status.error_message(), words));
}

int IssuedCount(LocalFleet& fleet) {
  std::string log = fleet.api().Log();
  int n = 0;
  for (size_t at = 0; (at = log.find("node certificates: issued", at)) != std::string::npos; ++at) ++n;
  return n;
}

}  // namespace

TEST_CASE("bootstrap: a controller and a worker with only the CA and the join token get certificates and run a session",
          "[e2e][bootstrap]") {
  LocalFleet fleet;
  UseBootstrap(fleet);
  fleet.StartApi();
  fleet.worker_env["GANTRY_API_URL"] = fleet.api_address();
  fleet.StartController("node1");
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable();

  v1::Session session;
  grpc::Status status = fleet.CreateAsAdmin(SleepSpec("733"), &session);
  REQUIRE(status.error_message() == "");
  CHECK(session.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(session.worker_id() == "node1/w1");

  CHECK(InspectFile(fleet.dir().Sub("node1-tls/tls.crt")).spiffe_id == "spiffe://gantry/controller/node1");
  CHECK(InspectFile(fleet.dir().Sub("w1-tls/tls.crt")).spiffe_id == "spiffe://gantry/worker/w1");
  struct stat st;
  REQUIRE(stat(fleet.dir().Sub("node1-tls/tls.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  // The controller serves the bootstrapped certificate, verified for the address it was issued.
  std::string controller_port = fleet.controller_address().substr(fleet.controller_address().rfind(':') + 1);
  CHECK(!PresentedSerial(fleet.pki().ca(), std::stoi(controller_port), fleet.pki().dir() + "/admin-ops").empty());
  CHECK(IssuedCount(fleet) == 2);

  SECTION("a restarted controller keeps its certificate: nothing new is issued") {
    fleet.RestartController();
    fleet.WaitUntilSchedulable(0);
    CHECK(WaitFor([&] { return absl::StrContains(fleet.controller().Log(), "registered with the API server"); },
                  absl::Seconds(10)));
    CHECK(IssuedCount(fleet) == 2);
  }
}

TEST_CASE("bootstrap: node certificates are renewed before they expire and served without a restart",
          "[e2e][bootstrap]") {
  LocalFleet fleet;
  UseBootstrap(fleet);
  fleet.api_env["GANTRY_NODE_CERT_TTL"] = "6s";
  fleet.StartApi();
  fleet.worker_env["GANTRY_API_URL"] = fleet.api_address();
  fleet.StartController("node1");
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable();
  const std::string ca = fleet.pki().ca(), admin = fleet.pki().dir() + "/admin-ops";
  int port = std::stoi(fleet.controller_address().substr(fleet.controller_address().rfind(':') + 1));
  const std::string first = PresentedSerial(ca, port, admin);
  REQUIRE(!first.empty());
  pid_t controller_pid = fleet.controller().pid(), worker_pid = fleet.worker().pid();
  const absl::Time first_expiry = InspectFile(fleet.dir().Sub("node1-tls/tls.crt")).not_after;

  // Renewed (at 4 s of 6) over mTLS by both nodes, served, and the first one expired.
  std::string now_serving;
  bool renewed = WaitFor([&] {
    now_serving = PresentedSerial(ca, port, admin);
    return !now_serving.empty() && now_serving != first && absl::StrContains(fleet.controller().Log(), "renewed") &&
           absl::StrContains(fleet.worker().Log(), "renewed") && absl::Now() > first_expiry;
  }, absl::Seconds(20), absl::Milliseconds(250));  // Each look is a TLS handshake.
  INFO("serving " << now_serving << " (first " << first << ")\ncontroller log:\n" << fleet.controller().Log()
                  << "\nworker log:\n" << fleet.worker().Log());
  REQUIRE(renewed);
  CHECK(absl::StrContains(fleet.api().Log(), "spiffe://gantry/controller/node1 (by renewal)"));
  CHECK(InspectFile(fleet.dir().Sub("node1-tls/tls.crt")).not_after > absl::Now());
  CHECK(fleet.controller().pid() == controller_pid);
  CHECK(fleet.worker().pid() == worker_pid);

  // The API server reaches the controller, and the controller its worker, on the new ones.
  v1::Session session;
  grpc::Status status = fleet.CreateAsAdmin(SleepSpec("734"), &session);
  REQUIRE(status.error_message() == "");
  CHECK(session.phase() == v1::SESSION_PHASE_RUNNING);
}

TEST_CASE("bootstrap: a node stopped gracefully hands its name back: a replacement without its key rejoins, the "
          "same node takes it back, and a killed one holds it", "[e2e][bootstrap]") {
  LocalFleet fleet;
  UseBootstrap(fleet);
  fleet.StartApi();
  fleet.worker_env["GANTRY_API_URL"] = fleet.api_address();
  fleet.StartController("node1");
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable();
  v1::Session session;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("735"), &session).error_message() == "");
  const std::string old_controller_key = fleet.dir().Sub("node1-tls/tls");
  auto released = [&](const std::string& role, const std::string& name) {
    return fleet.db().Scalar("SELECT released_at IS NOT NULL FROM node_identities WHERE role = '" + role +
                             "' AND name = '" + name + "'");
  };
  auto anonymous = fleet.ChannelWithoutCert();
  CHECK(released("controller", "node1") == "f");
  // Held: the join token mints nothing for it.
  CheckRefused(Issue(anonymous, Request("controller", "node1"), kJoinToken), grpc::StatusCode::ALREADY_EXISTS,
               "held by a registered node");

  // A DaemonSet update: the pod stops gracefully, and its replacement has an empty, memory-backed
  // directory. Its sessions carry on under the node's name.
  fleet.controller().Signal(SIGTERM);
  REQUIRE(fleet.controller().Wait(absl::Seconds(20)) == 0);
  INFO(fleet.controller().Log());
  CHECK(absl::StrContains(fleet.controller().Log(), "handed the name spiffe://gantry/controller/node1 back"));
  CHECK(released("controller", "node1") == "t");
  fleet.controller_env["GANTRY_TLS_BOOTSTRAP_DIR"] = fleet.dir().Sub("node1-tls-replacement");
  fleet.RestartController();
  fleet.WaitUntilSchedulable(0);
  CHECK(IssuedCount(fleet) == 3);
  CHECK(absl::StrContains(fleet.api().Log(), "spiffe://gantry/controller/node1 (by the cluster join token)"));
  CHECK(released("controller", "node1") == "f");
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + session.id() + "'") == "RUNNING");
  // The old key is no one's now: it neither renews nor hands the name back.
  auto as_old = fleet.ChannelWithCert(old_controller_key);
  CheckRefused(Issue(as_old, Request("controller", "node1")), grpc::StatusCode::PERMISSION_DENIED,
               "held by another key");
  grpc::ClientContext release_ctx;
  v1::ReleaseNodeNameResponse ignored;
  CheckRefused(v1::NodeCertificateService::NewStub(as_old)->ReleaseNodeName(&release_ctx, {}, &ignored),
               grpc::StatusCode::PERMISSION_DENIED, "not held by this certificate's key");
  CHECK(released("controller", "node1") == "f");

  // The same worker restarted gracefully with its certificate takes its name back at once (a
  // renewal), before a join token could claim it.
  fleet.worker().Signal(SIGTERM);
  REQUIRE(fleet.worker().Wait(absl::Seconds(20)) == 0);
  CHECK(released("worker", "w1") == "t");
  fleet.StartWorker("w1", "1");
  CHECK(WaitFor([&] { return released("worker", "w1") == "f"; }, absl::Seconds(15)));
  // The API server commits the renewal before the worker has the answer and says so.
  CHECK(WaitFor([&] { return absl::StrContains(fleet.worker(1).Log(), "renewed"); }, absl::Seconds(10)));
  CheckRefused(Issue(anonymous, Request("worker", "w1"), kWorkerJoinToken), grpc::StatusCode::ALREADY_EXISTS,
               "held by a registered node");

  // A node killed outright hands nothing back: its name stays held until an admin frees it.
  fleet.worker(1).Signal(SIGKILL);
  REQUIRE(fleet.worker(1).Wait(absl::Seconds(5)) != -1);
  CHECK(released("worker", "w1") == "f");
  CheckRefused(Issue(anonymous, Request("worker", "w1"), kWorkerJoinToken), grpc::StatusCode::ALREADY_EXISTS,
               "held by a registered node");
  // Without a certificate nothing is handed back.
  grpc::ClientContext anonymous_ctx;
  CheckRefused(v1::NodeCertificateService::NewStub(anonymous)->ReleaseNodeName(&anonymous_ctx, {}, &ignored),
               grpc::StatusCode::UNAUTHENTICATED, "own certificate");
}

TEST_CASE("bootstrap: wrong tokens, roles, names, CSRs, DNS names and identities are refused and nothing is issued",
          "[e2e][bootstrap]") {
  LocalFleet fleet;
  UseBootstrap(fleet);
  fleet.api_env["GANTRY_NODE_CERT_DNS"] = "gantry-controller.gantry.svc";
  fleet.StartApi();
  auto anonymous = fleet.ChannelWithoutCert();

  CheckRefused(Issue(anonymous, Request("controller", "node9")), grpc::StatusCode::UNAUTHENTICATED, "join token");
  CheckRefused(Issue(anonymous, Request("controller", "node9"), "not-the-join-token-at-all"),
               grpc::StatusCode::UNAUTHENTICATED, "join token");
  // Without the token, even a malformed request learns nothing but that.
  CheckRefused(Issue(anonymous, Request("admin", "Not A Name")), grpc::StatusCode::UNAUTHENTICATED, "join token");
  CheckRefused(Issue(anonymous, Request("admin", "node9"), kJoinToken), grpc::StatusCode::INVALID_ARGUMENT, "role");
  CheckRefused(Issue(anonymous, Request("api-server", ""), kJoinToken), grpc::StatusCode::INVALID_ARGUMENT, "role");
  CheckRefused(Issue(anonymous, Request("worker", "Not A Name"), kJoinToken), grpc::StatusCode::INVALID_ARGUMENT,
               "name");
  auto garbage = Request("worker", "w9");
  garbage.set_csr_pem("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
  CheckRefused(Issue(anonymous, garbage, kJoinToken), grpc::StatusCode::INVALID_ARGUMENT, "csr_pem");
  auto huge = Request("worker", "w9");
  huge.set_csr_pem(std::string(64 * 1024, 'A'));
  CheckRefused(Issue(anonymous, huge, kJoinToken), grpc::StatusCode::INVALID_ARGUMENT, "csr_pem");
  auto foreign_dns = Request("controller", "node9");
  foreign_dns.add_dns_names("gantry-api.gantry.svc");
  CheckRefused(Issue(anonymous, foreign_dns, kJoinToken), grpc::StatusCode::INVALID_ARGUMENT, "dns_names");

  // A worker's certificate renews itself only.
  std::string w7 = fleet.pki().Issue("worker", "w7");
  auto as_w7 = fleet.ChannelWithCert(w7);
  CheckRefused(Issue(as_w7, Request("controller", "node1")), grpc::StatusCode::PERMISSION_DENIED, "only itself");
  CheckRefused(Issue(as_w7, Request("worker", "w8")), grpc::StatusCode::PERMISSION_DENIED, "only itself");
  // An admin's (or any other role's) certificate does not stand in for the join token either.
  auto as_admin = fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops");
  CheckRefused(Issue(as_admin, Request("worker", "w8")), grpc::StatusCode::PERMISSION_DENIED, "only itself");
  CHECK(IssuedCount(fleet) == 0);

  // The accepted requests, for contrast: the token, an allowed DNS name, and a self-renewal.
  v1::IssueNodeCertificateResponse issued;
  auto allowed = Request("controller", "node9");
  allowed.add_dns_names("gantry-controller.gantry.svc");
  grpc::Status ok = Issue(anonymous, allowed, kJoinToken, &issued);
  REQUIRE(ok.error_message() == "");
  auto info = x509::Inspect(issued.certificate_chain_pem());
  REQUIRE(info.ok());
  CHECK(info->spiffe_id == "spiffe://gantry/controller/node9");
  CHECK(!info->is_ca);
  CHECK(info->not_after - info->not_before > absl::Hours(23));
  CHECK(Issue(as_w7, Request("worker", "w7")).ok());
  CHECK(IssuedCount(fleet) == 2);

  SECTION("an API server without a signer says so") {
    fleet.api_env.erase("GANTRY_NODE_SIGNER_CERT");
    fleet.api_env.erase("GANTRY_NODE_SIGNER_KEY");
    int replica = fleet.StartApiReplica();
    auto creds = MakeChannelCredentials({fleet.pki().ca(), "", ""});
    REQUIRE(creds.ok());
    auto channel = CreateInternalChannel(absl::StrCat("127.0.0.1:", replica), *creds);
    CheckRefused(Issue(channel, Request("worker", "w9"), kJoinToken), grpc::StatusCode::FAILED_PRECONDITION,
                 "--node-signer-cert");
  }
}

}  // namespace gantry::testing
