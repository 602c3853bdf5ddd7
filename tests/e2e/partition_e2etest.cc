// Network partitions, for real: a controller and its worker in a network namespace of their
// own, joined to the API server's by a veth pair whose link the test takes down. Sessions run
// on through a partition; what happened meanwhile reaches PostgreSQL when it heals; and a
// partition longer than the offline deadline leaves no process behind once it heals. A one-way
// partition (packets to the controller's port dropped; its own connections out still work) is
// shown as a controller that heartbeats but cannot be reached, and costs creates no wait.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <pqxx/connection>
#include <pqxx/nontransaction>

#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/gantryctl_runner.h"
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

std::string ControllerStatus(LocalFleet& fleet, const std::string& name = "node1") {
  return fleet.db().Scalar("SELECT status FROM controllers WHERE name = '" + name + "'");
}

// node1 (on the far side, as StartPartitionableNode) and node2 on this side, with a worker each.
void StartTwoNodes(LocalFleet& fleet, NetNamespace& ns, const std::string& node2_gpus) {
  StartPartitionableNode(fleet, ns);
  fleet.node_network = {};
  fleet.StartController("node2");
  fleet.StartWorker("w2", node2_gpus, 1);
  fleet.WaitUntilWorkersOnline(2);
}

v1::Controller ControllerNamed(LocalFleet& fleet, const std::string& name) {
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  v1::ListControllersResponse listed;
  grpc::ClientContext ctx;
  REQUIRE(admin->ListControllers(&ctx, v1::ListControllersRequest(), &listed).ok());
  for (const auto& c : listed.controllers()) {
    if (c.name() == name) return c;
  }
  FAIL("no controller " << name);
  return {};
}

const v1::ControllerCondition& Condition(const v1::Controller& c, const std::string& type) {
  for (const auto& condition : c.conditions()) {
    if (condition.type() == type) return condition;
  }
  FAIL("controller " << c.name() << " has no condition " << type);
  return c.conditions(0);
}

// A create that names no controller, timed.
grpc::Status TimedCreate(LocalFleet& fleet, const v1::SessionSpec& spec, v1::Session* out, absl::Duration* took) {
  const absl::Time start = absl::Now();
  v1::CreateSessionRequest request;
  request.set_wait_for_running(true);
  *request.mutable_spec() = spec;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(start + absl::Seconds(30)));
  grpc::Status s = fleet.AdminSessions()->CreateSession(&ctx, request, out);
  *took = absl::Now() - start;
  return s;
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

