#include "tools/bench/fleet_ops.h"

#include <catch2/catch.hpp>

#include "tools/bench/load.h"

namespace gantry::bench {

void DeleteAll(testing::LocalFleet& fleet, const std::vector<std::string>& ids) {
  ClosedLoop(static_cast<int>(ids.size()), 8, [&](int i) {
    v1::DeleteSessionRequest request;
    request.set_id(ids[i]);
    v1::Session reply;
    grpc::ClientContext ctx;
    return fleet.AdminSessions()->DeleteSession(&ctx, request, &reply).ok();
  });
  REQUIRE(testing::WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED')") == "0";
  }, absl::Seconds(60)));
}

}  // namespace gantry::bench
