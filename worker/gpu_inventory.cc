#include "worker/gpu_inventory.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/tokens.h"

namespace gantry::worker {
namespace {

// GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, the shape NVIDIA uses, from a hash.
std::string StableUuid(const std::string& seed) {
  std::string h = Sha256Hex(seed);
  return absl::StrCat("GPU-", h.substr(0, 8), "-", h.substr(8, 4), "-", h.substr(12, 4), "-",
                      h.substr(16, 4), "-", h.substr(20, 12));
}

}  // namespace

absl::StatusOr<std::vector<v1::GpuInfo>> ParseSimulatedGpus(const std::string& spec,
                                                           const std::string& worker_name) {
  std::vector<v1::GpuInfo> out;
  for (absl::string_view group : absl::StrSplit(spec, ';', absl::SkipWhitespace())) {
    std::vector<std::string> parts = absl::StrSplit(group, ':');
    int count = 0;
    if (parts.size() > 3 || !absl::SimpleAtoi(parts[0], &count) || count < 0 || count > 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--simulated-gpus: \"", group, "\" is not COUNT[:MODEL[:MEMORY_GIB]] with COUNT 0..64"));
    }
    std::string model = parts.size() > 1 && !parts[1].empty() ? parts[1] : "Simulated GPU";
    double gib = 16;
    if (parts.size() > 2 && (!absl::SimpleAtod(parts[2], &gib) || gib <= 0 || gib > 4096)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--simulated-gpus: memory \"", parts[2], "\" is not a size in GiB"));
    }
    for (int i = 0; i < count; ++i) {
      v1::GpuInfo gpu;
      gpu.set_index(static_cast<int32_t>(out.size()));
      gpu.set_uuid(StableUuid(absl::StrCat("gantry-simulated/", worker_name, "/", gpu.index())));
      gpu.set_name(model);
      gpu.set_memory_total_bytes(static_cast<int64_t>(gib * 1024 * 1024 * 1024));
      gpu.set_memory_free_bytes(gpu.memory_total_bytes());
      gpu.set_simulated(true);
      out.push_back(std::move(gpu));
    }
  }
  if (out.size() > 64) return absl::InvalidArgumentError("--simulated-gpus: at most 64 GPUs");
  return out;
}

}  // namespace gantry::worker
