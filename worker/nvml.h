// NVIDIA's management library, loaded at run time with dlopen("libnvidia-ml.so.1") so the
// build needs no NVIDIA package and a worker without GPUs runs unchanged. Only the few
// functions Gantry uses are declared (C ABI, as documented in nvml.h).
//
// Thread-safe after Load (NVML itself is thread-safe).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gantry/v1/types.pb.h"

namespace gantry::worker {

class Nvml {
 public:
  // Loads the library and initialises NVML. NOT_FOUND when the library is absent (no driver),
  // UNAVAILABLE when it loads but NVML cannot start.
  static absl::StatusOr<std::unique_ptr<Nvml>> Load(const std::string& library = "libnvidia-ml.so.1");
  ~Nvml();

  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // Every GPU: name, UUID, index, total/free memory, utilisation, temperature, power.
  absl::StatusOr<std::vector<v1::GpuInfo>> Devices();
  // GPU memory used by each process on any GPU (pid -> bytes).
  std::map<pid_t, int64_t> ProcessMemory();

  struct Api;

 private:
  explicit Nvml(void* handle, std::unique_ptr<Api> api);
  void* handle_;
  std::unique_ptr<Api> api_;
};

}  // namespace gantry::worker
