// A worker's --capabilities file: whatever parses names valid capabilities, at versions that
// parse, with a command to run.
#include <cstddef>
#include <cstdint>

#include "common/invoke_request.h"
#include "common/semver.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/capability_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = gantry::worker::ParseCapabilities(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  for (const auto& c : *parsed) {
    FUZZ_CHECK(gantry::IsValidCapabilityName(c.name));
    FUZZ_CHECK(gantry::ParseSemVer(c.version).ok());
    FUZZ_CHECK(!c.command.empty());
  }
  return 0;
}
