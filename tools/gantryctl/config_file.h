// gantryctl's config file: named contexts, each the settings of one way to reach one fleet as
// one identity, and which of them is current. Read strictly (an unknown key is an error naming
// it and the known ones), so that a typo never silently drops a setting; written back whole.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gantry::ctl {

// The keys a context may hold, as the flags of the same names.
struct ContextSettings {
  std::string addr;
  std::string ca;
  std::string cert;
  std::string key;
  std::string token_file;
};

struct ConfigFile {
  std::string current_context;
  std::map<std::string, ContextSettings> contexts;
};

// The keys a context may hold, in the order they are written.
const std::vector<std::string>& ContextKeys();

// Parses the text of a config file; errors are INVALID_ARGUMENT naming `path` and the key.
absl::StatusOr<ConfigFile> ParseConfigFile(const std::string& text, const std::string& path);
// Reads `path`: NOT_FOUND if it does not exist, else as ParseConfigFile.
absl::StatusOr<ConfigFile> LoadConfigFile(const std::string& path);
// The YAML text of `config`.
std::string RenderConfigFile(const ConfigFile& config);
// Writes `config` to `path` (created 0600 with its directory if missing), replacing it whole.
absl::Status SaveConfigFile(const std::string& path, const ConfigFile& config);

}  // namespace gantry::ctl
