// The command table: every gantryctl command, its flags, help and handler.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tools/gantryctl/args.h"
#include "tools/gantryctl/cli.h"

namespace gantry::ctl {

struct Command {
  std::string path;       // "get", "controllers list"
  std::string arguments;  // "ID" in the usage line
  std::string summary;    // one line
  std::string details;    // more help, may be empty
  std::vector<FlagSpec> flags;
  int min_args = 0;
  int max_args = 0;  // -1: any number
  size_t flags_end_after = 0;  // see ParseArgs: positionals after which flags end (0: never)
  std::function<int(Cli&)> run;
  bool needs_server = true;  // false: config and completion
};

// Grouped by file: sessions, invoke, admin, and the ones that need no server.
std::vector<Command> SessionCommands();
std::vector<Command> InvokeCommands();
std::vector<Command> AdminCommands();
std::vector<Command> JoinTokenCommands();
std::vector<Command> TeamCommands();
std::vector<Command> LocalCommands();
// Controllers are named by people and identified by UUIDs: `id` for either (admin only).
grpc::Status ResolveController(Cli& cli, const std::string& id_or_name, std::string* id);

// Every command, in help order.
const std::vector<Command>& AllCommands();

}  // namespace gantry::ctl
