// A session is a tenant's code, and so is a capability handler fed a tenant's payload: on a real
// fleet, each tries what a hostile tenant would (read the worker's key and environment, another
// tenant's files and log; signal and ptrace the worker and another session; write into the
// worker's state; reach the controller without a certificate), and every attempt fails. They
// get uids of their own only from a worker started as root: run elsewhere, these tests fail
// (they do not skip).
#include <grpcpp/client_context.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

constexpr char kJoinTokenInEnv[] = "join-token-a-tenant-must-never-see";

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& bearer) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  ctx->AddMetadata("authorization", "Bearer " + bearer);
  return ctx;
}

std::string UserKey(LocalFleet& fleet, const std::string& principal) {
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  v1::CreateApiKeyRequest req;
  req.set_principal(principal);
  req.set_role("user");
  v1::CreateApiKeyResponse key;
  grpc::ClientContext ctx;
  REQUIRE(admin->CreateApiKey(&ctx, req, &key).ok());
  return key.api_key();
}

std::string Contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Each attempt prints "LEAK: <what>" if it worked; the last line is "DONE".
constexpr char kHostileScript[] = R"SH(
attempt() { what="$1"; shift; if "$@" >/dev/null 2>&1; then echo "LEAK: $what"; fi; }
echo "UID=$(id -u) GID=$(id -g) GROUPS=$(id -G)"
attempt "the worker's private key" cat "$WORKER_KEY"
attempt "the CA's private key" cat "$PKI_DIR/ca.key"
attempt "the worker's environment" cat "/proc/$WORKER_PID/environ"
attempt "the worker's open files" ls "/proc/$WORKER_PID/fd"
attempt "the join token in this environment" sh -c 'env | grep -q JOIN_TOKEN'
attempt "a listing of the session directory" ls "$SESSION_DIR"
attempt "another session's home" ls "$OTHER_HOME"
attempt "another session's file" cat "$OTHER_HOME/secret"
attempt "another session's log" cat "$OTHER_LOG"
attempt "a signal to the worker" kill -0 "$WORKER_PID"
attempt "a signal to another session" kill -0 "$OTHER_PID"
attempt "ptrace of the worker" python3 -c 'import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
sys.exit(0 if libc.ptrace(16, int(sys.argv[1]), 0, 0) == 0 else 1)' "$WORKER_PID"
attempt "a file in the session directory" touch "$SESSION_DIR/planted"
attempt "a file in another session's home" touch "$OTHER_HOME/planted"
attempt "the controller without a certificate" python3 -c 'import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
sys.exit(0 if s.recv(1) else 1)' "$CONTROLLER_PORT"
touch "$HOME/mine" && test "$(stat -c %a "$HOME")" = 700 && echo "HOME OK"
echo DONE
)SH";

// A handler is told what to try by its payload: KEY=VALUE lines, one per variable.
constexpr char kHostileHandlerPrologue[] = "#!/bin/sh\nwhile IFS= read -r line; do export \"$line\"; done\n";

}  // namespace

