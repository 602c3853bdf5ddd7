// Bad CreateSession input through the real server: a clear status naming the field, and no
// session left PENDING.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("bad session requests are refused naming the field, leaving nothing behind", "[e2e]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2:Simulated A100:40", 2);
  auto stub = fleet.AdminSessions();

  struct Case {
    const char* what;
    std::function<void(v1::CreateSessionRequest&)> mutate;
    grpc::StatusCode code;
    const char* field;
  };
  std::vector<Case> cases = {
      {"empty command", [](auto& r) { r.mutable_spec()->clear_command(); },
       grpc::StatusCode::INVALID_ARGUMENT, "spec.command"},
      {"negative GPU count",
       [](auto& r) { r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "spec.resources.gpus.count"},
      {"more GPUs than any worker has",
       [](auto& r) { r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(3); },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "spec.resources.gpus"},
      {"a GPU model nobody has",
       [](auto& r) { r.mutable_spec()->mutable_resources()->mutable_gpus()->set_min_memory_bytes(1LL << 40); },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "spec.resources.gpus"},
      {"a 10 MB environment value",
       [](auto& r) { (*r.mutable_spec()->mutable_env())["HUGE"] = std::string(10 << 20, 'x'); },
       grpc::StatusCode::INVALID_ARGUMENT, "spec.env[\"HUGE\"]"},
      {"an unknown controller id",
       [](auto& r) { r.set_controller_id("00000000-0000-0000-0000-000000000000"); },
       grpc::StatusCode::RESOURCE_EXHAUSTED, "spec.resources.gpus"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    v1::CreateSessionRequest req;
    req.set_wait_for_running(true);
    *req.mutable_spec() = SleepSpec("3600.7171", 1);
    c.mutate(req);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::Session out;
    grpc::Status s = stub->CreateSession(&ctx, req, &out);
    INFO(s.error_message());
    CHECK(s.error_code() == c.code);
    CHECK(s.error_message().find(c.field) != std::string::npos);
  }
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");
  CHECK(PidsWithCmdline("sleep 3600.7171").empty());

  // Reads with malformed ids and page tokens are plain errors, not crashes.
  grpc::ClientContext get_ctx;
  v1::GetSessionRequest get;
  get.set_id("'; DROP TABLE sessions; --");
  v1::Session out;
  CHECK(stub->GetSession(&get_ctx, get, &out).error_code() == grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext list_ctx;
  v1::ListSessionsRequest list;
  list.set_page_token("not-a-token");
  v1::ListSessionsResponse listed;
  grpc::Status s = stub->ListSessions(&list_ctx, list, &listed);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(s.error_message().find("page_token") != std::string::npos);
  CHECK(fleet.db().Scalar("SELECT to_regclass('sessions')::text") == "sessions");
}

}  // namespace gantry::testing
