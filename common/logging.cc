#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace gantry {

absl::Status InitLogging(const std::string& component, const std::string& format,
                         const std::string& level) {
  auto logger = spdlog::stderr_logger_mt(component);
  if (format == "json") {
    // Messages are written by our code and never contain raw user bytes unescaped: callers
    // quote user-provided values with absl::CEscape before logging them.
    logger->set_pattern(absl::StrCat(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":")",
                                     component, R"(","thread":%t,"msg":"%v"})"),
                        spdlog::pattern_time_type::utc);
  } else if (format == "text") {
    logger->set_pattern(absl::StrCat("%Y-%m-%dT%H:%M:%S.%e %^%L%$ ", component, " %v"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("log format \"", format, "\" is not text or json"));
  }
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("log level \"", level, "\" is not trace, debug, info, warn or error"));
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace gantry
