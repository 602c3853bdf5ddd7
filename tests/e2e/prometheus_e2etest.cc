// /metrics on all three binaries, scraped over HTTPS as Prometheus would, while sessions come,
// change phase and go: the figures follow them, and every RPC is counted by method and code.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

class Scraper {
 public:
  explicit Scraper(LocalFleet& fleet) : fleet_(fleet) {
    fleet.api_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
    fleet.api_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("api-metrics.port");
    fleet.controller_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
    fleet.controller_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("controller-metrics.port");
  }
  std::vector<std::string> WorkerArgs() const {
    return {"--metrics-listen", "127.0.0.1:0", "--metrics-port-file", fleet_.dir().Sub("worker-metrics.port")};
  }
  std::string Scrape(const std::string& who) { return ScrapeMetrics(fleet_.pki().ca(), Port(who)); }
  std::string Get(const std::string& who, const std::string& path) { return HttpsGet(fleet_.pki().ca(), Port(who), path); }
  // Waits until `who`'s /metrics has the line `series value`.
  bool Shows(const std::string& who, const std::string& series, const std::string& value) {
    std::string last;
    bool seen = WaitFor([&] {
      last = Scrape(who);
      return absl::StrContains(last, absl::StrCat("\n", series, " ", value, "\n"));
    }, absl::Seconds(15));
    if (!seen) UNSCOPED_INFO(who << " /metrics, without " << series << " " << value << ":\n" << last);
    return seen;
  }

 private:
  int Port(const std::string& who) {
    int port = WaitForPortFile(fleet_.dir().Sub(who + "-metrics.port"), absl::Seconds(10));
    REQUIRE(port != 0);
    return port;
  }
  LocalFleet& fleet_;
};

grpc::Status Create(LocalFleet& fleet, int gpus, v1::Session* session) {
  v1::CreateSessionRequest request;
  request.set_wait_for_running(true);
  *request.mutable_spec() = SleepSpec("407", gpus);
  grpc::ClientContext ctx;
  return fleet.AdminSessions()->CreateSession(&ctx, request, session);
}

}  // namespace

TEST_CASE("metrics: API server, controller and worker serve /metrics that follow sessions and RPCs, and /readyz",
          "[e2e][metrics]") {
  LocalFleet fleet;
  Scraper metrics(fleet);
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "2:Simulated L4:24", 0, metrics.WorkerArgs());
  fleet.WaitUntilSchedulable(2);

  // Probes: alive, and ready once each can do its job.
  for (const char* who : {"api", "controller", "worker"}) {
    CHECK(metrics.Get(who, "/healthz") == "200 ok\n");
    CHECK(metrics.Get(who, "/readyz") == "200 ready\n");
  }
  CHECK(metrics.Shows("api", "gantry_controllers{status=\"HEALTHY\"}", "1"));
  CHECK(metrics.Shows("api", "gantry_gpus", "2"));
  CHECK(metrics.Shows("api", "gantry_database_up", "1"));
  CHECK(metrics.Shows("api", "gantry_db_pool_connections_max{pool=\"clients\"}", "16"));
  CHECK(metrics.Shows("api", "gantry_db_pool_connections_max{pool=\"controllers\"}", "4"));
  CHECK(absl::StrContains(metrics.Scrape("api"), "gantry_controller_heartbeat_age_seconds{controller=\"node1\"} "));
  CHECK(metrics.Shows("controller", "gantry_workers{status=\"ONLINE\"}", "1"));
  CHECK(metrics.Shows("worker", "gantry_gpus", "2"));
  CHECK(absl::StrContains(metrics.Scrape("worker"),
                          "gantry_gpu_memory_used_bytes{gpu=\"0\",uuid=\"GPU-"));

  v1::Session session;
  REQUIRE(Create(fleet, 1, &session).ok());
  v1::Session refused;
  REQUIRE(Create(fleet, 5, &refused).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);

  const std::string create = "grpc_service=\"gantry.v1.SessionService\",grpc_method=\"CreateSession\"";
  CHECK(metrics.Shows("api", absl::StrCat("grpc_server_handled_total{", create, ",grpc_code=\"OK\"}"), "1"));
  CHECK(metrics.Shows("api", absl::StrCat("grpc_server_handled_total{", create, ",grpc_code=\"RESOURCE_EXHAUSTED\"}"), "1"));
  CHECK(metrics.Shows("api", absl::StrCat("grpc_server_handling_seconds_count{", create, "}"), "2"));
  CHECK(metrics.Shows("api", "gantry_placement_seconds_count{outcome=\"placed\"}", "1"));
  CHECK(metrics.Shows("api", "gantry_sessions{phase=\"RUNNING\"}", "1"));
  CHECK(metrics.Shows("api", "gantry_gpus_used", "1"));
  CHECK(metrics.Shows("controller",
                      "grpc_server_handled_total{grpc_service=\"gantry.v1.ControllerService\",grpc_method=\"CreateSession\","
                      "grpc_code=\"OK\"}",
                      "1"));
  CHECK(metrics.Shows("controller", "gantry_placement_decision_seconds_count{outcome=\"placed\"}", "1"));
  CHECK(metrics.Shows("controller", "gantry_placement_lock_wait_seconds_count", "1"));
  CHECK(metrics.Shows("controller", "gantry_placement_choice_seconds_count", "1"));
  CHECK(metrics.Shows("controller", "gantry_gpus_used", "1"));
  CHECK(metrics.Shows("worker", "gantry_worker_sessions{phase=\"RUNNING\"}", "1"));
  CHECK(metrics.Shows("worker", "gantry_gpus_used", "1"));

  {
    grpc::ClientContext ctx;
    v1::HibernateSessionRequest request;
    request.set_id(session.id());
    v1::Session out;
    REQUIRE(fleet.AdminSessions()->HibernateSession(&ctx, request, &out).ok());
  }
  CHECK(metrics.Shows("worker", "gantry_worker_sessions{phase=\"HIBERNATED\"}", "1"));
  CHECK(metrics.Shows("api", "gantry_sessions{phase=\"HIBERNATED\"}", "1"));

  {
    grpc::ClientContext ctx;
    v1::DeleteSessionRequest request;
    request.set_id(session.id());
    v1::Session out;
    REQUIRE(fleet.AdminSessions()->DeleteSession(&ctx, request, &out).ok());
  }
  CHECK(metrics.Shows("api", "gantry_sessions{phase=\"TERMINATED\"}", "1"));
  CHECK(metrics.Shows("api", "gantry_sessions{phase=\"HIBERNATED\"}", "0"));
  CHECK(metrics.Shows("worker", "gantry_worker_sessions{phase=\"HIBERNATED\"}", "0"));
  CHECK(metrics.Shows("controller", "gantry_gpus_used", "0"));
  CHECK(metrics.Shows("api", "gantry_gpus_used", "0"));

  // A worker whose controller is gone is alive but not ready.
  fleet.controller().Signal(SIGKILL);
  CHECK(WaitFor([&] { return metrics.Get("worker", "/readyz") == "503 not connected to the controller\n"; },
                absl::Seconds(10)));
  CHECK(metrics.Get("worker", "/healthz") == "200 ok\n");
}

}  // namespace gantry::testing
