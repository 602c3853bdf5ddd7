// GPU reservations in PostgreSQL: creates racing through two API server replicas never promise
// one GPU twice, refusals leave nothing written, and ended sessions give their GPUs back.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include <future>
#include <memory>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

constexpr char kMarker[] = "3600.6161";

struct Outcomes {
  std::mutex mu;
  std::map<grpc::StatusCode, int> by_code;
  std::vector<std::string> ids;
  std::string unexpected;  // Messages of codes other than OK and RESOURCE_EXHAUSTED.
  std::string exhausted_example;
};

// `count` creates at once, alternating between the two replicas, each one GPU.
void CreateConcurrently(LocalFleet& fleet, int replica_port, int count, const std::string& tag,
                        Outcomes* out) {
  std::vector<std::thread> threads;
  // All start together, once every thread is ready: blocked, not spinning, which on 2 cores
  // (and under ThreadSanitizer) would starve the threads still being started.
  std::promise<void> go;
  std::shared_future<void> start = go.get_future().share();
  // Made here, not in the threads: making one checks with Catch's REQUIRE, which is not
  // thread-safe (ThreadSanitizer caught it).
  std::vector<std::unique_ptr<v1::SessionService::Stub>> stubs;
  for (int i = 0; i < count; ++i) stubs.push_back(fleet.AdminSessions(i % 2 == 0 ? 0 : replica_port));
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&, i] {
      auto& stub = stubs[i];
      // Acknowledged once reserved (no wait_for_running): the reservation alone decides.
      v1::CreateSessionRequest req;
      *req.mutable_spec() = SleepSpec(kMarker, 1);
      req.set_request_id(absl::StrCat(tag, "-", i));
      v1::Session s;
      start.wait();
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      grpc::Status st = stub->CreateSession(&ctx, req, &s);
      std::lock_guard<std::mutex> lock(out->mu);
      ++out->by_code[st.error_code()];
      if (st.ok()) out->ids.push_back(s.id());
      if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) out->exhausted_example = st.error_message();
      if (!st.ok() && st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
        absl::StrAppend(&out->unexpected, st.error_code(), ": ", st.error_message(), "\n");
      }
    });
  }
  go.set_value();
  for (auto& t : threads) t.join();
}

}  // namespace

TEST_CASE("two replicas take 200 concurrent creates for room for 50: exactly 50 placed, nothing leaked",
          "[e2e][placement]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "25:Sim A100:40");
  fleet.StartWorker("w2", "25:Sim A100:40");
  REQUIRE(WaitFor([&] { return fleet.db().Scalar("SELECT sum(gpus_free) FROM controllers") == "50"; },
                  absl::Seconds(20)));
  int replica = fleet.StartApiReplica();

  Outcomes first;
  CreateConcurrently(fleet, replica, 200, "a", &first);
  INFO(first.unexpected << fleet.api().Log());
  CHECK(first.by_code[grpc::StatusCode::OK] == 50);
  CHECK(first.by_code[grpc::StatusCode::RESOURCE_EXHAUSTED] == 150);
  CHECK(first.unexpected.empty());
  // The refusal says what was asked for and what the fleet has.
  CHECK(first.exhausted_example.find("spec.resources.gpus: asked for 1 GPU(s)") != std::string::npos);
  CHECK(first.exhausted_example.find("only 0 of the 50 GPU(s) on the fleet's 1 healthy controller(s) are unreserved") !=
        std::string::npos);

  // PostgreSQL holds exactly the acknowledged sessions, each RUNNING on its own GPU once
  // started, and the refused ones left nothing behind: no row, no event, no reservation.
  auto& db = fleet.db();
  REQUIRE(WaitFor([&] { return db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == "50"; },
                  absl::Seconds(60)));
  CHECK(db.Scalar("SELECT count(*) FROM sessions") == "50");
  CHECK(db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == "50");
  CHECK(db.Scalar("SELECT count(DISTINCT g) FROM sessions, jsonb_array_elements_text(gpu_uuids) g") == "50");
  CHECK(db.Scalar("SELECT count(DISTINCT session_id) FROM session_events") == "50");
  CHECK(db.Scalar("SELECT sum(gpu_count) FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED')") == "50");
  CHECK(PidsWithCmdline(std::string("sleep ") + kMarker).size() == 50);
  // The reservations turned the extra 150 away before they reached the controller.
  CHECK(fleet.controller().Log().find("refused session") == std::string::npos);

  // Ending ten gives their GPUs back: ten more fit, and no more.
  auto stub = fleet.AdminSessions();
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest del;
    del.set_id(first.ids[static_cast<size_t>(i)]);
    v1::Session deleted;
    REQUIRE(stub->DeleteSession(&ctx, del, &deleted).ok());
  }
  CHECK(db.Scalar("SELECT sum(gpu_count) FROM sessions WHERE phase NOT IN ('TERMINATED', 'FAILED')") == "40");
  // The controller's next heartbeat reports the freed GPUs.
  REQUIRE(WaitFor([&] { return db.Scalar("SELECT sum(gpus_free) FROM controllers") == "10"; }, absl::Seconds(10)));
  Outcomes second;
  CreateConcurrently(fleet, replica, 30, "b", &second);
  INFO(second.unexpected);
  CHECK(second.by_code[grpc::StatusCode::OK] == 10);
  CHECK(second.by_code[grpc::StatusCode::RESOURCE_EXHAUSTED] == 20);
  REQUIRE(WaitFor([&] { return db.Scalar("SELECT count(*) FROM sessions WHERE phase = 'RUNNING'") == "50"; },
                  absl::Seconds(60)));
  CHECK(db.Scalar("SELECT count(*) FROM sessions") == "60");  // 50 live, 10 TERMINATED.
  CHECK(PidsWithCmdline(std::string("sleep ") + kMarker).size() == 50);
}

}  // namespace gantry::testing
