// gantryctl: Gantry's command line. `gantryctl --help` lists the commands; docs/gantryctl.md
// walks through them.
#include <algorithm>
#include <iostream>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "gantry/v1/session_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"

namespace gantry::ctl {

const std::vector<Command>& AllCommands() {
  static const std::vector<Command> all = [] {
    std::vector<Command> commands;
    for (auto group : {SessionCommands(), InvokeCommands(), AdminCommands(), JoinTokenCommands(), TeamCommands(), LocalCommands()}) {
      commands.insert(commands.end(), group.begin(), group.end());
    }
    return commands;
  }();
  return all;
}

namespace {

constexpr char kExitCodes[] =
    "Exit codes: 0 done; 1 a local problem (unreadable file, bad config); 2 bad command line;\n"
    "3 the session --wait followed ended FAILED; 4 it ended otherwise before it had been up for\n"
    "--stable-for; 10 + the gRPC code when the server refused or could not be reached\n"
    "(13 INVALID_ARGUMENT, 15 NOT_FOUND, 17 PERMISSION_DENIED, 18 RESOURCE_EXHAUSTED,\n"
    "19 FAILED_PRECONDITION, 24 UNAVAILABLE, 26 UNAUTHENTICATED); 130 interrupted (Ctrl-C).\n";

std::string Usage() {
  std::string out =
      "gantryctl: run and watch GPU sessions and capabilities on a Gantry fleet.\n\n"
      "usage: gantryctl [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]   (gantryctl COMMAND --help for more)\n";
  std::string group;
  for (const Command& c : AllCommands()) {
    std::string heading = c.path == "create"             ? "Sessions"
                          : c.path == "invoke"           ? "Capabilities"
                          : c.path == "controllers list" ? "Fleet (admin role)"
                          : c.path == "teams"            ? "Teams and quotas (admin role)"
                          : c.path == "config get-contexts" ? "Configuration"
                                                         : "";
    if (!heading.empty()) absl::StrAppend(&out, "\n", heading, ":\n");
    std::string left = c.path + (c.arguments.empty() ? "" : " " + c.arguments);
    if (left.size() > 36) left = c.path;
    absl::StrAppend(&out, "  ", left, std::string(left.size() < 38 ? 38 - left.size() : 1, ' '), c.summary, "\n");
  }
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagHelp(GlobalFlags()),
                  "\nConnection: one source gives all of it, and credentials are never mixed: the context named\n"
                  "by --context (or GANTRY_CONTEXT), else the GANTRY_ADDR, GANTRY_CA, GANTRY_CERT, GANTRY_KEY,\n"
                  "GANTRY_TOKEN / GANTRY_TOKEN_FILE variables, else the config file's current context. Flags\n"
                  "override it (--cert, --key or --token-file replace all its credentials). `gantryctl config\n"
                  "view` shows what a command would use. Config file (gantryctl config set-context writes it):\n"
                  "  current-context: local\n  contexts:\n    local: {addr: 127.0.0.1:7443, ca: ca.crt, token-file: admin.key}\n\n",
                  kExitCodes);
  return out;
}

std::string CommandHelp(const Command& c) {
  std::string out = absl::StrCat("gantryctl ", c.path, ": ", c.summary, "\n\nusage: gantryctl ", c.path,
                                 c.arguments.empty() ? "" : " " + c.arguments, " [FLAGS]\n");
  if (!c.details.empty()) absl::StrAppend(&out, "\n", c.details, "\n");
  if (!c.flags.empty()) absl::StrAppend(&out, "\nFlags:\n", FlagHelp(c.flags));
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagHelp(GlobalFlags()), "\n", kExitCodes);
  return out;
}

// The command named by words[at...] (two words, or one); `used` says how many it took.
const Command* FindCommand(const std::vector<std::string>& words, size_t at, size_t* used) {
  for (const Command& c : AllCommands()) {
    if (at + 1 < words.size() && c.path == words[at] + " " + words[at + 1]) {
      *used = 2;
      return &c;
    }
  }
  for (const Command& c : AllCommands()) {
    if (at < words.size() && c.path == words[at]) {
      *used = 1;
      return &c;
    }
  }
  return nullptr;
}

bool IsGroup(const std::string& word) {
  for (const Command& c : AllCommands()) {
    if (absl::StartsWith(c.path, word + " ")) return true;
  }
  return false;
}

// Global flags given before the command; returns the index of the command word.
size_t SkipLeadingFlags(const std::vector<std::string>& words, std::vector<std::string>* leading) {
  size_t i = 0;
  while (i < words.size() && words[i].size() > 1 && words[i][0] == '-') {
    leading->push_back(words[i]);
    for (const FlagSpec& f : GlobalFlags()) {
      const bool named = words[i] == "--" + f.name || (f.short_name && words[i] == std::string("-") + f.short_name);
      if (named && f.takes_value && i + 1 < words.size()) leading->push_back(words[++i]);
    }
    ++i;
  }
  return i;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const Connection& c) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!c.ca_file.empty()) {
    auto made = MakeChannelCredentials({c.ca_file, c.cert_file, c.key_file});
    if (!made.ok()) return made.status();
    creds = *made;
  } else {
    // No CA named: the system's trust store, as for a server with a publicly issued certificate.
    grpc::SslCredentialsOptions options;
    if (!c.cert_file.empty()) {
      auto cert = ReadFile(c.cert_file);
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(c.key_file);
      if (!key.ok()) return key.status();
      options.pem_cert_chain = *cert;
      options.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(options);
  }
  return CreateInternalChannel(c.address, creds);
}

