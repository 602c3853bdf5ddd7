#include "worker/nvml.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace gantry::worker {
namespace {

// From NVML's public header (nvml.h); the layouts are part of NVML's stable C ABI.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t NVML_SUCCESS = 0;
constexpr nvmlReturn_t NVML_ERROR_INSUFFICIENT_SIZE = 7;
constexpr int NVML_TEMPERATURE_GPU = 0;
struct nvmlMemory_t {
  unsigned long long total, free, used;
};
struct nvmlUtilization_t {
  unsigned int gpu, memory;
};
// nvmlProcessInfo_t as returned by the _v2 and _v3 process queries.
struct nvmlProcessInfo_t {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

}  // namespace

struct Nvml::Api {
  nvmlReturn_t (*Init)();
  nvmlReturn_t (*Shutdown)();
  const char* (*ErrorString)(nvmlReturn_t);
  nvmlReturn_t (*DeviceGetCount)(unsigned int*);
  nvmlReturn_t (*DeviceGetHandleByIndex)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*DeviceGetName)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*DeviceGetUUID)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*DeviceGetMemoryInfo)(nvmlDevice_t, nvmlMemory_t*);
  // Optional: absent or failing ones leave their fields zero.
  nvmlReturn_t (*DeviceGetUtilizationRates)(nvmlDevice_t, nvmlUtilization_t*);
  nvmlReturn_t (*DeviceGetTemperature)(nvmlDevice_t, int, unsigned int*);
  nvmlReturn_t (*DeviceGetPowerUsage)(nvmlDevice_t, unsigned int*);
  nvmlReturn_t (*DeviceGetComputeRunningProcesses)(nvmlDevice_t, unsigned int*, nvmlProcessInfo_t*);

  std::string Error(nvmlReturn_t r) const {
    return ErrorString != nullptr ? ErrorString(r) : absl::StrCat("NVML error ", r);
  }
};

namespace {

template <typename F>
bool Bind(void* handle, const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(handle, name));
  return *out != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Nvml>> Nvml::Load(const std::string& library) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot load ", library, ": ", dlerror()));
  }
  auto api = std::make_unique<Api>();
  bool ok = Bind(handle, "nvmlInit_v2", &api->Init) && Bind(handle, "nvmlShutdown", &api->Shutdown) &&
            Bind(handle, "nvmlDeviceGetCount_v2", &api->DeviceGetCount) &&
            Bind(handle, "nvmlDeviceGetHandleByIndex_v2", &api->DeviceGetHandleByIndex) &&
            Bind(handle, "nvmlDeviceGetName", &api->DeviceGetName) &&
            Bind(handle, "nvmlDeviceGetUUID", &api->DeviceGetUUID) &&
            Bind(handle, "nvmlDeviceGetMemoryInfo", &api->DeviceGetMemoryInfo);
  Bind(handle, "nvmlErrorString", &api->ErrorString);
  Bind(handle, "nvmlDeviceGetUtilizationRates", &api->DeviceGetUtilizationRates);
  Bind(handle, "nvmlDeviceGetTemperature", &api->DeviceGetTemperature);
  Bind(handle, "nvmlDeviceGetPowerUsage", &api->DeviceGetPowerUsage);
  if (!Bind(handle, "nvmlDeviceGetComputeRunningProcesses_v3", &api->DeviceGetComputeRunningProcesses)) {
    Bind(handle, "nvmlDeviceGetComputeRunningProcesses_v2", &api->DeviceGetComputeRunningProcesses);
  }
  if (!ok) {
    dlclose(handle);
    return absl::UnavailableError(absl::StrCat(library, " lacks the NVML functions Gantry needs"));
  }
  nvmlReturn_t r = api->Init();
  if (r != NVML_SUCCESS) {
    std::string why = api->Error(r);
    dlclose(handle);
    return absl::UnavailableError(absl::StrCat("nvmlInit failed: ", why));
  }
  return std::unique_ptr<Nvml>(new Nvml(handle, std::move(api)));
}

