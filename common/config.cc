#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace gantry {

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Flags::Flags(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

std::string Flags::EnvName(const std::string& name) {
  return "GANTRY_" + absl::AsciiStrToUpper(absl::StrReplaceAll(name, {{"-", "_"}}));
}

void Flags::AddString(const std::string& name, std::string* target, const std::string& help,
                      const std::string& alias_env) {
  options_.push_back({name, Kind::kString, target, help, *target, alias_env});
}
void Flags::AddInt(const std::string& name, int64_t* target, const std::string& help) {
  options_.push_back({name, Kind::kInt, target, help, absl::StrCat(*target), ""});
}
void Flags::AddBool(const std::string& name, bool* target, const std::string& help) {
  options_.push_back({name, Kind::kBool, target, help, *target ? "true" : "false", ""});
}
void Flags::AddDuration(const std::string& name, absl::Duration* target, const std::string& help) {
  options_.push_back({name, Kind::kDuration, target, help, absl::FormatDuration(*target), ""});
}

Flags::Option* Flags::Find(const std::string& name) {
  for (auto& o : options_) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

absl::Status Flags::Set(Option& option, const std::string& value, const std::string& source) {
  auto bad = [&](absl::string_view expected) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": \"", value, "\" is not ", expected));
  };
  switch (option.kind) {
    case Kind::kString:
      *static_cast<std::string*>(option.target) = value;
      return absl::OkStatus();
    case Kind::kInt: {
      int64_t v;
      if (!absl::SimpleAtoi(value, &v)) return bad("an integer");
      *static_cast<int64_t*>(option.target) = v;
      return absl::OkStatus();
    }
    case Kind::kBool: {
      bool v;
      if (!absl::SimpleAtob(value, &v)) return bad("a boolean (true/false)");
      *static_cast<bool*>(option.target) = v;
      return absl::OkStatus();
    }
    case Kind::kDuration: {
      absl::Duration v;
      if (!absl::ParseDuration(value, &v) || v < absl::ZeroDuration()) {
        return bad("a non-negative duration such as 500ms, 5s or 2m");
      }
      *static_cast<absl::Duration*>(option.target) = v;
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unreachable option kind");
}

std::string Flags::ConfigFilePath(int argc, char** argv, const EnvLookup& env) const {
  std::string path = env(EnvName("config-file")).value_or("");
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config-file" && i + 1 < argc) path = argv[i + 1];
    if (arg.rfind("--config-file=", 0) == 0) path = arg.substr(14);
  }
  return path;
}

absl::Status Flags::ApplyConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat("--config-file ", path, ": cannot read it"));
  return ApplyConfigText(text.str(), path);
}

absl::Status Flags::ApplyConfigText(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("--config-file ", source, ": ", e.what()));
  }
  if (root.IsNull()) return absl::OkStatus();  // An empty file.
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat("--config-file ", source, ": expected option: value lines"));
  }
  for (const auto& entry : root) {
    if (!entry.first.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": keys must be option names"));
    }
    const std::string key = entry.first.as<std::string>();
    Option* option = key == "config-file" ? nullptr : Find(key);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": unknown option \"", key, "\" (see --help)"));
    }
    if (!entry.second.IsScalar()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, ": expected a single value"));
    }
    if (absl::Status s = Set(*option, entry.second.Scalar(), absl::StrCat(source, ": ", key)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Flags::Parse(int argc, char** argv, const EnvLookup& env) {
  // The file first, then the environment, then flags: each overrides the one before.
  if (std::string path = ConfigFilePath(argc, argv, env); !path.empty()) {
    if (absl::Status s = ApplyConfigFile(path); !s.ok()) return s;
  }
  for (auto& option : options_) {
    std::string env_name = EnvName(option.name);
    std::optional<std::string> value = env(env_name);
    if (!value && !option.alias_env.empty()) {
      env_name = option.alias_env;
      value = env(env_name);
    }
    if (value) {
      absl::Status s = Set(option, *value, env_name);
      if (!s.ok()) return s;
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_requested_ = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\" (see --help)"));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "config-file") {  // Read above.
      if (!value) ++i;
      continue;
    }
    Option* option = Find(name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    }
    if (!value) {
      if (option->kind == Kind::kBool) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    absl::Status s = Set(*option, *value, "--" + name);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

std::string Flags::Usage() const {
  std::string out = absl::StrCat(program_, ": ", summary_,
                                 "\n\nOptions (flag, environment variable, or key in the --config-file YAML file;\n"
                                 "each overrides the next):\n  --config-file  (GANTRY_CONFIG_FILE)\n"
                                 "      YAML file of option: value lines, e.g. \"log-format: json\"\n      default: \"\"\n");
  for (const auto& o : options_) {
    absl::StrAppend(&out, "  --", o.name, "  (", EnvName(o.name));
    if (!o.alias_env.empty()) absl::StrAppend(&out, " or ", o.alias_env);
    absl::StrAppend(&out, ")\n      ", o.help, "\n      default: ",
                    o.default_text.empty() ? "\"\"" : o.default_text, "\n");
  }
  return out;
}

}  // namespace gantry
