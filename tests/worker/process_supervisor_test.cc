#include "worker/process_supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <optional>
#include <mutex>
#include <set>
#include <vector>
#include <atomic>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/temp_dir.h"

namespace gantry::worker {
namespace {

struct Exits {
  std::mutex mu;
  std::vector<ExitInfo> seen;
  void Add(const ExitInfo& e) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(e);
  }
  std::optional<ExitInfo> For(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& e : seen) {
      if (e.session_id == id) return e;
    }
    return std::nullopt;
  }
};

bool WaitUntil(const std::function<bool()>& f, int ms = 5000) {
  for (int i = 0; i < ms / 10; ++i) {
    if (f()) return true;
    usleep(10 * 1000);
  }
  return f();
}

bool Alive(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto p = line.rfind(')');
  return p != std::string::npos && line[p + 2] != 'Z';
}

SpawnSpec Spec(const std::string& id, std::vector<std::string> argv, const std::string& dir) {
  SpawnSpec s;
  s.session_id = id;
  s.argv = std::move(argv);
  s.env = {"PATH=/usr/bin:/bin", "GREETING=hi"};
  s.log_path = dir + "/" + id + ".log";
  return s;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("a process runs with exactly the given environment and its output is logged", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  auto pid = sup.Spawn(Spec("s1", {"/bin/sh", "-c", "echo $GREETING; echo err >&2; echo ${HOME:-nohome}; exit 3"}, dir));
  REQUIRE(pid.ok());
  REQUIRE(WaitUntil([&] { return exits.For("s1").has_value(); }));
  auto exit = *exits.For("s1");
  CHECK(exit.exit_code == 3);
  CHECK(exit.term_signal == 0);
  CHECK_FALSE(exit.stop_requested);
  CHECK(ReadAll(dir + "/s1.log") == "hi\nerr\nnohome\n");
}

TEST_CASE("a command that does not exist fails to spawn with its name", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  auto pid = sup.Spawn(Spec("s1", {"/definitely/not/here"}, dir));
  REQUIRE_FALSE(pid.ok());
  CHECK(pid.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(pid.status().message()).find("/definitely/not/here") != std::string::npos);
  CHECK_FALSE(sup.Has("s1"));
  usleep(100 * 1000);
  CHECK_FALSE(exits.For("s1").has_value());  // A failed spawn is not reported as an exit.
}

TEST_CASE("a process that exits at once is still reported", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(sup.Spawn(Spec(absl::StrCat("q", i), {"/bin/true"}, dir)).ok());
  }
  REQUIRE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(exits.mu);
    return exits.seen.size() == 20;
  }));
}

