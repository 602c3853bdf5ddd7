// What every gantryctl command works with: its parsed arguments, the connection to the API
// server (TLS, and an API key or a client certificate), per-call contexts, output format,
// exit codes and Ctrl-C.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/gantryctl/args.h"
#include "tools/gantryctl/connection.h"

namespace gantry::ctl {

// Exit codes: scripts can tell a refused request from a missing session from a usage error.
// An RPC that fails with gRPC code C exits 10 + C (NOT_FOUND 15, UNAVAILABLE 24, ...).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // a local problem: unreadable file, bad config
  kExitUsage = 2,          // bad command line
  kExitSessionFailed = 3,  // --wait saw the session end FAILED
  kExitSessionEnded = 4,   // --wait saw it end otherwise (TERMINATED) before it was up for --stable-for
  kExitRpcBase = 10,
  kExitInterrupted = 130,  // Ctrl-C
};

enum class Format { kTable, kWide, kJson, kYaml, kName };

class Cli {
 public:
  Cli(Args args, Format format, absl::Duration timeout, std::shared_ptr<grpc::Channel> channel,
      std::string token);

  const Args& args() const { return args_; }
  Format format() const { return format_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // A context carrying the API key; unary calls get the --timeout deadline, streams none.
  std::unique_ptr<grpc::ClientContext> Call() const;
  std::unique_ptr<grpc::ClientContext> Stream() const;

  // Prints "gantryctl: CODE: message" to stderr and returns the exit code for `status`. A
  // connection refused by TLS adds what to set (see TlsHint).
  int Fail(const grpc::Status& status) const;
  // Said after an UNAVAILABLE that TLS caused: which CA the connection trusted, and where to set it.
  void set_tls_hint(std::string hint) { tls_hint_ = std::move(hint); }

 private:
  Args args_;
  Format format_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  std::string tls_hint_;
};

// What to tell a user whose connection failed TLS: the CA in use (`ca_file`, empty for the
// system's trust store) and where to set the cluster's.
std::string TlsHint(const std::string& ca_file);
// Whether a call's status says the TLS handshake failed (the server's certificate not trusted,
// or ours refused).
bool IsTlsFailure(const grpc::Status& status);
// Keeps gRPC's own log lines (handshake errors and the like, meant for developers) off the
// user's terminal, unless GRPC_VERBOSITY or GRPC_TRACE asks for them.
void SilenceGrpcLogs();

// Prints "gantryctl: message" to stderr and returns `code`.
int Complain(const std::string& message, int code = kExitFailure);

// Ctrl-C and SIGTERM: InstallInterruptHandler blocks them in every thread (call it before any
// thread starts) and handles them on one of its own, which cancels the call registered by the
// live CancelOnInterrupt, or exits 130 when there is none or on a second Ctrl-C.
void InstallInterruptHandler();
bool Interrupted();
class CancelOnInterrupt {
 public:
  explicit CancelOnInterrupt(grpc::ClientContext* context);
  ~CancelOnInterrupt();
  CancelOnInterrupt(const CancelOnInterrupt&) = delete;
  CancelOnInterrupt& operator=(const CancelOnInterrupt&) = delete;
};

// Cancels `context` at the time last given to Set (none until then; Clear forgets it), from a
// thread of its own: a way to stop a stream's blocking Read once nothing has changed for a
// while. Its owner's thread calls Set and Clear.
class CancelAt {
 public:
  explicit CancelAt(grpc::ClientContext* context);
  ~CancelAt();
  CancelAt(const CancelAt&) = delete;
  CancelAt& operator=(const CancelAt&) = delete;
  void Set(absl::Time when);
  void Clear();

 private:
  grpc::ClientContext* context_;
  std::mutex mu_;
  std::condition_variable changed_;
  absl::Time when_ = absl::InfiniteFuture();
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gantry::ctl
