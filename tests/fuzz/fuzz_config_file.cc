// The YAML --config-file every binary reads: any text gives OK or INVALID_ARGUMENT, never a
// crash or an escaped exception, and a value it accepts is one the flag parser accepts too.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string name = "default", url = "127.0.0.1:7444";
  int64_t pool = 16;
  bool flag = false;
  absl::Duration interval = absl::Seconds(5);
  gantry::Flags flags("fuzz", "config file fuzzing");
  flags.AddString("name", &name, "a string");
  flags.AddString("controller-url", &url, "another");
  flags.AddInt("db-pool-size", &pool, "an integer");
  flags.AddBool("migrate-only", &flag, "a boolean");
  flags.AddDuration("health-check-interval", &interval, "a duration");
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::Status s = flags.ApplyConfigText(text, "fuzz.yaml");
  FUZZ_CHECK(s.ok() || s.code() == absl::StatusCode::kInvalidArgument);
  return 0;
}
