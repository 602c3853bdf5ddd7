// Configured limits against abusive clients, on a real API server: wrong secrets from one
// address are slowed down, one client's open streams are capped, oversized messages are
// refused, and in each case other clients carry on.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status ListWithKey(LocalFleet& fleet, const std::string& key) {
  auto stub = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + key);
  v1::ListSessionsRequest req;
  v1::ListSessionsResponse resp;
  return stub->ListSessions(&ctx, req, &resp);
}

grpc::Status ListAsAdminCert(LocalFleet& fleet) {
  grpc::ClientContext ctx;
  v1::ListSessionsRequest req;
  v1::ListSessionsResponse resp;
  return fleet.AdminSessions()->ListSessions(&ctx, req, &resp);
}

grpc::Status IssueWithJoinToken(LocalFleet& fleet, const std::string& token) {
  auto stub = v1::NodeCertificateService::NewStub(fleet.ChannelWithoutCert());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  v1::IssueNodeCertificateRequest req;
  req.set_role("worker");
  req.set_name("w9");
  v1::IssueNodeCertificateResponse resp;
  return stub->IssueNodeCertificate(&ctx, req, &resp);
}

// A WatchSession stream, open once its first message has arrived.
struct Watch {
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<v1::Session>> reader;
  bool opened = false;
  grpc::Status Close() {
    ctx.TryCancel();
    v1::Session s;
    while (reader->Read(&s)) {
    }
    return reader->Finish();
  }
};

std::unique_ptr<Watch> OpenWatch(v1::SessionService::Stub& stub, const std::string& id) {
  auto w = std::make_unique<Watch>();
  v1::WatchSessionRequest req;
  req.set_id(id);
  w->reader = stub.WatchSession(&w->ctx, req);
  v1::Session first;
  w->opened = w->reader->Read(&first);
  return w;
}

}  // namespace

TEST_CASE("wrong secrets from one address are slowed down, and certificate clients are unaffected",
          "[e2e][abuse]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_AUTH_FAILURE_BURST"] = "3";
  fleet.api_env["GANTRY_AUTH_FAILURE_INTERVAL"] = "2s";
  fleet.StartApi();

  // Three wrong API keys are just wrong.
  for (int i = 0; i < 3; ++i) CHECK(ListWithKey(fleet, "guess-" + std::to_string(i)).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  // Then this address's secrets are refused unread, the right one too (a guess is not confirmed),
  // and the join token shares the allowance.
  grpc::Status throttled = ListWithKey(fleet, "guess-3");
  CHECK(throttled.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(absl::StrContains(throttled.error_message(), "too many refused credentials from 127.0.0.1; try again in"));
  CHECK(ListWithKey(fleet, kAdminKey).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(IssueWithJoinToken(fleet, kJoinToken).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  // A client with a certificate presents no secret: it is not slowed down.
  CHECK(ListAsAdminCert(fleet).ok());

  // One interval later, one more attempt: the right key works, then a wrong one spends the next.
  REQUIRE(WaitFor([&] { return ListWithKey(fleet, kAdminKey).ok(); }, absl::Seconds(5)));
  CHECK(ListWithKey(fleet, "guess-4").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(ListWithKey(fleet, "guess-5").error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(absl::StrContains(fleet.api().Log(), "127.0.0.1 has run out of credential attempts"));
}

TEST_CASE("one client's open streams are capped, and other clients are unaffected", "[e2e][abuse]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_STREAMS_PER_CLIENT"] = "3";
  fleet.StartSingleNode("1", 0);
  auto alice = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "alice")));
  auto bob = v1::SessionService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "bob")));
  auto create = [](v1::SessionService::Stub& stub) {
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    *req.mutable_spec() = ShellSpec("exec sleep 3600");
    v1::Session s;
    grpc::ClientContext ctx;
    REQUIRE(stub.CreateSession(&ctx, req, &s).ok());
    return s.id();
  };
  const std::string alices = create(*alice), bobs = create(*bob);

  std::vector<std::unique_ptr<Watch>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(OpenWatch(*alice, alices));
    REQUIRE(open.back()->opened);
  }
  // A fourth stream of any kind is refused, naming the limit.
  auto fourth = OpenWatch(*alice, alices);
  CHECK_FALSE(fourth->opened);
  grpc::Status refused = fourth->reader->Finish();
  CHECK(refused.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(absl::StrContains(refused.error_message(), "user/alice already has 3 WatchSession and StreamLogs streams open"));
  CHECK(absl::StrContains(refused.error_message(), "--max-streams-per-client"));
  {
    grpc::ClientContext ctx;
    v1::StreamLogsRequest req;
    req.set_id(alices);
    auto logs = alice->StreamLogs(&ctx, req);
    v1::LogEntry e;
    while (logs->Read(&e)) {
    }
    CHECK(logs->Finish().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Alice's other calls and Bob's streams go on.
  {
    grpc::ClientContext ctx;
    v1::GetSessionRequest req;
    req.set_id(alices);
    v1::Session s;
    CHECK(alice->GetSession(&ctx, req, &s).ok());
  }
  auto bobs_watch = OpenWatch(*bob, bobs);
  CHECK(bobs_watch->opened);

  // A closed stream gives its place back.
  CHECK(open.back()->Close().error_code() == grpc::StatusCode::CANCELLED);
  open.pop_back();
  std::unique_ptr<Watch> again;
  REQUIRE(WaitFor([&] {
    again = OpenWatch(*alice, alices);
    return again->opened;
  }, absl::Seconds(5)));
  for (auto& w : open) w->Close();
  again->Close();
  bobs_watch->Close();
}

TEST_CASE("an oversized message is refused and the server carries on", "[e2e][abuse]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_MAX_MESSAGE_BYTES"] = "1048576";
  fleet.StartApi();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = ShellSpec("true");
  (*req.mutable_spec()->mutable_env())["BIG"] = std::string(2 * 1024 * 1024, 'x');
  v1::Session s;
  grpc::ClientContext ctx;
  grpc::Status st = fleet.AdminSessions()->CreateSession(&ctx, req, &s);
  CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  INFO(st.error_message());
  CHECK(absl::StrContains(st.error_message(), "larger than max"));
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");
  CHECK(ListAsAdminCert(fleet).ok());
  CHECK(fleet.api().Alive());
}

}  // namespace gantry::testing
