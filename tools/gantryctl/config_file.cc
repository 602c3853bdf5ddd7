#include "tools/gantryctl/config_file.h"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gantry::ctl {
namespace {

const std::vector<std::string> kTopKeys = {"current-context", "contexts"};

std::string* Field(ContextSettings* s, const std::string& key) {
  if (key == "addr") return &s->addr;
  if (key == "ca") return &s->ca;
  if (key == "cert") return &s->cert;
  if (key == "key") return &s->key;
  if (key == "token-file") return &s->token_file;
  return nullptr;
}

// What a user most likely meant by a key gantryctl does not know.
std::string Hint(const std::string& key) {
  if (key == "token" || key == "api-key" || key == "api_key") {
    return "; an API key is not kept in the config file: put it in a file (mode 0600) and name that file "
           "with token-file";
  }
  if (key == "address" || key == "server" || key == "endpoint") return "; did you mean addr?";
  if (key == "token_file" || key == "tokenFile") return "; did you mean token-file?";
  if (key == "tls") return "; TLS settings are the keys ca, cert and key of the context itself";
  return "";
}

absl::Status Bad(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

}  // namespace

const std::vector<std::string>& ContextKeys() {
  static const std::vector<std::string> keys = {"addr", "ca", "cert", "key", "token-file"};
  return keys;
}

absl::StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Bad(path, absl::StrCat("not YAML: ", e.what()));
  }
  ConfigFile config;
  if (root.IsNull()) return config;  // An empty file: no contexts yet.
  if (!root.IsMap()) return Bad(path, "not a gantryctl config (expected the keys current-context and contexts)");
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>("");
    if (std::find(kTopKeys.begin(), kTopKeys.end(), key) == kTopKeys.end()) {
      return Bad(path, absl::StrCat("unknown key \"", key, "\" (known: ", absl::StrJoin(kTopKeys, ", "), ")"));
    }
  }
  if (const YAML::Node current = root["current-context"]; current && !current.IsNull()) {
    if (!current.IsScalar()) return Bad(path, "current-context: must be a context's name");
    config.current_context = current.as<std::string>();
  }
  const YAML::Node contexts = root["contexts"];
  if (contexts && contexts.IsSequence()) {
    return Bad(path,
               "contexts: is a list (as in a kubeconfig); gantryctl's contexts are a map from name to "
               "settings:\n  contexts:\n    local: {addr: HOST:PORT, ca: FILE, token-file: FILE}\n"
               "(gantryctl config set-context writes one for you)");
  }
  if (contexts && !contexts.IsNull() && !contexts.IsMap()) return Bad(path, "contexts: must be a map from name to settings");
  if (contexts && contexts.IsMap()) {
    for (const auto& entry : contexts) {
      const std::string name = entry.first.as<std::string>("");
      if (name.empty()) return Bad(path, "contexts: a context needs a name");
      if (!entry.second.IsMap()) {
        return Bad(path, absl::StrCat("context \"", name, "\": must be a map of ", absl::StrJoin(ContextKeys(), ", ")));
      }
      ContextSettings settings;
      for (const auto& field : entry.second) {
        const std::string key = field.first.as<std::string>("");
        std::string* value = Field(&settings, key);
        if (value == nullptr) {
          return Bad(path, absl::StrCat("context \"", name, "\": unknown key \"", key, "\" (known: ",
                                        absl::StrJoin(ContextKeys(), ", "), ")", Hint(key)));
        }
        if (!field.second.IsScalar()) {
          return Bad(path, absl::StrCat("context \"", name, "\": ", key, " must be a single value"));
        }
        *value = field.second.as<std::string>();
      }
      config.contexts[name] = settings;
    }
  }
  return config;
}

absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfigFile(text.str(), path);
}

std::string RenderConfigFile(const ConfigFile& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!config.current_context.empty()) out << YAML::Key << "current-context" << YAML::Value << config.current_context;
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, settings] : config.contexts) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    ContextSettings copy = settings;
    for (const std::string& key : ContextKeys()) {
      const std::string& value = *Field(&copy, key);
      if (!value.empty()) out << YAML::Key << key << YAML::Value << value;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

absl::Status SaveConfigFile(const std::string& path, const ConfigFile& config) {
  const size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    // The parent, then its parent's missing part (~/.config/gantry): at most two levels.
    const std::string dir = path.substr(0, slash);
    const size_t up = dir.rfind('/');
    if (up != std::string::npos && up > 0) mkdir(dir.substr(0, up).c_str(), 0700);
    mkdir(dir.c_str(), 0700);
  }
  // Written beside it and renamed over it: a crash leaves the old file or the new, never half.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
    chmod(tmp.c_str(), 0600);
    out << "# gantryctl contexts (docs/gantryctl.md); gantryctl config set-context edits this file\n"
        << RenderConfigFile(config);
    if (!out.flush()) return absl::PermissionDeniedError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::PermissionDeniedError(absl::StrCat("cannot replace ", path));
  }
  return absl::OkStatus();
}

}  // namespace gantry::ctl
