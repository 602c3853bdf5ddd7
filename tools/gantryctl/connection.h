// Where gantryctl connects and as whom: resolved from flags, a named context, GANTRY_*
// variables and the config file's current context, with where each setting came from.
//
// Credentials are never mixed: one source supplies all of them (API key and client
// certificate), so a context for a user's certificate can never pick up an admin's API key from
// the environment. In order:
//   1. a context named by --context, else by GANTRY_CONTEXT: used whole;
//   2. else, when any of GANTRY_ADDR, GANTRY_CA, GANTRY_CERT, GANTRY_KEY, GANTRY_TOKEN,
//      GANTRY_TOKEN_FILE is set: the environment, whole;
//   3. else the config file's current context.
// Flags then override: --addr and --ca one setting each; any of --cert, --key, --token-file
// replaces every credential of that source.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/gantryctl/args.h"

namespace gantry::ctl {

struct Connection {
  std::string address;
  std::string ca_file;  // empty: the system's trust store (the server is still verified)
  std::string cert_file;
  std::string key_file;
  std::string token;  // API key, sent as "authorization: Bearer ..."
};

using Env = std::function<std::string(const std::string&)>;  // "" when unset
std::string ProcessEnvOrEmpty(const std::string& name);

// A resolved connection and what `gantryctl config view` says about it.
struct ResolvedConnection {
  Connection connection;
  std::string token_file;  // where connection.token was read from, if a file
  std::string config_path;
  std::string config_source;  // "--config", "GANTRY_CONFIG" or "default"
  std::string context;        // the context used, if any
  std::string context_source;  // "--context", "GANTRY_CONTEXT" or "current-context"
  // For each of addr, ca, cert, key, token, token-file that is set: where it came from.
  std::map<std::string, std::string> sources;
  // Settings present but not used, each with why.
  std::vector<std::string> ignored;
};

// The config file gantryctl reads (--config, GANTRY_CONFIG, else ~/.config/gantry/config.yaml),
// and which of those named it.
std::pair<std::string, std::string> ConfigPath(const Args& args, const Env& env);

// What overrides the config file's current context in `env`, in words ("" if nothing): a
// GANTRY_CONTEXT naming another, or GANTRY_* connection variables (used whole instead).
std::string CurrentContextOverride(const Env& env);

// Resolves without checking that an address was found (config view shows what there is).
absl::StatusOr<ResolvedConnection> ResolveConnectionSources(const Args& args, const Env& env);
// Resolves what a command needs: INVALID_ARGUMENT saying what to set when there is no address
// or half a certificate; the config file's errors as they are.
absl::StatusOr<Connection> ResolveConnection(const Args& args, const Env& env);

}  // namespace gantry::ctl
