#include "tools/gantryctl/cli.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/status/status.h"

namespace gantry::ctl {

std::string ProcessEnvOrEmpty(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? "" : value;
}

namespace {

// The connection settings of one context of the config file, under the flags' names.
using Settings = std::map<std::string, std::string>;

absl::StatusOr<Settings> ContextFromFile(const std::string& path, const std::string& wanted,
                                         bool must_exist) {
  std::ifstream in(path);
  if (!in) {
    if (must_exist) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
    return Settings{};
  }
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not YAML: ", e.what()));
  }
  std::string name = wanted;
  if (name.empty() && root["current-context"]) name = root["current-context"].as<std::string>("");
  if (name.empty()) return Settings{};
  YAML::Node context = root["contexts"] ? root["contexts"][name] : YAML::Node();
  if (!context || !context.IsMap()) {
    return absl::NotFoundError(absl::StrCat(path, ": no context \"", name, "\""));
  }
  Settings settings;
  for (const auto& entry : context) {
    settings[entry.first.as<std::string>()] = entry.second.as<std::string>("");
  }
  return settings;
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

}  // namespace

absl::StatusOr<Connection> ResolveConnection(const Args& args, const Env& env) {
  std::string config = args.Get("config", env("GANTRY_CONFIG"));
  const bool explicit_config = !config.empty();
  if (config.empty() && !env("HOME").empty()) config = env("HOME") + "/.config/gantry/config.yaml";
  const std::string named = args.Get("context");
  Settings chosen, current;
  if (!named.empty()) {
    auto s = ContextFromFile(config, named, true);
    if (!s.ok()) return s.status();
    chosen = *s;
  } else if (!config.empty()) {
    auto s = ContextFromFile(config, env("GANTRY_CONTEXT"), explicit_config);
    if (!s.ok()) return s.status();
    current = *s;
  }
  auto pick = [&](const std::string& flag, const std::string& var) {
    if (args.Has(flag)) return args.Get(flag);
    if (chosen.count(flag)) return chosen[flag];
    if (!env(var).empty()) return env(var);
    return current.count(flag) ? current[flag] : std::string();
  };
  Connection c;
  c.address = pick("addr", "GANTRY_ADDR");
  c.ca_file = pick("ca", "GANTRY_CA");
  c.cert_file = pick("cert", "GANTRY_CERT");
  c.key_file = pick("key", "GANTRY_KEY");
  c.token = pick("token", "GANTRY_TOKEN");
  const std::string token_file = pick("token-file", "GANTRY_TOKEN_FILE");
  if (!token_file.empty()) {
    auto token = ReadToken(token_file);
    if (!token.ok()) return token.status();
    c.token = *token;
  }
  if (c.address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no API server: pass --addr, set GANTRY_ADDR, or add a context to ", config.empty() ? "a config file" : config,
        " (tools/quickstart.sh writes one: export GANTRY_CONFIG=.gantry/config.yaml)"));
  }
  if (c.cert_file.empty() != c.key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs both --cert and --key");
  }
  return c;
}

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
  return kExitRpcBase + code;
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

}  // namespace gantry::ctl