TEST_CASE("a hostile tenant's session reaches none of the node's secrets, other tenants or the worker",
          "[e2e][security]") {
  // Uids of their own take a worker started as root (CAP_SETUID): CI runs the suite as root.
  REQUIRE(geteuid() == 0);
  LocalFleet fleet;
  fleet.worker_env["GANTRY_JOIN_TOKEN"] = kJoinTokenInEnv;  // as a Kubernetes worker once carried it
  fleet.StartSingleNode("1");
  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  const std::string session_dir = fleet.dir().Sub("sessions-w1");

  // Bob's session keeps a secret in its home and writes another to its log.
  v1::CreateSessionRequest bob_req;
  bob_req.set_wait_for_running(true);
  *bob_req.mutable_spec() = ShellSpec("echo bob-log-secret; echo bob-file-secret > \"$HOME/secret\"; exec sleep 3600.3901", 0);
  v1::Session bob;
  REQUIRE(sessions->CreateSession(Ctx(UserKey(fleet, "bob")).get(), bob_req, &bob).ok());
  const std::string bob_home = session_dir + "/" + bob.id();
  REQUIRE(WaitFor([&] { return Contents(bob_home + "/secret") == "bob-file-secret\n"; }, absl::Seconds(10)));
  // The shell writes the file, then execs sleep: wait for that too.
  REQUIRE(WaitFor([&] { return PidsWithCmdline("sleep 3600.3901").size() == 1; }, absl::Seconds(10)));
  const std::vector<pid_t> bob_pids = PidsWithCmdline("sleep 3600.3901");

  // Alice's session tries everything.
  v1::CreateSessionRequest alice_req;
  alice_req.set_wait_for_running(true);
  *alice_req.mutable_spec() = ShellSpec(std::string(kHostileScript) + "exec sleep 3600.3902\n", 0);
  auto& env = *alice_req.mutable_spec()->mutable_env();
  env["WORKER_PID"] = std::to_string(fleet.worker().pid());
  env["WORKER_KEY"] = fleet.pki().dir() + "/worker-w1.key";
  env["PKI_DIR"] = fleet.pki().dir();
  env["SESSION_DIR"] = session_dir;
  env["OTHER_HOME"] = bob_home;
  env["OTHER_LOG"] = session_dir + "/" + bob.id() + ".log";
  env["OTHER_PID"] = std::to_string(bob_pids[0]);
  env["CONTROLLER_PORT"] = fleet.controller_address().substr(fleet.controller_address().rfind(':') + 1);
  v1::Session alice;
  REQUIRE(sessions->CreateSession(Ctx(UserKey(fleet, "alice")).get(), alice_req, &alice).ok());
  const std::string alice_log = session_dir + "/" + alice.id() + ".log";
  REQUIRE(WaitFor([&] { return absl::StrContains(Contents(alice_log), "DONE\n"); }, absl::Seconds(30)));
  const std::string out = Contents(alice_log);
  INFO(out << fleet.worker().Log());
  CHECK_FALSE(absl::StrContains(out, "LEAK"));
  CHECK(absl::StrContains(out, "HOME OK"));

  // Each session ran as a uid of its own from the range, in a group of the same number, with
  // no supplementary groups (none configured), and never the worker's.
  auto uid_of = [](const std::string& log_or_status) -> int64_t {
    size_t at = log_or_status.find("UID=");
    int64_t uid = -1;
    if (at != std::string::npos) {
      (void)absl::SimpleAtoi(log_or_status.substr(at + 4, log_or_status.find(' ', at) - at - 4), &uid);
    }
    return uid;
  };
  const int64_t alice_uid = uid_of(out);
  CHECK(alice_uid >= 200000);
  CHECK(alice_uid <= 200999);
  CHECK(absl::StrContains(out, absl::StrCat("GID=", alice_uid, " GROUPS=", alice_uid, "\n")));
  struct stat bob_home_st;
  REQUIRE(stat(bob_home.c_str(), &bob_home_st) == 0);
  CHECK(static_cast<int64_t>(bob_home_st.st_uid) != alice_uid);
  CHECK(bob_home_st.st_uid >= 200000);
  CHECK((bob_home_st.st_mode & 0777) == 0700);

  // Nothing changed: no file planted, Bob's session and the worker untouched.
  struct stat st;
  CHECK(stat((session_dir + "/planted").c_str(), &st) != 0);
  CHECK(stat((bob_home + "/planted").c_str(), &st) != 0);
  CHECK(Contents(bob_home + "/secret") == "bob-file-secret\n");
  CHECK(PidsWithCmdline("sleep 3600.3901") == bob_pids);
  CHECK(fleet.db().Scalar("SELECT string_agg(phase, ',') FROM sessions") == "RUNNING,RUNNING");
  CHECK(kill(fleet.worker().pid(), 0) == 0);
}

