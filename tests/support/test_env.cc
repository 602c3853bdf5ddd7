#include "tests/support/test_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace gantry::testing {

TmpfsMount::TmpfsMount(const std::string& path, size_t size_bytes) : path_(path) {
  mkdir(path.c_str(), 0755);
  std::string options = absl::StrCat("size=", size_bytes, ",mode=0755");
  if (mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    FAIL("cannot mount a tmpfs on " << path << ": " << std::strerror(errno)
                                    << " (this test needs CAP_SYS_ADMIN: run it as root, as CI does)");
  }
}

TmpfsMount::~TmpfsMount() { umount2(path_.c_str(), MNT_DETACH); }

std::string AdminDsn() {
  const char* dsn = std::getenv("GANTRY_TEST_DATABASE_URL");
  if (dsn == nullptr || *dsn == '\0') {
    FAIL("GANTRY_TEST_DATABASE_URL is not set: run the suite through tools/test.sh, which "
         "starts a throwaway PostgreSQL");
  }
  return dsn;
}

namespace {
std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrCat(rd(), rd());
}
}  // namespace

TestDatabase::TestDatabase() : name_("gantry_test_" + RandomSuffix()) {
  std::string admin = AdminDsn();
  pqxx::connection c(admin);
  pqxx::nontransaction tx(c);
  tx.exec("CREATE DATABASE " + tx.quote_name(name_));
  // libpq takes the last value of a repeated keyword.
  dsn_ = absl::StrCat(admin, " dbname=", name_);
}

TestDatabase::~TestDatabase() {
  try {
    pqxx::connection c(AdminDsn());
    pqxx::nontransaction tx(c);
    tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name_) + " WITH (FORCE)");
  } catch (const std::exception& e) {
    WARN("could not drop " << name_ << ": " << e.what());
  }
}

std::string TestDatabase::Scalar(const std::string& sql) const {
  pqxx::connection c(dsn_);
  pqxx::nontransaction tx(c);
  pqxx::result r = tx.exec(sql);
  if (r.empty() || r[0][0].is_null()) return "";
  return r[0][0].as<std::string>();
}

Pki::Pki(const std::string& dir) : dir_(dir) {
  std::string cmd = absl::StrCat(BinaryPath("gantry-pki"), " ca --dir '", dir_, "' > /dev/null");
  REQUIRE(std::system(cmd.c_str()) == 0);
}

std::string Pki::Issue(const std::string& role, const std::string& name, std::string prefix,
                       const std::vector<std::string>& more_ips) {
  if (prefix.empty()) prefix = absl::StrCat(dir_, "/", role, name.empty() ? "" : "-" + name);
  std::string ips = "127.0.0.1";
  for (const auto& ip : more_ips) ips += "," + ip;
  std::string cmd = absl::StrCat(BinaryPath("gantry-pki"), " issue --dir '", dir_, "' --role ", role,
                                 name.empty() ? "" : " --name " + name,
                                 " --dns localhost --ip ", ips, " --out '", prefix, "' > /dev/null");
  REQUIRE(std::system(cmd.c_str()) == 0);
  return prefix;
}

std::map<std::string, std::string> SanitizerOptions() {
  std::map<std::string, std::string> options;
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name); value != nullptr) options[name] = value;
  }
  return options;
}

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
                 const std::string& log_path)
    : log_path_(log_path) {
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  if (env.count("PATH") == 0) env_strings.push_back("PATH=/usr/local/bin:/usr/bin:/bin");
  for (const auto& [name, value] : SanitizerOptions()) {
    if (env.count(name) == 0) env_strings.push_back(absl::StrCat(name, "=", value));
  }
  std::vector<char*> c_argv, c_env;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  for (auto& e : env_strings) c_env.push_back(e.data());
  c_env.push_back(nullptr);
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  pid_t parent = getpid();
  pid_ = fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    dup2(fd, 1);
    dup2(fd, 2);
    execve(c_argv[0], c_argv.data(), c_env.data());
    _exit(127);
  }
  close(fd);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    Wait(absl::Seconds(5));
  }
}

bool Process::Alive() {
  if (reaped_) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

void Process::Signal(int sig) {
  if (!reaped_) kill(pid_, sig);
}

int Process::Wait(absl::Duration timeout) {
  if (reaped_) return 0;
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string Process::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout, absl::Duration poll) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(poll);
  }
}

