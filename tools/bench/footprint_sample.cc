#include "tools/bench/footprint_sample.h"

#include <dirent.h>

#include "absl/strings/str_cat.h"
#include "tools/bench/bench_report.h"

namespace gantry::bench {
namespace {

int OpenFds(pid_t pid) {
  int n = 0;
  if (DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str())) {
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
  }
  return n - 2;  // . and ..
}

}  // namespace

FootprintSample TakeFootprint(testing::LocalFleet& fleet) {
  absl::SleepFor(absl::Milliseconds(500));
  return {fleet.ResidentKib(), OpenFds(fleet.worker().pid()), OpenFds(fleet.controller().pid())};
}

void AddFootprintPerItem(const std::string& what, const FootprintSample& before, const FootprintSample& after,
                         int k) {
  auto per = [k](int64_t a, int64_t b) { return static_cast<double>(b - a) / k; };
  Report::Global().Add({"footprint", what + ": API server RSS", "KiB", {per(before.rss.api, after.rss.api)}});
  Report::Global().Add({"footprint", what + ": controller RSS", "KiB",
                        {per(before.rss.controller, after.rss.controller)}});
  Report::Global().Add({"footprint", what + ": worker RSS", "KiB", {per(before.rss.worker, after.rss.worker)}});
  Report::Global().Add({"footprint", what + ": worker fds", "fds", {per(before.worker_fds, after.worker_fds)}});
  Report::Global().Add({"footprint", what + ": controller fds", "fds",
                        {per(before.controller_fds, after.controller_fds)}});
}

void AddThreadsOverIdle(const std::string& scenario, const std::string& what, const testing::LocalFleet::Threads& idle,
                        const testing::LocalFleet::Threads& with) {
  auto add = [&](const char* process, int before, int after) {
    Figure threads{scenario, absl::StrCat(process, " threads with ", what, ", over idle"), "threads",
                   {static_cast<double>(after - before)}};
    threads.target = Target::AtMost(8);
    Report::Global().Add(threads);
  };
  add("API server", idle.api, with.api);
  add("controller", idle.controller, with.controller);
  add("worker", idle.worker, with.worker);
}

}  // namespace gantry::bench