TEST_CASE("partition: a controller that heartbeats but cannot be called is shown unreachable and gets no new session, and its own sessions run on",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  LocalFleet fleet;
  StartTwoNodes(fleet, ns, "4");
  const std::string node1_id = fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node1'");
  v1::Session steady;
  {
    v1::CreateSessionRequest request;
    request.set_wait_for_running(true);
    *request.mutable_spec() = SleepSpec("3600.3811", 1);
    request.set_controller_id(node1_id);
    grpc::ClientContext ctx;
    REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, request, &steady).ok());
  }
  REQUIRE(steady.phase() == v1::SESSION_PHASE_RUNNING);
  const auto pids = PidsWithCmdline("sleep 3600.3811");
  REQUIRE(pids.size() == 1);

  ns.DropInboundTo(fleet.controller_port(0));
  // Three checks missed (300 ms apart, 1 s each): unreachable, though its heartbeats still arrive.
  REQUIRE(WaitFor([&] { return ControllerStatus(fleet) == "unhealthy"; }, absl::Seconds(15)));
  // Well past the offline bound (6 misses): with its heartbeats arriving it is never offline,
  // and its session is neither failed nor stopped.
  REQUIRE(WaitFor([&] {
    return std::stoi(fleet.db().Scalar("SELECT missed_health_checks FROM controllers WHERE name = 'node1'")) >= 10;
  }, absl::Seconds(20)));
  CHECK(ControllerStatus(fleet) == "unhealthy");
  CHECK(Column(fleet, "phase", steady.id()) == "RUNNING");
  CHECK(PidsWithCmdline("sleep 3600.3811") == pids);

  // Shown, condition by condition, with since when and why.
  const v1::Controller node1 = ControllerNamed(fleet, "node1");
  CHECK(node1.status() == v1::CONTROLLER_STATUS_UNHEALTHY);
  CHECK(Condition(node1, "Heartbeating").ok());
  const v1::ControllerCondition& reachable = Condition(node1, "Reachable");
  CHECK_FALSE(reachable.ok());
  CHECK(reachable.has_since());
  CHECK(absl::Now() - absl::FromUnixSeconds(reachable.since().seconds()) > absl::Seconds(2));
  CHECK(absl::StrContains(reachable.message(), "health checks unanswered"));
  const v1::Controller node2 = ControllerNamed(fleet, "node2");
  CHECK(Condition(node2, "Reachable").ok());
  CHECK(Condition(node2, "Heartbeating").ok());
  {
    auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
    v1::ClusterStatus cs;
    grpc::ClientContext ctx;
    REQUIRE(admin->GetClusterStatus(&ctx, v1::GetClusterStatusRequest(), &cs).ok());
    CHECK(cs.controllers_unreachable() == 1);
    CHECK(cs.controllers_not_heartbeating() == 0);
  }
  Gantryctl gantryctl(fleet);
  Ran listed = gantryctl({"controllers", "list"});
  REQUIRE(listed.code == 0);
  std::string node1_line, node2_line;
  for (absl::string_view line : absl::StrSplit(listed.out, '\n')) {
    if (absl::StartsWith(line, "node1")) node1_line = std::string(line);
    if (absl::StartsWith(line, "node2")) node2_line = std::string(line);
  }
  CHECK(absl::StrContains(node1_line, "UNHEALTHY"));
  CHECK(absl::StrContains(node1_line, "unreachable"));
  CHECK_FALSE(absl::StrContains(node2_line, "unreachable"));
  Ran status = gantryctl({"cluster", "status"});
  CHECK(absl::StrContains(status.out, "1 unreachable, 0 not heartbeating"));

  // Creates go to node2, each at once: node1 is not even offered them (a create that tried it
  // first would wait out the 3 s connect bound).
  std::vector<std::string> ids = {steady.id()};
  for (int i = 0; i < 3; ++i) {
    v1::Session s;
    absl::Duration took;
    grpc::Status created = TimedCreate(fleet, SleepSpec("3600.3812", 1), &s, &took);
    INFO(created.error_message());
    REQUIRE(created.ok());
    CHECK(s.phase() == v1::SESSION_PHASE_RUNNING);
    CHECK(Column(fleet, "(SELECT name FROM controllers c WHERE c.id = controller_id)", s.id()) == "node2");
    CHECK(took < absl::Seconds(3));
    ids.push_back(s.id());
  }
  // One that must go to node1 is refused at once, naming the field, and leaves nothing behind.
  {
    v1::CreateSessionRequest request;
    request.set_wait_for_running(true);
    *request.mutable_spec() = SleepSpec("3600.3813", 1);
    request.set_controller_id(node1_id);
    grpc::ClientContext ctx;
    v1::Session refused;
    grpc::Status st = fleet.AdminSessions()->CreateSession(&ctx, request, &refused);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(absl::StrContains(st.error_message(), "controller_id"));
    CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions WHERE spec::text LIKE '%3600.3813%'") == "0");
    CHECK(PidsWithCmdline("sleep 3600.3813").empty());
  }

  ns.AllowInboundTo(fleet.controller_port(0));
  REQUIRE(WaitFor([&] { return ControllerStatus(fleet) == "healthy"; }, absl::Seconds(20)));
  const v1::Controller healed = ControllerNamed(fleet, "node1");
  CHECK(Condition(healed, "Reachable").ok());
  CHECK_FALSE(Condition(healed, "Reachable").has_since());
  CHECK(Column(fleet, "phase", steady.id()) == "RUNNING");
  CHECK(PidsWithCmdline("sleep 3600.3811") == pids);
  RequireInvariants(fleet, ids);
}

