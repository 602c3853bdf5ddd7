// The API server and its database: started while PostgreSQL is down, it runs, says
// NOT_SERVING, answers UNAVAILABLE, and serves once PostgreSQL is up, by itself.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  int rc = pclose(p);
  INFO(cmd << "\n" << out);
  REQUIRE(rc == 0);
  return out;
}

int FreePort() {
  std::string out = Run(SourcePath("tools/lib/free-port.sh"));
  return std::stoi(out);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(LocalFleet& fleet) {
  auto stub = grpc::health::v1::Health::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return resp.status();
}

grpc::StatusCode ListCode(LocalFleet& fleet) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListSessionsResponse out;
  return fleet.AdminSessions()->ListSessions(&ctx, v1::ListSessionsRequest(), &out).error_code();
}

}  // namespace

TEST_CASE("the API server rides out a PostgreSQL that is down, then up, then down again", "[e2e][pg-outage]") {
  LocalFleet fleet;
  TempDir pg_dir;
  int port = FreePort();
  std::string script = SourcePath("tools/lib/throwaway-pg.sh");
  std::string dsn = absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres connect_timeout=2");

  fleet.StartApi(dsn, /*wait_until_serving=*/false);
  // Down: running, NOT_SERVING, UNAVAILABLE with a message saying to retry.
  REQUIRE(WaitFor([&] { return Health(fleet) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                  absl::Seconds(10)));
  CHECK(ListCode(fleet) == grpc::StatusCode::UNAVAILABLE);
  CHECK(fleet.api().Alive());

  // Up: it migrates and serves without a restart.
  Run(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  bool serving = WaitFor([&] {
    return Health(fleet) == grpc::health::v1::HealthCheckResponse::SERVING;
  }, absl::Seconds(20));
  INFO(fleet.api().Log());
  REQUIRE(serving);
  CHECK(ListCode(fleet) == grpc::StatusCode::OK);

  // Down again: UNAVAILABLE, NOT_SERVING; and back.
  Run(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
  CHECK(WaitFor([&] { return ListCode(fleet) == grpc::StatusCode::UNAVAILABLE; }, absl::Seconds(10)));
  CHECK(WaitFor([&] { return Health(fleet) == grpc::health::v1::HealthCheckResponse::NOT_SERVING; },
                absl::Seconds(10)));
  Run(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", port));
  CHECK(WaitFor([&] { return ListCode(fleet) == grpc::StatusCode::OK; }, absl::Seconds(20)));
  CHECK(fleet.api().Alive());
  Run(absl::StrCat(script, " stop ", pg_dir.Sub("pg")));
}

}  // namespace gantry::testing
