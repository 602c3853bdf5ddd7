// Network partitions, for real: a controller and its worker in a network namespace of their
// own, joined to the API server's by a veth pair whose link the test takes down. Sessions run
// on through a partition; what happened meanwhile reaches PostgreSQL when it heals; and a
// partition longer than the offline deadline leaves no process behind once it heals.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "tests/support/invariants.h"
#include "tests/support/local_fleet.h"
#include "tests/support/netns.h"

namespace gantry::testing {
namespace {

// The API server on this side, controller "node1" and worker "w1" (2 GPUs) on the far side.
void StartPartitionableNode(LocalFleet& fleet, NetNamespace& ns) {
  fleet.api_listen_ip = "0.0.0.0";
  fleet.api_cert_ips = {ns.host_ip()};
  fleet.StartApi();
  fleet.node_network = {ns.Exec(), ns.far_ip(), ns.host_ip()};
  fleet.StartController();
  fleet.StartWorker("w1", "2");
  fleet.WaitUntilSchedulable(1);
}

std::string Column(LocalFleet& fleet, const std::string& column, const std::string& id) {
  return fleet.db().Scalar("SELECT " + column + " FROM sessions WHERE id = '" + id + "'");
}

// Once a partition has healed and the API server has heard the controller again, a create
// needing `gpus` goes through at once: the controller is healthy (its channel is up again) and
// reports a worker with the GPUs free (a process stopped after the heal frees its GPU only when
// its worker's next heartbeat and then the controller's reach the API server).
grpc::Status CreateAfterHealing(LocalFleet& fleet, const v1::SessionSpec& spec, v1::Session* out) {
  fleet.WaitUntilSchedulable(spec.resources().gpus().count());
  return fleet.CreateAsAdmin(spec, out);
}

std::string ControllerStatus(LocalFleet& fleet) {
  return fleet.db().Scalar("SELECT status FROM controllers WHERE name = 'node1'");
}

}  // namespace

TEST_CASE("partition: sessions run on while the API server cannot reach their controller, and catch up when it heals",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  LocalFleet fleet;
  // Offline only after 100 missed checks (over 100 s): this partition stays shorter than that.
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100";
  StartPartitionableNode(fleet, ns);
  v1::Session steady, short_lived;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.4242", 1), &steady).ok());
  REQUIRE(fleet.CreateAsAdmin(ShellSpec("sleep 3.4343; exit 3"), &short_lived).ok());
  REQUIRE(steady.phase() == v1::SESSION_PHASE_RUNNING);
  const auto pids = PidsWithCmdline("sleep 3600.4242");
  REQUIRE(pids.size() == 1);

  ns.Cut();
  CHECK(WaitFor([&] { return ControllerStatus(fleet) == "unhealthy"; }, absl::Seconds(10)));
  // The short session ends during the partition; the API server cannot know yet.
  REQUIRE(WaitFor([] { return PidsWithCmdline("sleep 3.4343").empty(); }, absl::Seconds(10)));
  CHECK(Column(fleet, "phase", short_lived.id()) == "RUNNING");
  // Nothing can be placed meanwhile, and the refusal says so.
  v1::Session refused;
  grpc::Status st = fleet.CreateAsAdmin(SleepSpec("3600.4444", 1), &refused);
  CHECK_FALSE(st.ok());
  CHECK(PidsWithCmdline("sleep 3600.4444").empty());

  ns.Heal();
  CHECK(WaitFor([&] { return ControllerStatus(fleet) == "healthy"; }, absl::Seconds(20)));
  // What happened during the partition arrives: the exit, with its code.
  CHECK(WaitFor([&] { return Column(fleet, "phase", short_lived.id()) == "FAILED"; }, absl::Seconds(20)));
  CHECK(absl::StrContains(Column(fleet, "message", short_lived.id()), "3"));
  CHECK(Column(fleet, "phase", steady.id()) == "RUNNING");
  CHECK(PidsWithCmdline("sleep 3600.4242") == pids);
  v1::Session after;
  grpc::Status created = CreateAfterHealing(fleet, SleepSpec("3600.3801", 1), &after);
  INFO(created.error_message());
  REQUIRE(created.ok());
  RequireInvariants(fleet, {steady.id(), short_lived.id(), after.id()});
}

TEST_CASE("partition: past the offline deadline the sessions are FAILED, and their processes stop once it heals",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  LocalFleet fleet;
  StartPartitionableNode(fleet, ns);  // offline after 6 missed checks: 300 ms apart, 1 s each
  v1::Session s;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.3803", 1), &s).ok());
  REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);

  ns.Cut();
  REQUIRE(WaitFor([&] { return Column(fleet, "phase", s.id()) == "FAILED"; }, absl::Seconds(20)));
  CHECK(ControllerStatus(fleet) == "offline");  // Marked in the same step as the session.
  // Its process cannot be told yet: it runs on behind the partition.
  CHECK(PidsWithCmdline("sleep 3600.3803").size() == 1);

  ns.Heal();
  // Once the controller is heard from again, the session PostgreSQL gave up on is stopped:
  // no process outlives its session, and its GPU is free for the next one.
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3803").empty(); }, absl::Seconds(30)));
  CHECK(WaitFor([&] { return ControllerStatus(fleet) == "healthy"; }, absl::Seconds(20)));
  v1::Session next;
  grpc::Status created = CreateAfterHealing(fleet, SleepSpec("3600.4747", 2), &next);
  INFO(created.error_message());
  REQUIRE(created.ok());
  RequireInvariants(fleet, {s.id(), next.id()});
}

TEST_CASE("partition: a worker cut off from its controller past the offline deadline keeps its sessions when it heals",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  LocalFleet fleet;
  fleet.StartApi();
  // The controller on this side, listening on the link; the worker on the far side.
  fleet.node_network.controller_ip = ns.host_ip();
  fleet.StartController();
  fleet.node_network.exec_prefix = ns.Exec();
  fleet.StartWorker("w1", "1");
  fleet.WaitUntilSchedulable(1);
  v1::Session s;
  REQUIRE(fleet.CreateAsAdmin(SleepSpec("3600.3804", 1), &s).ok());
  REQUIRE(s.phase() == v1::SESSION_PHASE_RUNNING);
  const auto pids = PidsWithCmdline("sleep 3600.3804");
  REQUIRE(pids.size() == 1);

  ns.Cut();
  // Offline after 3 missed heartbeats of 1 s; its session waits for it (the reconnect grace).
  REQUIRE(WaitFor([&] { return fleet.controller().Log().find("worker w1 offline") != std::string::npos; },
                  absl::Seconds(10)));
  CHECK(PidsWithCmdline("sleep 3600.3804") == pids);
  ns.Heal();
  // The worker finds its stream dead, reconnects and re-reports the session, which never stopped.
  CHECK(WaitFor([&] {
    return fleet.controller().Log().find("worker w1 connected with 1 running session") != std::string::npos;
  }, absl::Seconds(30)));
  INFO(fleet.controller().Log());
  CHECK(Column(fleet, "phase", s.id()) == "RUNNING");
  CHECK(PidsWithCmdline("sleep 3600.3804") == pids);
  RequireInvariants(fleet, {s.id()});
}

}  // namespace gantry::testing
