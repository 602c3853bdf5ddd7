// What every gantryctl command works with: its parsed arguments, the connection to the API
// server (TLS, and an API key or a client certificate), per-call contexts, output format,
// exit codes and Ctrl-C.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tools/gantryctl/args.h"

namespace gantry::ctl {

// Exit codes: scripts can tell a refused request from a missing session from a usage error.
// An RPC that fails with gRPC code C exits 10 + C (NOT_FOUND 15, UNAVAILABLE 24, ...).
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,        // a local problem: unreadable file, bad config
  kExitUsage = 2,          // bad command line
  kExitSessionFailed = 3,  // --wait saw the session end FAILED
  kExitRpcBase = 10,
  kExitInterrupted = 130,  // Ctrl-C
};

enum class Format { kTable, kWide, kJson, kYaml, kName };

// Where and how to connect, resolved from flags, GANTRY_* environment and the config file.
struct Connection {
  std::string address;
  std::string ca_file;  // empty: the system's trust store (the server is still verified)
  std::string cert_file;
  std::string key_file;
  std::string token;  // API key, sent as "authorization: Bearer ..."
};

using Env = std::function<std::string(const std::string&)>;  // "" when unset
std::string ProcessEnvOrEmpty(const std::string& name);

// Flags win, then the context named by --context, then GANTRY_* variables, then the config
// file's current context.
absl::StatusOr<Connection> ResolveConnection(const Args& args, const Env& env);

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

  // Prints "gantryctl: CODE: message" to stderr and returns the exit code for `status`.
  int Fail(const grpc::Status& status) const;

 private:
  Args args_;
  Format format_;
  absl::Duration timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
};

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

}  // namespace gantry::ctl
