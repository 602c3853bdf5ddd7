// What the API server's PostgreSQL tests share: a fresh, migrated database with a pool, the
// session and controller stores on it, and a way to register a controller ready for placement.
// Header-only: only the [pg] test binary uses it, and it links the API server's library.
#pragma once

#include <catch2/catch.hpp>
#include <pqxx/connection>

#include <mutex>
#include <string>
#include <vector>

#include "api-server/controller_event_store.h"
#include "api-server/controller_store.h"
#include "api-server/migration_runner.h"
#include "api-server/registry_manager.h"
#include "api-server/session_manager.h"
#include "api-server/session_store.h"
#include "api-server/session_watch_hub.h"
#include "api-server/template_store.h"
#include "common/pg_pool.h"
#include "common/tokens.h"
#include "tests/api-server/fake_controller_client.h"
#include "tests/support/test_env.h"

namespace gantry::api::testing {

// `sleep` asking for `gpus` GPUs.
inline v1::SessionSpec GpuSpec(int gpus) {
  v1::SessionSpec spec;
  spec.add_command("sleep");
  spec.mutable_resources()->mutable_gpus()->set_count(gpus);
  return spec;
}

struct StoreFixture {
  gantry::testing::TestDatabase db;
  PgPool pool{db.dsn(), 8};
  SessionStore sessions{&pool};
  ControllerStore controllers{&pool, absl::Seconds(15)};

  StoreFixture() {
    pqxx::connection c(db.dsn());
    REQUIRE(ApplyMigrations(c, EmbeddedMigrations()).ok());
  }

  // A healthy controller with a fresh heartbeat and `gpus` free GPUs (80 GiB each), its token
  // "token-NAME"; returns its id.
  // `max_free_on_one_worker` (default: all of them) is what its workers last reported.
  std::string RegisterController(const std::string& name, int gpus, const std::string& endpoint = "127.0.0.1:1",
                                 int max_free_on_one_worker = -1) {
    v1::RegisterControllerRequest r;
    r.set_name(name);
    r.set_type("gpu-node");
    r.set_endpoint(endpoint);
    r.mutable_capacity()->set_gpus_total(gpus);
    r.mutable_capacity()->set_gpus_free(gpus);
    r.mutable_capacity()->set_max_free_gpus_per_worker(max_free_on_one_worker < 0 ? gpus : max_free_on_one_worker);
    r.mutable_capacity()->set_max_gpu_memory_bytes(80LL << 30);
    auto reg = controllers.Register(r, Sha256Hex("token-" + name), absl::Hours(1));
    REQUIRE(reg.ok());
    return reg->first;
  }
};

// The stores with a SessionManager placing through a scripted controller, as user alice. The
// controller's reports (FakeControllerClient::ReportTo) are applied as RegistryManager applies
// a controller's event stream.
struct ManagerFixture : StoreFixture {
  FakeControllerClient client;
  TemplateStore templates{&pool};
  SessionWatchHub changes{db.dsn()};
  ControllerEventStore events{&pool};
  SessionManager manager{&sessions, &controllers, &client, &templates, &changes};
  Caller alice{Role::kUser, "user/alice"};

  ManagerFixture() {
    changes.Start();
    client.ReportTo([this](const std::string& id, const v1::ControllerSessionResponse& answer) {
      ReportAsController(id, answer);
    });
  }
  // A test that fails while the controller holds its answers must not leave the manager's start
  // threads waiting on them forever: the manager joins them as it goes.
  ~ManagerFixture() {
    client.ReleaseCreates();
    std::lock_guard<std::mutex> lock(stop_mu_);
    CHECK(report_errors_.empty());  // Reports run on the start pool's threads: checked here.
  }

  // Applies `answer`'s outcome as the report of the controller the session is placed on; the
  // sessions the API server answers "stop" for are kept in told_to_stop(). Any thread.
  void ReportAsController(const std::string& id, const v1::ControllerSessionResponse& answer) {
    auto placed = sessions.Get(id);
    if (!placed.ok()) return NoteReportError(placed.status());
    ReportedChange reported;
    reported.session_id = id;
    reported.change.phase = answer.phase();
    reported.change.message = answer.message();
    reported.change.worker_id = answer.worker_id();
    reported.change.node_id = answer.node_id();
    reported.change.gpu_uuids = std::vector<std::string>(answer.gpu_uuids().begin(), answer.gpu_uuids().end());
    const std::string controller_id = placed->controller_id();
    auto applied = events.Apply(controller_id, "", {reported}, [&](const v1::Session& stored, const ReportedChange& r) {
      return JudgeControllerReport(controller_id, stored, r);
    });
    if (!applied.ok()) return NoteReportError(applied.status());
    std::lock_guard<std::mutex> lock(stop_mu_);
    for (const auto& s : applied->sessions_to_stop) told_to_stop_.push_back(s);
  }
  std::vector<std::string> told_to_stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    return told_to_stop_;
  }

 private:
  void NoteReportError(const absl::Status& s) {
    std::lock_guard<std::mutex> lock(stop_mu_);
    report_errors_.push_back(s.ToString());
  }
  std::mutex stop_mu_;
  std::vector<std::string> told_to_stop_;
  std::vector<std::string> report_errors_;

 public:

  // A one-GPU `sleep 60` create with `request_id`, whose caller waits for the controller's
  // answer (wait_for_running) unless `wait` is false.
  v1::CreateSessionRequest OneGpu(const std::string& request_id, bool wait = true) const {
    v1::CreateSessionRequest r;
    r.set_request_id(request_id);
    r.set_wait_for_running(wait);
    r.mutable_spec()->add_command("sleep");
    r.mutable_spec()->add_command("60");
    r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
    return r;
  }

  // OneGpu(request_id) created while the controller's answer comes too late (so the session is
  // left SCHEDULED and reserved); the controller's next answer, to a retry or the sweep, is RUNNING.
  absl::StatusOr<v1::Session> CreateAnsweredLate(const std::string& request_id) {
    client.ScriptCreate({absl::DeadlineExceededError("controller at 127.0.0.1:1: Deadline Exceeded"),
                         FakeControllerClient::Running()});
    return manager.Create(alice, OneGpu(request_id));
  }
};

}  // namespace gantry::api::testing