TEST_CASE("a hostile capability handler reaches none of the node's secrets, the sessions or the worker",
          "[e2e][security]") {
  REQUIRE(geteuid() == 0);
  LocalFleet fleet;
  const std::string handler = fleet.dir().Sub("hostile.sh");
  std::ofstream(handler) << kHostileHandlerPrologue << kHostileScript;
  REQUIRE(chmod(handler.c_str(), 0755) == 0);
  const std::string caps = fleet.dir().Sub("hostile.capabilities");
  std::ofstream(caps) << "demo/hostile 1.0.0 exec " << handler << "\n";
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("w1", "", 0, {"--capabilities", caps});
  fleet.WaitUntilWorkersOnline(1);
  const std::string session_dir = fleet.dir().Sub("sessions-w1");
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"demo/hostile\"}]'") ==
           "1";
  }, absl::Seconds(15)));

  // Bob's session keeps a secret in its home and writes another to its log.
  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  v1::CreateSessionRequest bob_req;
  bob_req.set_wait_for_running(true);
  *bob_req.mutable_spec() = ShellSpec("echo bob-log-secret; echo bob-file-secret > \"$HOME/secret\"; exec sleep 3600.3903", 0);
  v1::Session bob;
  REQUIRE(sessions->CreateSession(Ctx(UserKey(fleet, "bob")).get(), bob_req, &bob).ok());
  const std::string bob_home = session_dir + "/" + bob.id();
  REQUIRE(WaitFor([&] { return Contents(bob_home + "/secret") == "bob-file-secret\n"; }, absl::Seconds(10)));
  REQUIRE(WaitFor([&] { return PidsWithCmdline("sleep 3600.3903").size() == 1; }, absl::Seconds(10)));
  const std::vector<pid_t> bob_pids = PidsWithCmdline("sleep 3600.3903");

  // Alice invokes the handler with a payload that points it at everything.
  const std::string payload = absl::StrCat(
      "WORKER_PID=", fleet.worker().pid(), "\nWORKER_KEY=", fleet.pki().dir(), "/worker-w1.key\nPKI_DIR=",
      fleet.pki().dir(), "\nSESSION_DIR=", session_dir, "\nOTHER_HOME=", bob_home, "\nOTHER_LOG=", session_dir, "/",
      bob.id(), ".log\nOTHER_PID=", bob_pids[0], "\nCONTROLLER_PORT=",
      fleet.controller_address().substr(fleet.controller_address().rfind(':') + 1), "\n");
  auto invoker = v1::InvokeService::NewStub(fleet.ChannelWithoutCert());
  v1::InvokeRequest req;
  req.set_capability("demo/hostile");
  req.set_payload(payload);
  auto ctx = Ctx(UserKey(fleet, "alice"));
  auto reader = invoker->Invoke(ctx.get(), req);
  std::string out;
  v1::InvokeChunk chunk;
  while (reader->Read(&chunk)) out += chunk.data();
  grpc::Status status = reader->Finish();
  INFO(status.error_message() << "\n" << out << fleet.worker().Log());
  REQUIRE(status.ok());
  REQUIRE(absl::StrContains(out, "DONE\n"));
  CHECK_FALSE(absl::StrContains(out, "LEAK"));
  CHECK(absl::StrContains(out, "HOME OK"));
  // It ran as the handlers' uid, in a group of the same number and no other, never the worker's.
  CHECK(absl::StrContains(out, absl::StrCat("UID=", kHandlerUser, " GID=", kHandlerUser, " GROUPS=", kHandlerUser,
                                            "\n")));
  struct stat home;
  REQUIRE(stat((session_dir + "/.handlers").c_str(), &home) == 0);
  CHECK(std::to_string(home.st_uid) == kHandlerUser);
  CHECK((home.st_mode & 0777) == 0700);

  // Nothing changed.
  struct stat st;
  CHECK(stat((session_dir + "/planted").c_str(), &st) != 0);
  CHECK(stat((bob_home + "/planted").c_str(), &st) != 0);
  CHECK(Contents(bob_home + "/secret") == "bob-file-secret\n");
  CHECK(PidsWithCmdline("sleep 3600.3903") == bob_pids);
  CHECK(kill(fleet.worker().pid(), 0) == 0);
}

