// Preemption on a real fleet: a create of a high class on a full fleet stops exactly the
// session the rules choose (lowest priority, most recently started, past its min_runtime, of a
// preemptible class) through the normal SIGTERM-grace-SIGKILL path, and runs within 2 s plus
// that grace; the victim says who displaced it; what may not be preempted never is.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/gantryctl_runner.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

constexpr absl::Duration kStopGrace = absl::Seconds(1);

void CreateClass(v1::AdminService::Stub* admin, const std::string& name, int value, bool preemptible,
                 int64_t min_runtime_seconds) {
  grpc::ClientContext ctx;
  v1::CreatePriorityClassRequest request;
  request.set_name(name);
  request.set_value(value);
  request.set_preemptible(preemptible);
  request.mutable_min_runtime()->set_seconds(min_runtime_seconds);
  v1::PriorityClass created;
  grpc::Status s = admin->CreatePriorityClass(&ctx, request, &created);
  INFO(s.error_message());
  REQUIRE(s.ok());
}

// A one-GPU session of `klass` whose process ignores SIGTERM (so its stop takes the grace),
// RUNNING before this returns.
v1::Session Run(LocalFleet& fleet, const std::string& marker, const std::string& klass) {
  v1::SessionSpec spec = ShellSpec("trap '' TERM; exec sleep " + marker, 1);
  spec.set_priority_class(klass);
  v1::Session session;
  grpc::Status s = fleet.CreateAsAdmin(spec, &session);
  INFO(s.error_message());
  REQUIRE(s.ok());
  REQUIRE(session.phase() == v1::SESSION_PHASE_RUNNING);
  return session;
}

grpc::Status CreateUrgent(LocalFleet& fleet, const std::string& marker, v1::Session* session) {
  v1::CreateSessionRequest request;
  *request.mutable_spec() = SleepSpec(marker, 1);
  request.mutable_spec()->set_priority_class("urgent");
  grpc::ClientContext ctx;
  return fleet.AdminSessions()->CreateSession(&ctx, request, session);
}

std::string Phase(LocalFleet& fleet, const std::string& id) {
  return fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + id + "'");
}

v1::Session Get(LocalFleet& fleet, const std::string& id) {
  grpc::ClientContext ctx;
  v1::GetSessionRequest request;
  request.set_id(id);
  v1::Session session;
  REQUIRE(fleet.AdminSessions()->GetSession(&ctx, request, &session).ok());
  return session;
}

}  // namespace

