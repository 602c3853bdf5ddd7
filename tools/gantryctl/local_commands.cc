// Commands that need no server: config contexts and shell completion.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/config_file.h"
#include "tools/gantryctl/render.h"

namespace gantry::ctl {
namespace {

std::string PathOf(const Args& args) { return ConfigPath(args, ProcessEnvOrEmpty).first; }

// The config file, or an exit code after saying why not.
int Load(const std::string& path, ConfigFile* config) {
  auto loaded = LoadConfigFile(path);
  if (!loaded.ok()) return Complain(std::string(loaded.status().message()));
  *config = *std::move(loaded);
  return kExitOk;
}

int GetContexts(Cli& cli) {
  ConfigFile config;
  if (int rc = Load(PathOf(cli.args()), &config); rc != kExitOk) return rc;
  Table table({"CURRENT", "NAME", "ADDR", "AUTH"});
  for (const auto& [name, c] : config.contexts) {
    std::vector<std::string> auth;
    if (!c.cert.empty()) auth.push_back("certificate");
    if (!c.token_file.empty()) auth.push_back("api key");
    table.AddRow({name == config.current_context ? "*" : "", name, OrDash(c.addr),
                  auth.empty() ? "-" : absl::StrJoin(auth, " + ")});
  }
  std::cout << table.Render();
  if (const std::string why = CurrentContextOverride(ProcessEnvOrEmpty); !why.empty() && !config.current_context.empty()) {
    Complain(absl::StrCat("note: the current context is not in use here: ", why));
  }
  return kExitOk;
}

int UseContext(Cli& cli) {
  const std::string path = PathOf(cli.args());
  const std::string name = cli.args().positional()[0];
  ConfigFile config;
  if (int rc = Load(path, &config); rc != kExitOk) return rc;
  if (config.contexts.count(name) == 0) return Complain(absl::StrCat(path, ": no context \"", name, "\""));
  config.current_context = name;
  if (auto saved = SaveConfigFile(path, config); !saved.ok()) return Complain(std::string(saved.message()));
  std::cout << "current context: " << name << "\n";
  if (const std::string why = CurrentContextOverride(ProcessEnvOrEmpty); !why.empty()) {
    Complain(absl::StrCat("note: not in this shell: ", why));
  }
  return kExitOk;
}

// A path as given, made absolute so that the context works from any directory.
std::string Absolute(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved) != nullptr) return resolved;
  return path;  // Not there yet: kept as given, and said so by the caller's check.
}

int SetContext(Cli& cli) {
  const Args& args = cli.args();
  const std::string path = PathOf(args);
  const std::string name = args.positional()[0];
  if (path.empty()) return Complain("no config file: pass --config or set GANTRY_CONFIG (or HOME)");
  ConfigFile config;
  auto loaded = LoadConfigFile(path);
  if (loaded.ok()) {
    config = *std::move(loaded);
  } else if (loaded.status().code() != absl::StatusCode::kNotFound) {
    return Complain(std::string(loaded.status().message()));
  }
  const bool created = config.contexts.count(name) == 0;
  ContextSettings& c = config.contexts[name];
  if (args.Has("addr")) c.addr = args.Get("addr");
  if (args.Has("ca")) c.ca = Absolute(args.Get("ca"));
  // Credentials are replaced together, never mixed with the ones the context had.
  if (args.Has("cert") || args.Has("key") || args.Has("token-file")) {
    c.cert = Absolute(args.Get("cert"));
    c.key = Absolute(args.Get("key"));
    c.token_file = Absolute(args.Get("token-file"));
  }
  if (c.cert.empty() != c.key.empty()) return Complain("a client certificate needs both --cert and --key", kExitUsage);
  if (c.addr.empty()) return Complain(absl::StrCat("context \"", name, "\" needs --addr"), kExitUsage);
  for (const std::string& file : {c.ca, c.cert, c.key, c.token_file}) {
    if (!file.empty() && access(file.c_str(), R_OK) != 0) return Complain(absl::StrCat("cannot read ", file));
  }
  if (args.Has("use") || config.current_context.empty()) config.current_context = name;
  if (auto saved = SaveConfigFile(path, config); !saved.ok()) return Complain(std::string(saved.message()));
  std::cout << "context \"" << name << "\" " << (created ? "created" : "updated") << " in " << path
            << (config.current_context == name ? " (current)" : "") << "\n";
  return kExitOk;
}

int View(Cli& cli) {
  auto r = ResolveConnectionSources(cli.args(), ProcessEnvOrEmpty);
  if (!r.ok()) return Complain(std::string(r.status().message()));
  auto from = [&](const std::string& setting) {
    auto it = r->sources.find(setting);
    return it == r->sources.end() ? std::string() : "  (" + it->second + ")";
  };
  auto line = [](const std::string& label, const std::string& value) {
    std::cout << label << std::string(label.size() < 13 ? 13 - label.size() : 1, ' ') << value << "\n";
  };
  line("config file:", absl::StrCat(r->config_path.empty() ? "-" : r->config_path, "  (", r->config_source, ")"));
  line("context:", r->context.empty() ? "- (none)" : absl::StrCat(r->context, "  (", r->context_source, ")"));
  const Connection& c = r->connection;
  line("addr:", c.address.empty() ? "- (none: commands will fail until one is set)" : c.address + from("addr"));
  line("ca:", c.ca_file.empty() ? "- (the system's trust store)" : c.ca_file + from("ca"));
  line("cert:", c.cert_file.empty() ? "-" : c.cert_file + from("cert"));
  line("key:", c.key_file.empty() ? "-" : c.key_file + from("key"));
  // The API key itself is never shown.
  std::string key = "-";
  if (!r->token_file.empty()) {
    key = absl::StrCat("read from ", r->token_file, from("token-file"));
  } else if (!c.token.empty()) {
    key = absl::StrCat("set", from("token"));
  }
  line("api key:", key);
  for (const std::string& ignored : r->ignored) line("ignored:", ignored);
  return kExitOk;
}

int BashCompletion(Cli&) {
  // Completion asks gantryctl itself (the hidden __complete command), so it always knows the
  // current commands and flags, and can offer session ids from the server.
  std::cout << R"BASH(# gantryctl bash completion: source <(gantryctl completion bash)
_gantryctl() {
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$(gantryctl __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _gantryctl gantryctl
)BASH";
  return kExitOk;
}

}  // namespace

std::vector<Command> LocalCommands() {
  std::vector<Command> commands = {
      {"config get-contexts", "", "list the contexts in the config file", "", {}, 0, 0, 0, GetContexts},
      {"config use-context", "NAME", "make NAME the config file's current context", "", {}, 1, 1, 0, UseContext},
      {"config set-context", "NAME", "create or change a context (--addr, --ca, --cert/--key, --token-file)",
       "Settings not given are kept, except credentials: any of --cert, --key, --token-file replaces all of\n"
       "the context's credentials. Paths are stored absolute. The first context becomes the current one.",
       {{"use", 0, false, "", "also make it the current context"}}, 1, 1, 0, SetContext},
      {"config view", "", "show the connection a command would use, and where each setting came from",
       "The API key itself is never shown.", {}, 0, 0, 0, View},
      {"completion bash", "", "print the bash completion script",
       "Load it with: source <(gantryctl completion bash)", {}, 0, 0, 0, BashCompletion},
  };
  for (Command& c : commands) c.needs_server = false;
  return commands;
}

}  // namespace gantry::ctl