// Hidden: the candidates for the next word after `words` (bash completion).
int Complete(const std::vector<std::string>& words) {
  std::vector<std::string> leading;
  const size_t at = SkipLeadingFlags(words, &leading);
  size_t used = 0;
  const Command* command = FindCommand(words, at, &used);
  if (command == nullptr) {
    std::set<std::string> next;
    for (const Command& c : AllCommands()) {
      if (at >= words.size()) {
        next.insert(c.path.substr(0, c.path.find(' ')));
      } else if (at + 1 == words.size() && absl::StartsWith(c.path, words[at] + " ")) {
        next.insert(c.path.substr(words[at].size() + 1));
      }
    }
    for (const std::string& n : next) std::cout << n << "\n";
    return kExitOk;
  }
  if (!words.empty() && (words.back() == "-o" || words.back() == "--output")) {
    std::cout << "table\nwide\njson\nyaml\nname\n";
    return kExitOk;
  }
  for (const auto* set : {&command->flags, &GlobalFlags()}) {
    for (const FlagSpec& f : *set) std::cout << "--" << f.name << "\n";
  }
  // Session ids for the commands that take them, if the server answers quickly.
  static const std::set<std::string> kTakesSessionIds = {"get", "logs", "hibernate", "wake", "delete", "metrics"};
  if (kTakesSessionIds.count(command->path) > 0) {
    Args args;
    if (!ParseArgs(leading, {}, 0, &args).empty()) return kExitOk;
    auto connection = ResolveConnection(args, ProcessEnvOrEmpty);
    if (!connection.ok()) return kExitOk;
    auto channel = Connect(*connection);
    if (!channel.ok()) return kExitOk;
    Cli cli(args, Format::kTable, absl::Seconds(2), *channel, connection->token);
    v1::ListSessionsRequest request;
    request.set_page_size(200);
    v1::ListSessionsResponse page;
    auto context = cli.Call();
    if (v1::SessionService::NewStub(*channel)->ListSessions(context.get(), request, &page).ok()) {
      for (const auto& s : page.sessions()) std::cout << s.id() << "\n";
    }
  }
  return kExitOk;
}

int Run(const std::vector<std::string>& words) {
  if (!words.empty() && words[0] == "__complete") return Complete({words.begin() + 1, words.end()});
  std::vector<std::string> leading;
  const size_t at = SkipLeadingFlags(words, &leading);
  const bool help = std::find(leading.begin(), leading.end(), "--help") != leading.end() ||
                    std::find(leading.begin(), leading.end(), "-h") != leading.end();
  if (at >= words.size() || words[at] == "help") {
    const bool asked = help || (at < words.size() && words[at] == "help");
    (asked ? std::cout : std::cerr) << Usage();
    return asked ? kExitOk : kExitUsage;
  }
  size_t used = 0;
  const Command* command = FindCommand(words, at, &used);
  if (command == nullptr) {
    if (IsGroup(words[at])) {
      std::string subcommands;
      for (const Command& c : AllCommands()) {
        if (absl::StartsWith(c.path, words[at] + " ")) absl::StrAppend(&subcommands, "\n  ", c.path, "  ", c.summary);
      }
      return Complain(absl::StrCat("\"", words[at], "\" needs a subcommand:", subcommands), kExitUsage);
    }
    return Complain(absl::StrCat("unknown command \"", words[at], "\" (gantryctl --help lists them)"), kExitUsage);
  }
  std::vector<std::string> rest = leading;
  rest.insert(rest.end(), words.begin() + static_cast<long>(at + used), words.end());
  Args args;
  if (std::string error = ParseArgs(rest, command->flags, command->flags_end_after, &args); !error.empty()) {
    return Complain(absl::StrCat(command->path, ": ", error), kExitUsage);
  }
  if (args.Has("help")) {
    std::cout << CommandHelp(*command);
    return kExitOk;
  }
  const int count = static_cast<int>(args.positional().size());
  if (count < command->min_args || (command->max_args >= 0 && count > command->max_args)) {
    return Complain(absl::StrCat("usage: gantryctl ", command->path, " ", command->arguments,
                                 " (gantryctl ", command->path, " --help)"),
                    kExitUsage);
  }
  auto format = ParseFormat(args.Get("output"));
  if (!format.ok()) return Complain(std::string(format.status().message()), kExitUsage);
  absl::Duration timeout = absl::Seconds(30);
  if (auto s = ParseDurationFlag(args, "timeout", &timeout); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
  if (!command->needs_server) {
    Cli cli(args, *format, timeout, nullptr, "");
    return command->run(cli);
  }
  auto connection = ResolveConnection(args, ProcessEnvOrEmpty);
  if (!connection.ok()) return Complain(std::string(connection.status().message()));
  auto channel = Connect(*connection);
  if (!channel.ok()) return Complain(std::string(channel.status().message()));
  Cli cli(args, *format, timeout, *channel, connection->token);
  cli.set_tls_hint(TlsHint(connection->ca_file));
  return command->run(cli);
}

}  // namespace
}  // namespace gantry::ctl

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread (gRPC's too) leaves Ctrl-C to ours.
  gantry::ctl::InstallInterruptHandler();
  gantry::ctl::SilenceGrpcLogs();
  return gantry::ctl::Run(std::vector<std::string>(argv + 1, argv + argc));
}