TEST_CASE("preemption: a high class on a full fleet stops exactly the expected victim and runs within 2 s of its "
          "grace, and never one under min_runtime or not preemptible",
          "[e2e][preemption]") {
  LocalFleet fleet;
  // Its longest: the preemptor is placed because its victim's stop wakes the queue, not by a
  // round that comes anyway.
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "1m";
  fleet.api_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.api_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("api-metrics.port");
  fleet.controller_env["GANTRY_STOP_GRACE"] = "1s";
  fleet.StartSingleNode("4");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  CreateClass(admin.get(), "batch", 0, /*preemptible=*/true, 0);
  CreateClass(admin.get(), "patient", 10, /*preemptible=*/true, 3600);
  CreateClass(admin.get(), "pinned", 20, /*preemptible=*/false, 0);
  CreateClass(admin.get(), "urgent", 1000, /*preemptible=*/false, 0);
  const v1::Session older = Run(fleet, "3600.6101", "batch");
  const v1::Session newer = Run(fleet, "3600.6102", "batch");
  const v1::Session patient = Run(fleet, "3600.6103", "patient");
  const v1::Session pinned = Run(fleet, "3600.6104", "pinned");

  // The lowest priority, and of the two batch sessions the one started last.
  const absl::Time asked = absl::Now();
  v1::Session first;
  grpc::Status s = CreateUrgent(fleet, "3600.6105", &first);
  INFO(s.error_message());
  REQUIRE(s.ok());
  CHECK(first.phase() == v1::SESSION_PHASE_PENDING);
  CHECK(absl::StrContains(first.message(), "preempting 1 session(s) of lower priority"));
  REQUIRE(WaitFor([&] { return Phase(fleet, first.id()) == "RUNNING"; }, absl::Seconds(30)));
  const absl::Duration took = absl::Now() - asked;
  INFO("preemptor RUNNING after " << absl::FormatDuration(took));
  CHECK(took <= absl::Seconds(2) + kStopGrace);
  CHECK(Phase(fleet, newer.id()) == "TERMINATED");
  CHECK(PidsWithCmdline("sleep 3600.6102").empty());  // Its process ignored SIGTERM: killed after the grace.
  const v1::Session victim = Get(fleet, newer.id());
  REQUIRE(victim.conditions_size() == 1);
  CHECK(victim.conditions(0).type() == "Preempted");
  CHECK(victim.conditions(0).reason() == "HigherPriority");
  CHECK(absl::StrContains(victim.conditions(0).message(), "preempted by session " + first.id()));
  // Its history says why it stopped.
  CHECK(absl::StrContains(fleet.db().Scalar("SELECT message FROM session_events WHERE session_id = '" + newer.id() +
                                            "' AND to_phase = 'TERMINATING'"),
                          "preempted by session " + first.id()));
  for (const auto& kept : {older, patient, pinned}) CHECK(Phase(fleet, kept.id()) == "RUNNING");

  // Next: the older batch session; after it, nothing may be preempted (one is under its
  // min_runtime, one is not preemptible) and the create is refused with nothing written.
  v1::Session second;
  REQUIRE(CreateUrgent(fleet, "3600.6106", &second).ok());
  REQUIRE(WaitFor([&] { return Phase(fleet, second.id()) == "RUNNING"; }, absl::Seconds(30)));
  CHECK(Phase(fleet, older.id()) == "TERMINATED");
  v1::Session third;
  CHECK(CreateUrgent(fleet, "3600.6107", &third).error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(Phase(fleet, patient.id()) == "RUNNING");
  CHECK(Phase(fleet, pinned.id()) == "RUNNING");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "6");
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE preempted_by IS NOT NULL") == "2");

  // The cluster's status counts them by class.
  grpc::ClientContext ctx;
  v1::GetClusterStatusRequest request;
  v1::ClusterStatus status;
  REQUIRE(admin->GetClusterStatus(&ctx, request, &status).ok());
  REQUIRE(status.priority_classes_size() == 1);
  CHECK(status.priority_classes(0).priority_class() == "batch");
  CHECK(status.priority_classes(0).preempted() == 2);
  // And on /metrics: as PostgreSQL keeps them, and as this replica preempted them.
  const int port = WaitForPortFile(fleet.dir().Sub("api-metrics.port"), absl::Seconds(5));
  REQUIRE(port > 0);
  const std::string metrics = ScrapeMetrics(fleet.pki().ca(), port);
  INFO(metrics);
  CHECK(absl::StrContains(metrics, "gantry_preempted_sessions{priority_class=\"batch\"} 2\n"));
  CHECK(absl::StrContains(metrics, "gantry_preemptions_total{priority_class=\"batch\"} 2\n"));
  CHECK(absl::StrContains(metrics, "gantry_queue_length{priority_class=\"batch\"} 0\n"));
  // And as an operator reads it.
  Gantryctl ctl(fleet);
  const Ran cluster = ctl({"cluster", "status"});
  INFO(cluster.err);
  CHECK(absl::StrContains(cluster.out, "Queues:       batch: 0 queued, 2 preempted\n"));
}

TEST_CASE("preemption: a queued create of a high class preempts once a victim has run its min_runtime",
          "[e2e][preemption]") {
  LocalFleet fleet;
  fleet.api_env["GANTRY_QUEUE_DISPATCH_INTERVAL"] = "200ms";
  fleet.controller_env["GANTRY_STOP_GRACE"] = "1s";
  fleet.StartSingleNode("1");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  CreateClass(admin.get(), "patient", 0, /*preemptible=*/true, 3);
  CreateClass(admin.get(), "urgent", 1000, /*preemptible=*/false, 0);
  const v1::Session running = Run(fleet, "3600.6111", "patient");
  v1::CreateSessionRequest request;
  *request.mutable_spec() = SleepSpec("3600.6112", 1);
  request.mutable_spec()->set_priority_class("urgent");
  request.set_queue(true);
  grpc::ClientContext ctx;
  v1::Session queued;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, request, &queued).ok());
  CHECK(queued.phase() == v1::SESSION_PHASE_PENDING);
  // Not yet: the victim has not run its 3 s.
  const v1::Session waiting = Get(fleet, queued.id());
  REQUIRE(waiting.conditions_size() == 1);
  CHECK(waiting.conditions(0).type() == "QueuePosition");
  CHECK(waiting.conditions(0).message() == "1 of 1");
  REQUIRE(WaitFor([&] { return Phase(fleet, queued.id()) == "RUNNING"; }, absl::Seconds(30)));
  CHECK(Phase(fleet, running.id()) == "TERMINATED");
  // Stopped after its min_runtime, never before.
  CHECK(fleet.db().Scalar("SELECT (ended_at - started_at) >= interval '3 seconds' FROM sessions WHERE id = '" +
                          running.id() + "'") == "t");
}

}  // namespace gantry::testing