Nvml::Nvml(void* handle, std::unique_ptr<Api> api) : handle_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->Shutdown();
  dlclose(handle_);
}

absl::StatusOr<std::vector<v1::GpuInfo>> Nvml::Devices() {
  unsigned int count = 0;
  nvmlReturn_t r = api_->DeviceGetCount(&count);
  if (r != NVML_SUCCESS) return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount: ", api_->Error(r)));
  std::vector<v1::GpuInfo> out;
  for (unsigned int i = 0; i < count && i < 64; ++i) {
    nvmlDevice_t dev = nullptr;
    r = api_->DeviceGetHandleByIndex(i, &dev);
    if (r != NVML_SUCCESS) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetHandleByIndex(", i, "): ", api_->Error(r)));
    }
    v1::GpuInfo g;
    g.set_index(static_cast<int32_t>(i));
    char text[128] = {0};
    if (api_->DeviceGetName(dev, text, sizeof(text) - 1) == NVML_SUCCESS) g.set_name(text);
    std::fill(std::begin(text), std::end(text), 0);
    r = api_->DeviceGetUUID(dev, text, sizeof(text) - 1);
    if (r != NVML_SUCCESS) return absl::UnavailableError(absl::StrCat("nvmlDeviceGetUUID: ", api_->Error(r)));
    g.set_uuid(text);
    nvmlMemory_t mem{};
    if (api_->DeviceGetMemoryInfo(dev, &mem) == NVML_SUCCESS) {
      g.set_memory_total_bytes(static_cast<int64_t>(mem.total));
      g.set_memory_free_bytes(static_cast<int64_t>(mem.free));
    }
    nvmlUtilization_t util{};
    if (api_->DeviceGetUtilizationRates != nullptr &&
        api_->DeviceGetUtilizationRates(dev, &util) == NVML_SUCCESS) {
      g.set_utilization_percent(static_cast<int32_t>(util.gpu));
    }
    unsigned int value = 0;
    if (api_->DeviceGetTemperature != nullptr &&
        api_->DeviceGetTemperature(dev, NVML_TEMPERATURE_GPU, &value) == NVML_SUCCESS) {
      g.set_temperature_celsius(static_cast<int32_t>(value));
    }
    if (api_->DeviceGetPowerUsage != nullptr && api_->DeviceGetPowerUsage(dev, &value) == NVML_SUCCESS) {
      g.set_power_milliwatts(static_cast<int32_t>(value));
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::map<pid_t, int64_t> Nvml::ProcessMemory() {
  std::map<pid_t, int64_t> out;
  if (api_->DeviceGetComputeRunningProcesses == nullptr) return out;
  unsigned int count = 0;
  if (api_->DeviceGetCount(&count) != NVML_SUCCESS) return out;
  for (unsigned int i = 0; i < count && i < 64; ++i) {
    nvmlDevice_t dev = nullptr;
    if (api_->DeviceGetHandleByIndex(i, &dev) != NVML_SUCCESS) continue;
    std::vector<nvmlProcessInfo_t> procs(64);
    unsigned int n = static_cast<unsigned int>(procs.size());
    nvmlReturn_t r = api_->DeviceGetComputeRunningProcesses(dev, &n, procs.data());
    if (r == NVML_ERROR_INSUFFICIENT_SIZE) {
      procs.resize(n + 16);
      n = static_cast<unsigned int>(procs.size());
      r = api_->DeviceGetComputeRunningProcesses(dev, &n, procs.data());
    }
    if (r != NVML_SUCCESS) continue;
    for (unsigned int k = 0; k < n && k < procs.size(); ++k) {
      out[static_cast<pid_t>(procs[k].pid)] += static_cast<int64_t>(procs[k].usedGpuMemory);
    }
  }
  return out;
}

}  // namespace gantry::worker
