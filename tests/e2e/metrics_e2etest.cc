// GetSessionMetrics: CPU and memory of the session's whole process group, sampled on the
// worker from /proc and relayed by the controller.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status Metrics(v1::SessionService::Stub& stub, const std::string& id, v1::SessionMetrics* out) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetSessionMetricsRequest req;
  req.set_id(id);
  return stub.GetSessionMetrics(&ctx, req, out);
}

}  // namespace

TEST_CASE("metrics show a busy session's CPU and memory, and none once hibernated", "[e2e][metrics]") {
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  auto stub = fleet.AdminSessions();
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  req.mutable_spec()->add_command("/usr/bin/python3");
  req.mutable_spec()->add_command("-c");
  // 64 MiB held, one core kept busy.
  req.mutable_spec()->add_command("x = bytearray(64 << 20)\nwhile True: pass");
  req.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  v1::Session s;
  {
    grpc::ClientContext ctx;
    REQUIRE(stub->CreateSession(&ctx, req, &s).ok());
  }
  v1::SessionMetrics m;
  bool busy = WaitFor([&] {
    return Metrics(*stub, s.id(), &m).ok() && m.usage().cpu_percent() > 20 &&
           m.usage().memory_bytes() > (64 << 20);
  }, absl::Seconds(10));
  INFO(m.DebugString());
  CHECK(busy);
  CHECK(m.gpus_size() == 1);
  CHECK(m.gpus(0).uuid() == s.gpu_uuids(0));

  {
    grpc::ClientContext ctx;
    v1::HibernateSessionRequest h;
    h.set_id(s.id());
    v1::Session out;
    REQUIRE(stub->HibernateSession(&ctx, h, &out).ok());
  }
  bool idle = WaitFor([&] {
    return Metrics(*stub, s.id(), &m).ok() && m.usage().cpu_percent() < 2 &&
           m.usage().memory_bytes() > (64 << 20);  // Stopped, not freed.
  }, absl::Seconds(10));
  INFO(m.DebugString());
  CHECK(idle);

  // Ended sessions have no metrics.
  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest d;
    d.set_id(s.id());
    v1::Session out;
    REQUIRE(stub->DeleteSession(&ctx, d, &out).ok());
  }
  CHECK(Metrics(*stub, s.id(), &m).error_code() == grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace gantry::testing
