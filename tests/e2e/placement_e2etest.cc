// Placement through the real binaries: one controller, three workers with different GPUs and
// skills (one with a models directory). By skill, by GPU memory, by GPU model, least loaded
// with round-robin on ties, skills re-scanned on SIGHUP, and RESOURCE_EXHAUSTED naming the field.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>

#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

grpc::Status Create(LocalFleet& fleet, v1::SessionSpec spec, v1::Session* out) {
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = std::move(spec);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  return fleet.AdminSessions()->CreateSession(&ctx, req, out);
}

v1::SessionSpec Spec(int gpus, const std::string& model = "", int64_t min_gib = 0,
                     const std::string& skill = "") {
  v1::SessionSpec spec = SleepSpec("3600.8646", gpus);
  spec.mutable_resources()->mutable_gpus()->set_model(model);
  spec.mutable_resources()->mutable_gpus()->set_min_memory_bytes(min_gib << 30);
  if (!skill.empty()) spec.add_skills(skill);
  return spec;
}

}  // namespace

TEST_CASE("placement by skill, GPU memory, GPU model and load across three real workers", "[e2e][placement]") {
  LocalFleet fleet;
  std::string models = fleet.dir().Sub("models");
  std::filesystem::create_directories(models + "/llama-3.2-3b");
  std::ofstream(models + "/llama-3.2-3b/weights.bin") << std::string(4096, 'w');
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("small", "1:Simulated A10:24");
  fleet.StartWorker("mid", "2:Simulated A100:40");
  fleet.StartWorker("big", "2:Simulated H100:80", 0, {"--models-dir", models, "--models-rescan-interval", "1h"});
  fleet.WaitUntilSchedulable(2);
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT skills::text FROM controllers").find("model/llama-3.2-3b") != std::string::npos &&
           fleet.db().Scalar("SELECT gpus_total FROM controllers") == "5";
  }, absl::Seconds(10)));

  v1::Session s;
  SECTION("a model skill goes to the worker that has the model") {
    REQUIRE(Create(fleet, Spec(0, "", 0, "model/llama-3.2-3b"), &s).ok());
    CHECK(s.worker_id() == "node1/big");
  }
  SECTION("GPU memory") {
    REQUIRE(Create(fleet, Spec(1, "", 60), &s).ok());
    CHECK(s.worker_id() == "node1/big");
  }
  SECTION("GPU model") {
    REQUIRE(Create(fleet, Spec(1, "a100"), &s).ok());
    CHECK(s.worker_id() == "node1/mid");
  }
  SECTION("least loaded, round-robin among equals") {
    std::map<std::string, int> per_worker;
    for (int i = 0; i < 6; ++i) {
      REQUIRE(Create(fleet, Spec(0), &s).ok());
      per_worker[s.worker_id()]++;
    }
    CHECK(per_worker == std::map<std::string, int>{{"node1/big", 2}, {"node1/mid", 2}, {"node1/small", 2}});
  }
  SECTION("nothing fits: RESOURCE_EXHAUSTED naming the field, nothing written") {
    grpc::Status st = Create(fleet, Spec(3), &s);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(st.error_message().find("spec.resources.gpus") != std::string::npos);
    st = Create(fleet, Spec(0, "", 0, "model/unknown"), &s);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(st.error_message().find("model/unknown") != std::string::npos);
    st = Create(fleet, Spec(1, "B200"), &s);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE phase <> 'FAILED'") == "0");
  }
  SECTION("a model added to the directory is offered after SIGHUP") {
    std::filesystem::create_directories(models + "/mistral-7b");
    fleet.worker(2).Signal(SIGHUP);
    REQUIRE(WaitFor([&] {
      return fleet.db().Scalar("SELECT skills::text FROM controllers").find("model/mistral-7b") != std::string::npos;
    }, absl::Seconds(10)));
    REQUIRE(Create(fleet, Spec(0, "", 0, "model/mistral-7b"), &s).ok());
    CHECK(s.worker_id() == "node1/big");
    CHECK(fleet.worker(2).Alive());  // SIGHUP re-scans; it does not stop the worker.
  }
}

TEST_CASE("a worker without simulated GPUs discovers its GPUs through NVML", "[e2e][nvml]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  // No --simulated-gpus: the worker loads the NVML library (here the fake one) at run time.
  std::string prefix = fleet.pki().Issue("worker", "gpu0");
  Process worker({BinaryPath("gantry-worker"), "--name", "gpu0", "--nvml-library", BinaryPath("fake-nvml"),
                  "--session-dir", fleet.dir().Sub("sessions-gpu0"), "--session-uids", kSessionUids},
                 {{"CONTROLLER_URL", fleet.controller_address()}, {"GANTRY_TLS_CA", fleet.pki().ca()},
                  {"GANTRY_TLS_CERT", prefix + ".crt"}, {"GANTRY_TLS_KEY", prefix + ".key"},
                  {"GRPC_DNS_RESOLVER", "native"}},
                 fleet.dir().Sub("gpu0.log"));
  fleet.WaitUntilSchedulable(2);
  v1::Session s;
  grpc::Status st = Create(fleet, Spec(1, "nvml gpu b"), &s);
  INFO(worker.Log());
  REQUIRE(st.ok());
  CHECK(s.gpu_uuids(0) == "GPU-fa4e0000-0000-0000-0000-00000000000b");
  CHECK(worker.Log().find("SIMULATED") == std::string::npos);
  CHECK(worker.Log().find("Fake NVML GPU A") != std::string::npos);
}

}  // namespace gantry::testing