TEST_CASE("an ended session's home is removed as its own uid, and what it planted there removes nothing else",
          "[e2e][security]") {
  REQUIRE(geteuid() == 0);
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  const std::string session_dir = fleet.dir().Sub("sessions-w1");
  // The node's files a tenant would like gone, reachable by path.
  const std::string victim_dir = fleet.dir().Sub("victim");
  REQUIRE(mkdir(victim_dir.c_str(), 0755) == 0);
  std::ofstream(victim_dir + "/keep") << "kept\n";
  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  const std::string key = UserKey(fleet, "mallory");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = ShellSpec(
      "mkdir -p \"$HOME/a/b\" && echo x > \"$HOME/a/b/f\" && ln -s \"$VICTIM\" \"$HOME/link\" && "
      "ln -s \"$VICTIM/keep\" \"$HOME/a/link\" && echo READY; exec sleep 3600.3906",
      0);
  (*req.mutable_spec()->mutable_env())["VICTIM"] = victim_dir;
  v1::Session s;
  REQUIRE(sessions->CreateSession(Ctx(key).get(), req, &s).ok());
  const std::string home = session_dir + "/" + s.id();
  REQUIRE(WaitFor([&] { return absl::StrContains(Contents(session_dir + "/" + s.id() + ".log"), "READY"); },
                  absl::Seconds(10)));
  struct stat st;
  REQUIRE(stat((home + "/a/b/f").c_str(), &st) == 0);

  v1::DeleteSessionRequest del;
  del.set_id(s.id());
  v1::Session deleted;
  REQUIRE(sessions->DeleteSession(Ctx(key).get(), del, &deleted).ok());
  // Gone once its process is, with everything in it; its log stays, the worker's.
  CHECK(WaitFor([&] { return stat(home.c_str(), &st) != 0; }, absl::Seconds(15)));
  CHECK(stat((session_dir + "/" + s.id() + ".log").c_str(), &st) == 0);
  CHECK(Contents(victim_dir + "/keep") == "kept\n");
  CHECK(stat(victim_dir.c_str(), &st) == 0);
  INFO(fleet.worker().Log());
  CHECK_FALSE(absl::StrContains(fleet.worker().Log(), "is left behind"));
}

TEST_CASE("homes of sessions that died with their worker are removed when it starts again, and nothing else",
          "[e2e][security]") {
  REQUIRE(geteuid() == 0);
  LocalFleet fleet;
  fleet.StartSingleNode("1");
  const std::string session_dir = fleet.dir().Sub("sessions-w1");
  auto sessions = v1::SessionService::NewStub(fleet.ChannelWithoutCert());
  const std::string key = UserKey(fleet, "mallory");
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = ShellSpec(
      "mkdir -p \"$HOME/a/b\" && echo x > \"$HOME/a/b/f\" && chmod 0500 \"$HOME/a\" && echo READY; "
      "exec sleep 3600.3917",
      0);
  v1::Session s;
  REQUIRE(sessions->CreateSession(Ctx(key).get(), req, &s).ok());
  const std::string home = session_dir + "/" + s.id();
  REQUIRE(WaitFor([&] { return absl::StrContains(Contents(home + ".log"), "READY"); }, absl::Seconds(10)));
  // What is no session's: a directory of the worker's own, and one of a uid outside the range.
  const std::string own = session_dir + "/not-a-session", foreign = session_dir + "/foreign";
  REQUIRE(mkdir(own.c_str(), 0700) == 0);
  REQUIRE(mkdir(foreign.c_str(), 0700) == 0);
  REQUIRE(chown(foreign.c_str(), 4242, 4242) == 0);

  // The worker dies; its keeper takes the session with it, and nobody removes the home.
  fleet.worker().Signal(SIGKILL);
  REQUIRE(WaitFor([] { return PidsWithCmdline("3600.3917").empty(); }, absl::Seconds(10)));
  struct stat st;
  REQUIRE(stat((home + "/a/b/f").c_str(), &st) == 0);

  fleet.StartWorker("w1", "1");
  CHECK(WaitFor([&] { return stat(home.c_str(), &st) != 0; }, absl::Seconds(15)));
  CHECK(stat((home + ".log").c_str(), &st) == 0);  // The worker's, kept.
  CHECK(stat(own.c_str(), &st) == 0);
  CHECK(stat(foreign.c_str(), &st) == 0);
  INFO(fleet.worker(1).Log());
  CHECK(absl::StrContains(fleet.worker(1).Log(), "removing 1 home(s) left behind"));
  CHECK(absl::StrContains(fleet.worker(1).Log(), "/foreign is left alone: not a session's home (uid 4242 is outside"));
  CHECK_FALSE(absl::StrContains(fleet.worker(1).Log(), "is left behind:"));
  // Its uid serves sessions again.
  fleet.WaitUntilSchedulable(0);
  v1::Session next;
  *req.mutable_spec() = ShellSpec("echo UID=$(id -u); exec sleep 3600.3908", 0);
  REQUIRE(sessions->CreateSession(Ctx(key).get(), req, &next).ok());
  CHECK(WaitFor([&] { return absl::StrContains(Contents(session_dir + "/" + next.id() + ".log"), "UID=2"); },
                absl::Seconds(10)));
}

