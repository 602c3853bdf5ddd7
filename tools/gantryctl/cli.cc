#include "tools/gantryctl/cli.h"

#include <grpc/support/log.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/status/status.h"

namespace gantry::ctl {

Cli::Cli(Args args, Format format, absl::Duration timeout, std::shared_ptr<grpc::Channel> channel,
         std::string token)
    : args_(std::move(args)), format_(format), timeout_(timeout), channel_(std::move(channel)),
      token_(std::move(token)) {}

std::unique_ptr<grpc::ClientContext> Cli::Stream() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
  return context;
}

std::unique_ptr<grpc::ClientContext> Cli::Call() const {
  auto context = Stream();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  return context;
}

int Cli::Fail(const grpc::Status& status) const {
  if (Interrupted() && status.error_code() == grpc::StatusCode::CANCELLED) return kExitInterrupted;
  const int code = status.error_code();
  // gRPC's codes are absl's, number for number.
  const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  std::fprintf(stderr, "gantryctl: %s: %s\n", name.c_str(), status.error_message().c_str());
  if (!tls_hint_.empty() && IsTlsFailure(status)) std::fprintf(stderr, "gantryctl: %s\n", tls_hint_.c_str());
  return kExitRpcBase + code;
}

bool IsTlsFailure(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& m = status.error_message();
  for (const char* sign : {"Ssl handshake failed", "SSL_ERROR", "certificate verify failed", "handshake"}) {
    if (m.find(sign) != std::string::npos) return true;
  }
  return false;
}

std::string TlsHint(const std::string& ca_file) {
  if (ca_file.empty()) {
    return "the server's certificate is not trusted by the system's trust store, which is used because no CA "
           "is set: set the cluster's CA with --ca, GANTRY_CA, or ca: in the context "
           "(gantryctl config set-context NAME --ca FILE; the quickstart's is .gantry/pki/ca.crt)";
  }
  return absl::StrCat("the TLS handshake failed with the CA ", ca_file,
                      ": check that it is the CA that signed the server's certificate, that the address is one "
                      "the certificate names, and that a client certificate (if any) is the cluster's");
}

namespace {
void DiscardGrpcLog(gpr_log_func_args*) {}
}  // namespace

void SilenceGrpcLogs() {
  if (!ProcessEnvOrEmpty("GRPC_VERBOSITY").empty() || !ProcessEnvOrEmpty("GRPC_TRACE").empty()) return;
  gpr_set_log_function(DiscardGrpcLog);
}

int Complain(const std::string& message, int code) {
  std::fprintf(stderr, "gantryctl: %s\n", message.c_str());
  return code;
}

namespace {
std::mutex interrupt_mu;
grpc::ClientContext* interrupt_target = nullptr;
bool interrupted = false;
}  // namespace

void InstallInterruptHandler() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      std::lock_guard<std::mutex> lock(interrupt_mu);
      // A second Ctrl-C does not wait for the cancellation to be acknowledged.
      if (interrupted || interrupt_target == nullptr) _exit(kExitInterrupted);
      interrupted = true;
      interrupt_target->TryCancel();
    }
  }).detach();
}

bool Interrupted() {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  return interrupted;
}

CancelOnInterrupt::CancelOnInterrupt(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  interrupt_target = context;
  if (interrupted) context->TryCancel();
}

CancelOnInterrupt::~CancelOnInterrupt() {
  std::lock_guard<std::mutex> lock(interrupt_mu);
  interrupt_target = nullptr;
}

CancelAt::CancelAt(grpc::ClientContext* context) : context_(context) {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      if (when_ != absl::InfiniteFuture() && absl::Now() >= when_) {
        context_->TryCancel();
        return;
      }
      if (when_ == absl::InfiniteFuture()) {
        changed_.wait(lock);
      } else {
        changed_.wait_until(lock, absl::ToChronoTime(when_));
      }
    }
  });
}

CancelAt::~CancelAt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void CancelAt::Set(absl::Time when) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    when_ = when;
  }
  changed_.notify_all();
}

void CancelAt::Clear() { Set(absl::InfiniteFuture()); }

}  // namespace gantry::ctl
