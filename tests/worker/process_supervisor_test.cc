#include "worker/process_supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <optional>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

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

std::string TempDirPath() {
  char tmpl[] = "/tmp/gantry-sup-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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

TEST_CASE("destroying the supervisor kills everything it started", "[supervisor]") {
  std::string dir = TempDirPath();
  pid_t a, b;
  {
    ProcessSupervisor sup(nullptr);
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
  std::string dir = TempDirPath();
  ProcessSupervisor sup([&](const ExitInfo& e) { exits.Add(e); });
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