TEST_CASE("stop sends SIGTERM, then SIGKILL after the grace period", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  auto polite = sup.Spawn(Spec("polite", {"sleep", "300"}, dir));
  const std::string trapped = dir + "/trapped";
  auto stubborn = sup.Spawn(
      Spec("stubborn", {"/bin/sh", "-c", "trap '' TERM; : > " + trapped + "; sleep 300 & wait; sleep 300"}, dir));
  REQUIRE(polite.ok());
  REQUIRE(stubborn.ok());
  // Stopped before its trap is in place, the shell would die of the SIGTERM.
  REQUIRE(WaitUntil([&] { return access(trapped.c_str(), F_OK) == 0; }));
  REQUIRE(sup.Stop("polite", absl::Seconds(5)).ok());
  REQUIRE(sup.Stop("stubborn", absl::Milliseconds(300)).ok());
  REQUIRE(WaitUntil([&] { return exits.For("polite").has_value(); }));
  CHECK(exits.For("polite")->term_signal == SIGTERM);
  CHECK(exits.For("polite")->stop_requested);
  REQUIRE(WaitUntil([&] { return exits.For("stubborn").has_value(); }));
  CHECK(exits.For("stubborn")->term_signal == SIGKILL);
  CHECK(sup.Stop("polite", absl::Seconds(1)).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("when a session's main process exits its whole process group goes too", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  // The shell leaves a background child and exits.
  SpawnSpec spec = Spec("g", {"/bin/sh", "-c", "sleep 300.4242 & echo $! > child.pid; exit 0"}, dir);
  spec.working_dir = dir;
  auto pid = sup.Spawn(spec);
  REQUIRE(pid.ok());
  REQUIRE(WaitUntil([&] { return exits.For("g").has_value(); }));
  // Its child is in the same group and must not outlive it.
  std::string child_text;
  REQUIRE(WaitUntil([&] {
    child_text = ReadAll(dir + "/child.pid");
    return !child_text.empty();
  }));
  pid_t child = std::stoi(child_text);
  CHECK(WaitUntil([&] { return !Alive(child); }, 2000));
}

TEST_CASE("a session's keeper is a small program of its own that names the session, not its command", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  auto pid = sup.Spawn(Spec("k1", {"sleep", "300.7171"}, dir));
  REQUIRE(pid.ok());
  std::ifstream stat(absl::StrCat("/proc/", *pid, "/stat"));
  std::string line;
  REQUIRE(std::getline(stat, line));
  std::istringstream after(line.substr(line.rfind(')') + 2));
  std::string state;
  pid_t keeper = 0;
  after >> state >> keeper;
  REQUIRE(keeper > 0);
  CHECK(keeper != getpid());
  std::string cmdline = ReadAll(absl::StrCat("/proc/", keeper, "/cmdline"));
  CHECK(cmdline.rfind(std::string(GANTRY_KEEPER) + '\0' + "k1" + '\0', 0) == 0);
  CHECK(cmdline.find("300.7171") == std::string::npos);  // The command is the session's alone.
  CHECK(ReadAll(absl::StrCat("/proc/", *pid, "/cmdline")) == std::string("sleep\0" "300.7171\0", 15));
  REQUIRE(sup.Stop("k1", absl::Seconds(5)).ok());
  CHECK(WaitUntil([&] { return exits.For("k1").has_value(); }));
}

TEST_CASE("a command that cannot be executed is named, and its keeper leaves nothing behind", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  auto missing = sup.Spawn(Spec("m1", {"/nonexistent/gantry-no-such-command"}, dir));
  REQUIRE(missing.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(missing.status().message().find("cannot execute command[0] /nonexistent/gantry-no-such-command") !=
        std::string::npos);
  SpawnSpec elsewhere = Spec("m2", {"true"}, dir);
  elsewhere.working_dir = dir + "/no-such-dir";
  auto no_dir = sup.Spawn(elsewhere);
  REQUIRE(no_dir.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(no_dir.status().message().find("cannot enter working_dir") != std::string::npos);
  CHECK(sup.List().empty());
  // The failed starts are not sessions: no exit is reported for them, and the id is free again.
  auto again = sup.Spawn(Spec("m1", {"sleep", "300.7272"}, dir));
  REQUIRE(again.ok());
  CHECK_FALSE(exits.For("m1").has_value());
  CHECK_FALSE(exits.For("m2").has_value());
}

TEST_CASE("sessions started from several threads at once each get their own process", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  std::vector<std::thread> starters;
  std::mutex mu;
  std::set<pid_t> pids;
  for (int t = 0; t < 4; ++t) {
    starters.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto pid = sup.Spawn(Spec(absl::StrCat("p", t, "-", i), {"sleep", "300.7373"}, dir));
        std::lock_guard<std::mutex> lock(mu);
        if (pid.ok()) pids.insert(*pid);
      }
    });
  }
  for (auto& t : starters) t.join();
  CHECK(pids.size() == 40);
  CHECK(sup.List().size() == 40);
  // The same session twice at once: one process.
  std::vector<std::thread> twins;
  std::atomic<int> started{0};
  for (int t = 0; t < 2; ++t) {
    twins.emplace_back([&] {
      if (sup.Spawn(Spec("twin", {"sleep", "300.7373"}, dir)).ok()) ++started;
    });
  }
  for (auto& t : twins) t.join();
  CHECK(started == 1);
  sup.StopAll(absl::Seconds(5));
  CHECK(sup.List().empty());
}

TEST_CASE("destroying the supervisor kills everything it started", "[supervisor]") {
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  pid_t a, b;
  {
    ProcessSupervisor sup(nullptr, GANTRY_KEEPER);
    a = *sup.Spawn(Spec("a", {"sleep", "300"}, dir));
    b = *sup.Spawn(Spec("b", {"sleep", "300"}, dir));
    CHECK(Alive(a));
    CHECK(sup.List().size() == 2);
  }
  CHECK(WaitUntil([&] { return !Alive(a) && !Alive(b); }, 2000));
}

}  // namespace gantry::worker

namespace gantry::worker {

TEST_CASE("a suspended session can be stopped, and its whole group goes", "[supervisor]") {
  Exits exits;
  testing::TempDir scratch;
  const std::string& dir = scratch.path();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); }, GANTRY_KEEPER);
  SpawnSpec spec = Spec("h", {"/bin/sh", "-c", "sleep 300.5656 & echo $! > child.pid; wait"}, dir);
  spec.working_dir = dir;
  REQUIRE(sup.Spawn(spec).ok());
  std::string child_text;
  REQUIRE(WaitUntil([&] {
    child_text = ReadAll(dir + "/child.pid");
    return !child_text.empty();
  }));
  pid_t child = std::stoi(child_text);
  REQUIRE(sup.Suspend("h").ok());
  REQUIRE(sup.Stop("h", absl::Seconds(5)).ok());
  REQUIRE(WaitUntil([&] { return exits.For("h").has_value(); }));
  CHECK(exits.For("h")->stop_requested);
  CHECK(WaitUntil([&] { return !Alive(child); }, 2000));
}

}  // namespace gantry::worker