TEST_CASE("partition: a placement on a controller that cannot be called is a refusal: the create moves on within its deadline",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  LocalFleet fleet;
  // Health checks never take node1 out of placement here, so creates are offered to it first.
  fleet.api_env["GANTRY_UNHEALTHY_AFTER"] = "100000";
  fleet.api_env["GANTRY_OFFLINE_AFTER"] = "100000";
  StartTwoNodes(fleet, ns, "4");
  // node2 busier than node1, so node1 (least loaded) is every create's first candidate.
  v1::Session busy;
  {
    v1::CreateSessionRequest request;
    request.set_wait_for_running(true);
    *request.mutable_spec() = SleepSpec("3600.5454", 0);
    request.set_controller_id(fleet.db().Scalar("SELECT id FROM controllers WHERE name = 'node2'"));
    grpc::ClientContext ctx;
    REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, request, &busy).ok());
  }
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT active_sessions FROM controllers WHERE name = 'node2'") == "1";
  }, absl::Seconds(10)));

  ns.DropInboundTo(fleet.controller_port(0));
  std::vector<std::string> ids = {busy.id()};
  for (int i = 0; i < 3; ++i) {
    v1::Session s;
    absl::Duration took;
    grpc::Status created = TimedCreate(fleet, SleepSpec("3600.5555", 1), &s, &took);
    INFO("create " << i << " took " << absl::FormatDuration(took) << ": " << created.error_message());
    REQUIRE(created.ok());
    CHECK(Column(fleet, "(SELECT name FROM controllers c WHERE c.id = controller_id)", s.id()) == "node2");
    // The first may have found node1's connection up, its request lost in the partition: the
    // keepalive ends it within 10 s, then the connect bound (3 s) refuses. The next ones dial
    // afresh and are refused after the connect bound.
    CHECK(took < (i == 0 ? absl::Seconds(18) : absl::Seconds(8)));
    ids.push_back(s.id());
  }
  // Nothing half-written: no session was left on node1, and none of its processes ran there.
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions s JOIN controllers c ON c.id = s.controller_id "
                          "WHERE c.name = 'node1'") == "0");
  CHECK(PidsWithCmdline("sleep 3600.5555").size() == 3);
  ns.AllowInboundTo(fleet.controller_port(0));
  RequireInvariants(fleet, ids);
}

TEST_CASE("partition: the health check leader cut off from PostgreSQL loses the lead, and another replica takes over "
          "within 15 s",
          "[e2e][faults][partition]") {
  NetNamespace ns;
  // A PostgreSQL of its own, listening on this side of the link too.
  TempDir pg_dir;
  const int pg_port = FreePort();
  const std::string script = SourcePath("tools/lib/throwaway-pg.sh");
  RunCommand(absl::StrCat(script, " start ", pg_dir.Sub("pg"), " ", pg_port, " ", ns.host_ip()));
  struct StopPostgres {
    std::string command;
    ~StopPostgres() { (void)std::system(command.c_str()); }
  } stop_postgres{absl::StrCat(script, " purge ", pg_dir.Sub("pg"), " >/dev/null 2>&1")};
  const std::string local_dsn = absl::StrCat("host=", pg_dir.Sub("pg"), "/sock port=", pg_port,
                                             " user=postgres dbname=postgres connect_timeout=5");
  const std::string over_link = absl::StrCat("host=", ns.host_ip(), " port=", pg_port,
                                             " user=postgres dbname=postgres connect_timeout=5");
  LocalFleet fleet;
  // The controller listens where both replicas can check it: this side's end of the link.
  fleet.node_network.controller_ip = ns.host_ip();
  // The replica behind the link starts first, so it leads.
  Process& far = fleet.StartApiReplicaIn(ns.Exec(), ns.far_ip(), over_link);
  REQUIRE(WaitFor([&] { return far.Log().find("this replica now runs the controller health checks") != std::string::npos; },
                  absl::Seconds(20)));
  // This fleet's database is that PostgreSQL, not the suite's.
  auto status = [&] {
    pqxx::connection conn(local_dsn);
    pqxx::nontransaction tx(conn);
    pqxx::result r = tx.exec("SELECT status FROM controllers");
    return r.empty() ? std::string() : r[0][0].as<std::string>();
  };
  fleet.StartApi(local_dsn);
  fleet.StartController();
  fleet.StartWorker("w1", "1");
  REQUIRE(WaitFor([&] { return status() == "healthy"; }, absl::Seconds(20)));
  CHECK(fleet.api().Log().find("now runs the controller health checks") == std::string::npos);

  // The link goes down: the leader's connection, and the advisory lock it holds, are
  // blackholed, not closed.
  ns.Cut();
  const absl::Time cut_at = absl::Now();
  REQUIRE(WaitFor([&] {
    return fleet.api().Log().find("this replica now runs the controller health checks") != std::string::npos;
  }, absl::Seconds(20)));
  const absl::Duration took_over_after = absl::Now() - cut_at;
  INFO("took over after " << absl::FormatDuration(took_over_after) << "\n" << far.Log());
  CHECK(took_over_after < absl::Seconds(15));
  CHECK(WaitFor([&] { return far.Log().find("no longer runs the controller health checks") != std::string::npos; },
                absl::Seconds(15)));
  // The new leader checks: a controller that stops answering is marked unhealthy.
  fleet.controller().Signal(SIGSTOP);
  const bool marked = WaitFor([&] { return status() == "unhealthy"; }, absl::Seconds(15));
  fleet.controller().Signal(SIGCONT);
  CHECK(marked);
}

}  // namespace gantry::testing
