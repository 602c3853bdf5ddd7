/* A stand-in for libnvidia-ml.so.1 with two GPUs, so the worker's real NVML path (dlopen, the
 * C ABI, discovery, per-process memory) is tested on machines without a GPU. Process memory:
 * every pid listed in FAKE_NVML_PIDS (comma-separated) uses 123 MiB on GPU 0. */
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st* nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

static int initialised = 0;
static struct nvmlDevice_st { int index; } devices[2] = {{0}, {1}};
static const char* names[2] = {"Fake NVML GPU A", "Fake NVML GPU B"};
static const char* uuids[2] = {"GPU-fa4e0000-0000-0000-0000-00000000000a",
                               "GPU-fa4e0000-0000-0000-0000-00000000000b"};

nvmlReturn_t nvmlInit_v2(void) { initialised = 1; return 0; }
nvmlReturn_t nvmlShutdown(void) { initialised = 0; return 0; }
const char* nvmlErrorString(nvmlReturn_t r) { return r == 0 ? "Success" : "Fake error"; }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) { *n = 2; return initialised ? 0 : 1; }
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d) {
  if (i > 1) return 2;
  *d = &devices[i];
  return 0;
}
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* out, unsigned int len) {
  strncpy(out, names[d->index], len);
  return 0;
}
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* out, unsigned int len) {
  strncpy(out, uuids[d->index], len);
  return 0;
}
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  m->total = (d->index + 1) * 8ULL << 30;
  m->used = 1ULL << 30;
  m->free = m->total - m->used;
  return 0;
}
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* u) {
  u->gpu = 40 + d->index;
  u->memory = 10;
  return 0;
}
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* t) { *t = 55; return 0; }
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* mw) { *mw = 150000; return 0; }
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  unsigned int n = 0;
  const char* pids = getenv("FAKE_NVML_PIDS");
  if (d->index == 0 && pids != NULL) {
    char* copy = strdup(pids);
    for (char* tok = strtok(copy, ","); tok != NULL; tok = strtok(NULL, ",")) {
      if (n < *count) {
        infos[n].pid = (unsigned int)atoi(tok);
        infos[n].usedGpuMemory = 123ULL << 20;
      }
      ++n;
    }
    free(copy);
  }
  if (n > *count) { *count = n; return 7; /* NVML_ERROR_INSUFFICIENT_SIZE */ }
  *count = n;
  return 0;
}