TEST_CASE("the worker isolates sessions and handlers with CHOWN, KILL, SETGID and SETUID alone, as in Kubernetes",
          "[e2e][security]") {
  REQUIRE(geteuid() == 0);
  LocalFleet fleet;
  const std::string caps = fleet.dir().Sub("echo.capabilities");
  std::ofstream(caps) << "demo/echo 1.0.0 exec cat\n";
  fleet.StartApi();
  fleet.StartController();
  // What deploy/k8s/base/worker.yaml grants: root, four capabilities, no privilege escalation.
  fleet.node_network.exec_prefix = {"/usr/bin/setpriv", "--bounding-set", "-all,+chown,+kill,+setgid,+setuid",
                                    "--inh-caps", "-all", "--no-new-privs", "--"};
  fleet.StartWorker("w1", "1", 0, {"--capabilities", caps});
  const bool online = WaitFor([&] {
    return fleet.db().Scalar("SELECT coalesce(sum((capacity->>'workers_online')::int), 0) FROM controllers") == "1";
  }, absl::Seconds(20));
  INFO(fleet.worker().Log());
  REQUIRE(online);
  fleet.WaitUntilSchedulable(1);
  const std::string status = Contents(absl::StrCat("/proc/", fleet.worker().pid(), "/status"));
  INFO(status);
  // CAP_CHOWN (0), CAP_KILL (5), CAP_SETGID (6), CAP_SETUID (7), nothing else.
  CHECK(absl::StrContains(status, "CapEff:\t00000000000000e1\n"));
  CHECK(absl::StrContains(status, "NoNewPrivs:\t1\n"));

  v1::Session s;
  REQUIRE(fleet.CreateAsAdmin(ShellSpec("echo \"UID=$(id -u) \"; exec sleep 3600.3907", 1), &s).ok());
  const std::string session_dir = fleet.dir().Sub("sessions-w1");
  const std::string log = session_dir + "/" + s.id() + ".log";
  REQUIRE(WaitFor([&] { return PidsWithCmdline("sleep 3600.3907").size() == 1; }, absl::Seconds(10)));
  CHECK(WaitFor([&] { return absl::StrContains(Contents(log), "UID=200"); }, absl::Seconds(10)));

  // Routable once the controller's heartbeat has stored what its worker serves: the GPUs that
  // made it schedulable can come first, with a health check's answer.
  REQUIRE(WaitFor([&] {
    return fleet.db().Scalar("SELECT count(*) FROM controllers WHERE capabilities @> '[{\"name\": \"demo/echo\"}]'") ==
           "1";
  }, absl::Seconds(10)));
  auto invoker = v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  v1::InvokeRequest req;
  req.set_capability("demo/echo");
  req.set_payload("through a handler of its own uid");
  grpc::ClientContext ctx;
  auto reader = invoker->Invoke(&ctx, req);
  std::string out;
  v1::InvokeChunk chunk;
  while (reader->Read(&chunk)) out += chunk.data();
  grpc::Status invoked = reader->Finish();
  INFO(invoked.error_message() << "\n" << fleet.worker().Log());
  CHECK(invoked.ok());
  CHECK(out == "through a handler of its own uid");

  // Stopping a process of another uid takes CAP_KILL; its home goes as its own uid.
  v1::DeleteSessionRequest del;
  del.set_id(s.id());
  v1::Session deleted;
  grpc::ClientContext del_ctx;
  REQUIRE(fleet.AdminSessions()->DeleteSession(&del_ctx, del, &deleted).ok());
  CHECK(WaitFor([] { return PidsWithCmdline("sleep 3600.3907").empty(); }, absl::Seconds(10)));
  struct stat st;
  CHECK(WaitFor([&] { return stat((session_dir + "/" + s.id()).c_str(), &st) != 0; }, absl::Seconds(10)));
  CHECK_FALSE(absl::StrContains(fleet.worker().Log(), "left behind"));
}

}  // namespace gantry::testing
