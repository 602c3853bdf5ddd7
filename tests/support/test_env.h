// Test harness: temporary directories, a fresh PostgreSQL database per test, certificates from
// the real gantry-pki, and real child processes (killed when the test ends, even on failure).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/support/temp_dir.h"

namespace gantry::testing {

// A tmpfs of `size_bytes` mounted on `path` (created if missing), lazily unmounted at the end
// so processes still holding files there do not keep it. Fails the test unless this process
// may mount (root, as in CI): the tests that need a full filesystem need a real one.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, size_t size_bytes);
  ~TmpfsMount();
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;

 private:
  std::string path_;
};

// The throwaway server's DSN from GANTRY_TEST_DATABASE_URL (tools/test.sh sets it). Fails the
// test loudly when unset: [pg] and [e2e] tests need a real PostgreSQL.
std::string AdminDsn();

// A database of its own for one test, dropped at the end.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  const std::string& dsn() const { return dsn_; }
  // Runs a query and returns the first column of the first row ("" if no row).
  std::string Scalar(const std::string& sql) const;

 private:
  std::string name_;
  std::string dsn_;
};

// A cluster CA and certificates issued by the real gantry-pki binary.
class Pki {
 public:
  explicit Pki(const std::string& dir);
  // Issues spiffe://gantry/ROLE[/NAME] with DNS localhost and IP 127.0.0.1 (and `more_ips`);
  // returns the prefix (PREFIX.crt / PREFIX.key; by default DIR/ROLE[-NAME]).
  std::string Issue(const std::string& role, const std::string& name = "", std::string prefix = "",
                    const std::vector<std::string>& more_ips = {});
  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.crt"; }

 private:
  std::string dir_;
};

// A child process with exactly the given environment (and the sanitizers' settings, when the
// test has them), output to a log file. SIGKILLed when destroyed unless it already exited; it
// also dies with the test process (PR_SET_PDEATHSIG).
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          const std::string& log_path);
  ~Process();
  pid_t pid() const { return pid_; }
  bool Alive();
  void Signal(int sig);
  // Waits for exit; returns the raw wait status or -1 on timeout.
  int Wait(absl::Duration timeout);
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
};

// Polls `done` every `poll` until it returns true or `timeout` passes. A `done` that costs
// something on a machine being measured (a new database connection) asks less often.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout,
             absl::Duration poll = absl::Milliseconds(20));

// Polls `done` for as long as the fleet is getting somewhere: until it returns true, or until
// `progress()` (a summary of the state, such as sessions by phase) has not changed for `stall`,
// or `limit` has passed in all. For waits whose length is set by the machine's speed (500
// spawns under CPU hogs), where a fixed timeout would call a slow machine a stuck one.
bool WaitWhileProgressing(const std::function<bool()>& done, const std::function<std::string()>& progress,
                          absl::Duration stall, absl::Duration limit, absl::Duration poll = absl::Milliseconds(200));

// Reads a port file written by a Gantry binary; 0 on timeout.
int WaitForPortFile(const std::string& path, absl::Duration timeout);

// Pids of processes whose command line contains `marker`.
// A /proc file whole, or "" if it cannot be read: its process may exit meanwhile (a read then
// fails with ESRCH, which a stream reader would throw).
std::string ReadProcFile(const std::string& path);
std::vector<pid_t> PidsWithCmdline(const std::string& marker);

// Runs `command` with /bin/sh and returns its stdout; fails the test (showing the output) unless
// it exits 0.
std::string RunCommand(const std::string& command);
// A TCP port nothing listens on now (tools/lib/free-port.sh).
int FreePort();

// GET https://127.0.0.1:PORT/metrics, verifying the server against `ca`; the body.
std::string ScrapeMetrics(const std::string& ca, int port);
// GET https://127.0.0.1:PORT/PATH likewise; "STATUS BODY" (e.g. "503 not ready\n").
std::string HttpsGet(const std::string& ca, int port, const std::string& path);

// The serial number (hex) of the certificate a TLS server on 127.0.0.1:PORT presents to a
// fresh handshake, verified against `ca` for the address 127.0.0.1; "" if the handshake fails.
// With `client_prefix`, PREFIX.crt/.key is offered as the client certificate (mTLS ports).
std::string PresentedSerial(const std::string& ca, int port, const std::string& client_prefix = "");

// Resident memory of a process in KiB (VmRSS), -1 if unknown.
int64_t RssKib(pid_t pid);
// Threads of a process (/proc status), -1 if unknown.
int ThreadCount(pid_t pid);
// The lines of `text` that contain `needle`, each with its newline: what a failure message
// needs from a long log.
std::string LinesContaining(const std::string& text, const std::string& needle);
// Threads of a process whose name (its comm, at most 15 characters) starts with `prefix`, e.g.
// "grpcpp_sync_ser" for a synchronous gRPC server's call threads.
int ThreadCountNamed(pid_t pid, const std::string& prefix);
// True in the ASan build (GANTRY_SANITIZE=1) and the TSan one (tools/tsan.sh), where everything
// runs 2-10x slower and the sanitizer's own memory swamps a process's resident memory, which
// then says nothing about what Gantry keeps. The plain build checks the memory bounds; the
// sanitized ones everything else.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif

// The sanitizers' settings this process was given (ASAN_OPTIONS ... TSAN_OPTIONS: abort on any
// report, the suppressions), for every process a test starts with an environment of its own.
std::map<std::string, std::string> SanitizerOptions();

std::string BinaryPath(const std::string& name);  // gantry-api, gantry-controller, ...
std::string SourcePath(const std::string& relative);

}  // namespace gantry::testing
