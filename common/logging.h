// spdlog set-up shared by every binary: text (default) or one JSON object per line.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace gantry {

// format: "text" or "json"; level: trace, debug, info, warn, error.
absl::Status InitLogging(const std::string& component, const std::string& format,
                         const std::string& level);

}  // namespace gantry
