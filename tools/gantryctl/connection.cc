#include "tools/gantryctl/connection.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/gantryctl/config_file.h"

namespace gantry::ctl {

std::string ProcessEnvOrEmpty(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value == nullptr ? "" : value;
}

namespace {

// Each setting, and the variable that carries it in the environment.
const std::vector<std::pair<std::string, std::string>> kEnvVars = {
    {"addr", "GANTRY_ADDR"}, {"ca", "GANTRY_CA"},       {"cert", "GANTRY_CERT"},
    {"key", "GANTRY_KEY"},   {"token", "GANTRY_TOKEN"}, {"token-file", "GANTRY_TOKEN_FILE"}};
const std::vector<std::string> kCredentials = {"cert", "key", "token", "token-file"};

// The settings of one source, by name, and where each came from.
struct Layer {
  std::map<std::string, std::string> values, sources;
  void Set(const std::string& setting, const std::string& value, const std::string& source) {
    if (value.empty()) return;
    values[setting] = value;
    sources[setting] = source;
  }
};

Layer FromContext(const ContextSettings& c, const std::string& source) {
  Layer layer;
  layer.Set("addr", c.addr, source);
  layer.Set("ca", c.ca, source);
  layer.Set("cert", c.cert, source);
  layer.Set("key", c.key, source);
  layer.Set("token-file", c.token_file, source);
  return layer;
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read token file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripAsciiWhitespace(text.str()));
}

}  // namespace

std::pair<std::string, std::string> ConfigPath(const Args& args, const Env& env) {
  if (args.Has("config")) return {args.Get("config"), "--config"};
  if (!env("GANTRY_CONFIG").empty()) return {env("GANTRY_CONFIG"), "GANTRY_CONFIG"};
  if (!env("HOME").empty()) return {env("HOME") + "/.config/gantry/config.yaml", "default"};
  return {"", "default"};
}

std::string CurrentContextOverride(const Env& env) {
  if (!env("GANTRY_CONTEXT").empty()) {
    return absl::StrCat("GANTRY_CONTEXT=", env("GANTRY_CONTEXT"), " names the context commands use");
  }
  std::vector<std::string> set;
  for (const auto& [setting, var] : kEnvVars) {
    if (!env(var).empty()) set.push_back(var);
  }
  if (set.empty()) return "";
  return absl::StrCat(absl::StrJoin(set, ", "), (set.size() == 1 ? " is" : " are"),
                      " set, so commands use the environment instead (unset ", set.size() == 1 ? "it" : "them",
                      ", or pass --context)");
}

absl::StatusOr<ResolvedConnection> ResolveConnectionSources(const Args& args, const Env& env) {
  ResolvedConnection r;
  std::tie(r.config_path, r.config_source) = ConfigPath(args, env);
  const bool explicit_config = r.config_source != "default";

  // The one source of the connection, before flags.
  std::string named = args.Get("context"), named_by = "--context";
  if (named.empty()) std::tie(named, named_by) = std::make_pair(env("GANTRY_CONTEXT"), std::string("GANTRY_CONTEXT"));
  std::vector<std::string> env_set;
  for (const auto& [setting, var] : kEnvVars) {
    if (!env(var).empty()) env_set.push_back(var);
  }
  Layer base;
  if (!named.empty() || env_set.empty()) {
    auto config = LoadConfigFile(r.config_path);
    if (!config.ok()) {
      // No file is fine unless one was asked for, by name or by a context in it.
      if (config.status().code() != absl::StatusCode::kNotFound || explicit_config || !named.empty()) {
        return config.status();
      }
    } else {
      std::string name = named, source = named_by;
      if (name.empty()) std::tie(name, source) = std::make_pair(config->current_context, std::string("current-context"));
      if (!name.empty()) {
        auto it = config->contexts.find(name);
        if (it == config->contexts.end()) {
          std::vector<std::string> names;
          for (const auto& [n, unused] : config->contexts) names.push_back(n);
          return absl::NotFoundError(absl::StrCat(r.config_path, ": no context \"", name, "\" (", source,
                                                  "); it has: ", names.empty() ? "none" : absl::StrJoin(names, ", ")));
        }
        r.context = name;
        r.context_source = source;
        base = FromContext(it->second, absl::StrCat("context ", name));
      }
    }
    // Only a named context gets here with the environment set: it is used whole.
    for (const std::string& var : env_set) {
      r.ignored.push_back(absl::StrCat(var, " (the context ", r.context, " named by ", named_by, " is used whole)"));
    }
  } else {
    for (const auto& [setting, var] : kEnvVars) base.Set(setting, env(var), var);
  }

  // Flags: a credential flag replaces every credential of the source.
  bool credential_flag = false;
  for (const std::string& flag : kCredentials) credential_flag = credential_flag || args.Has(flag);
  if (credential_flag) {
    for (const std::string& setting : kCredentials) {
      if (base.values.count(setting) > 0 && !args.Has(setting)) {
        r.ignored.push_back(absl::StrCat(setting, " from ", base.sources[setting],
                                         " (credential flags replace every credential)"));
      }
      base.values.erase(setting);
      base.sources.erase(setting);
    }
  }
  for (const std::string flag : {"addr", "ca", "cert", "key", "token-file"}) {
    if (args.Has(flag)) base.Set(flag, args.Get(flag), "--" + flag);
  }

  auto get = [&](const std::string& setting) { return base.values.count(setting) ? base.values[setting] : ""; };
  r.connection.address = get("addr");
  r.connection.ca_file = get("ca");
  r.connection.cert_file = get("cert");
  r.connection.key_file = get("key");
  r.connection.token = get("token");
  r.token_file = get("token-file");
  if (!r.token_file.empty()) {
    if (!r.connection.token.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("both ", base.sources["token"], " and ", base.sources["token-file"],
                                                     " give an API key: keep one"));
    }
    auto token = ReadToken(r.token_file);
    if (!token.ok()) return token.status();
    r.connection.token = *token;
  }
  r.sources = base.sources;
  return r;
}

absl::StatusOr<Connection> ResolveConnection(const Args& args, const Env& env) {
  auto r = ResolveConnectionSources(args, env);
  if (!r.ok()) return r.status();
  const Connection& c = r->connection;
  if (c.address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no API server: pass --addr, set GANTRY_ADDR, or add a context to ",
        r->config_path.empty() ? "a config file" : r->config_path,
        " (gantryctl config set-context; tools/quickstart.sh writes one: export GANTRY_CONFIG=.gantry/config.yaml)"));
  }
  if (c.cert_file.empty() != c.key_file.empty()) {
    const std::string have = c.cert_file.empty() ? "key" : "cert";
    return absl::InvalidArgumentError(absl::StrCat("a client certificate needs both cert and key; ",
                                                   r->sources.at(have), " gives only the ", have));
  }
  return r->connection;
}

}  // namespace gantry::ctl