bool WaitWhileProgressing(const std::function<bool()>& done, const std::function<std::string()>& progress,
                          absl::Duration stall, absl::Duration limit, absl::Duration poll) {
  const absl::Time give_up = absl::Now() + limit;
  std::string last = progress();
  absl::Time changed = absl::Now();
  while (true) {
    if (done()) return true;
    const absl::Time now = absl::Now();
    if (now > give_up) return false;
    std::string current = progress();
    if (current != last) {
      last = std::move(current);
      changed = now;
    } else if (now - changed > stall) {
      return false;
    }
    absl::SleepFor(poll);
  }
}

int WaitForPortFile(const std::string& path, absl::Duration timeout) {
  int port = 0;
  WaitFor([&] {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text)) return false;
    return absl::SimpleAtoi(text, &port) && port > 0;
  }, timeout);
  return port;
}

// A /proc file's contents, or "" if the process is gone. Not through an ifstream: libstdc++
// throws from underflow when read(2) fails with ESRCH, which a process exiting mid-read causes.
std::string ReadProcFile(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return n < 0 ? std::string() : out;
}

std::vector<pid_t> PidsWithCmdline(const std::string& marker) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    int pid;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string cmdline = ReadProcFile(absl::StrCat("/proc/", pid, "/cmdline"));
    for (auto& c : cmdline) c = c == '\0' ? ' ' : c;
    if (cmdline.find(marker) == std::string::npos) continue;
    // A zombie has exited; only live processes count (and one gone meanwhile has no stat).
    const std::string stat = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos || close_paren + 2 >= stat.size() || stat[close_paren + 2] == 'Z') continue;
    out.push_back(pid);
  }
  closedir(proc);
  return out;
}

std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  INFO(command << "\n" << out);
  REQUIRE(rc == 0);
  return out;
}

int FreePort() { return std::stoi(RunCommand(SourcePath("tools/lib/free-port.sh"))); }

int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int ThreadCount(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

std::string LinesContaining(const std::string& text, const std::string& needle) {
  std::string out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (absl::StrContains(line, needle)) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int ThreadCountNamed(pid_t pid, const std::string& prefix) {
  int n = 0;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(task.path() / "comm");
    std::string name;
    if (std::getline(in, name) && absl::StartsWith(name, prefix)) ++n;
  }
  return n;
}

std::string HttpsGet(const std::string& ca, int port, const std::string& path) {
  return RunCommand(absl::StrCat(
      "python3 -c \"import ssl, sys, urllib.request, urllib.error\n",
      "ctx = ssl.create_default_context(cafile=sys.argv[1])\n",
      "try:\n  r = urllib.request.urlopen(sys.argv[2], context=ctx, timeout=5)\n",
      "except urllib.error.HTTPError as e:\n  r = e\n",
      "sys.stdout.write(str(r.status) + ' ' + r.read().decode())\" '", ca, "' https://127.0.0.1:", port, path));
}

std::string ScrapeMetrics(const std::string& ca, int port) {
  std::string got = HttpsGet(ca, port, "/metrics");
  REQUIRE(got.rfind("200 ", 0) == 0);
  return got.substr(4);
}

std::string PresentedSerial(const std::string& ca, int port, const std::string& client_prefix) {
  // Python's ssl gives only the parsed certificate of a verified peer, which is what we want.
  return RunCommand(absl::StrCat(
      "python3 -c \"import socket, ssl, sys\n",
      "ctx = ssl.create_default_context(cafile=sys.argv[1])\n",
      "ctx.set_alpn_protocols(['h2', 'http/1.1'])\n",
      "if sys.argv[3]: ctx.load_cert_chain(sys.argv[3] + '.crt', sys.argv[3] + '.key')\n",
      "try:\n",
      "  with socket.create_connection(('127.0.0.1', int(sys.argv[2])), timeout=5) as raw:\n",
      "    with ctx.wrap_socket(raw, server_hostname='127.0.0.1') as tls:\n",
      "      sys.stdout.write(tls.getpeercert()['serialNumber'])\n",
      "except (OSError, ssl.SSLError):\n  pass\" '", ca, "' ", port, " '", client_prefix, "'"));
}

std::string BinaryPath(const std::string& name) {
  static const std::map<std::string, std::string> kPaths = {
      {"gantry-api", GANTRY_API_BIN},
      {"gantry-controller", GANTRY_CONTROLLER_BIN},
      {"gantry-worker", GANTRY_WORKER_BIN},
      {"gantry-pki", GANTRY_PKI_BIN},
      {"gantryctl", GANTRY_CTL_BIN},
      {"fake-nvml", GANTRY_FAKE_NVML},
  };
  return kPaths.at(name);
}

std::string SourcePath(const std::string& relative) {
  return absl::StrCat(GANTRY_SOURCE_DIR, "/", relative);
}

}  // namespace gantry::testing
