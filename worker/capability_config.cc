#include "worker/capability_config.h"

#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/invoke_request.h"
#include "common/semver.h"

namespace gantry::worker {

absl::StatusOr<std::vector<CapabilityConfig>> ParseCapabilities(absl::string_view text) {
  std::vector<CapabilityConfig> out;
  std::set<std::string> names;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = line.substr(0, line.find('#'));
    std::vector<std::string> words = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    auto bad = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrCat("capabilities line ", number, ": ", why));
    };
    if (words.size() < 4) return bad("want NAME VERSION exec|persistent COMMAND [ARG...]");
    CapabilityConfig c;
    c.name = words[0];
    c.version = words[1];
    if (!IsValidCapabilityName(c.name)) return bad(absl::StrCat("\"", c.name, "\" is not a capability name"));
    if (!names.insert(c.name).second) return bad(absl::StrCat("\"", c.name, "\" is declared twice"));
    if (auto v = ParseSemVer(c.version); !v.ok()) return bad(std::string(v.status().message()));
    if (words[2] == "exec") {
      c.kind = CapabilityConfig::Kind::kExec;
    } else if (words[2] == "persistent") {
      c.kind = CapabilityConfig::Kind::kPersistent;
    } else {
      return bad(absl::StrCat("handler kind \"", words[2], "\" is neither exec nor persistent"));
    }
    c.command.assign(words.begin() + 3, words.end());
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<CapabilityConfig>> ModelCapabilities(absl::string_view handler,
                                                                const std::string& models_dir,
                                                                const std::vector<std::string>& model_names,
                                                                const std::vector<CapabilityConfig>& declared) {
  std::vector<std::string> words = absl::StrSplit(handler, ' ', absl::SkipEmpty());
  if (words.size() < 2 || (words[0] != "exec" && words[0] != "persistent")) {
    return absl::InvalidArgumentError("--model-handler: want \"exec|persistent COMMAND [ARG...]\"");
  }
  std::vector<CapabilityConfig> out;
  for (const auto& model : model_names) {
    CapabilityConfig c;
    c.name = absl::StrCat("model/", model);
    bool taken = !IsValidCapabilityName(c.name);
    for (const auto& d : declared) taken = taken || d.name == c.name;
    if (taken) continue;
    std::string dir = absl::StrCat(models_dir, "/", model);
    std::ifstream version_file(dir + "/VERSION");
    std::string version;
    if (!(version_file >> version) || !ParseSemVer(version).ok()) version = "1.0.0";
    c.version = version;
    c.kind = words[0] == "exec" ? CapabilityConfig::Kind::kExec : CapabilityConfig::Kind::kPersistent;
    c.command.assign(words.begin() + 1, words.end());
    c.env = {absl::StrCat("GANTRY_MODEL=", model), absl::StrCat("GANTRY_MODEL_DIR=", dir)};
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace gantry::worker
