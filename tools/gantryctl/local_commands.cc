// Commands that need no server: config contexts and shell completion.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"

namespace gantry::ctl {
namespace {

std::string ConfigPath(const Args& args) {
  std::string path = args.Get("config", ProcessEnvOrEmpty("GANTRY_CONFIG"));
  if (path.empty() && !ProcessEnvOrEmpty("HOME").empty()) path = ProcessEnvOrEmpty("HOME") + "/.config/gantry/config.yaml";
  return path;
}

int LoadConfig(const std::string& path, YAML::Node* root) {
  try {
    *root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return Complain(absl::StrCat("cannot read config file ", path, ": ", e.what()));
  }
  return kExitOk;
}

int GetContexts(Cli& cli) {
  const std::string path = ConfigPath(cli.args());
  YAML::Node root;
  if (int rc = LoadConfig(path, &root); rc != kExitOk) return rc;
  const std::string current = root["current-context"].as<std::string>("");
  Table table({"CURRENT", "NAME", "ADDR", "AUTH"});
  for (const auto& entry : root["contexts"]) {
    const std::string name = entry.first.as<std::string>();
    const YAML::Node c = entry.second;
    std::string auth = c["cert"] ? "certificate" : (c["token-file"] || c["token"]) ? "api key" : "-";
    table.AddRow({name == current ? "*" : "", name, c["addr"].as<std::string>("-"), auth});
  }
  std::cout << table.Render();
  return kExitOk;
}

int UseContext(Cli& cli) {
  const std::string path = ConfigPath(cli.args());
  const std::string name = cli.args().positional()[0];
  YAML::Node root;
  if (int rc = LoadConfig(path, &root); rc != kExitOk) return rc;
  if (!root["contexts"] || !root["contexts"][name]) return Complain(absl::StrCat(path, ": no context \"", name, "\""));
  root["current-context"] = name;
  std::ofstream out(path);
  out << root << "\n";
  if (!out) return Complain("cannot write " + path);
  std::cout << "current context: " << name << "\n";
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
      {"completion bash", "", "print the bash completion script",
       "Load it with: source <(gantryctl completion bash)", {}, 0, 0, 0, BashCompletion},
  };
  for (Command& c : commands) c.needs_server = false;
  return commands;
}

}  // namespace gantry::ctl
