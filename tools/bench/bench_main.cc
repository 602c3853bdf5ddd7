// gantry-bench: Gantry measured against baselines taken in the same run on the same machine.
// Each scenario is a Catch2 test case named after it (place, spawn, failure-detection, ...), run
// against a real local fleet (PostgreSQL, gantry-api, gantry-controller, workers, all over
// mTLS) from the test harness. tools/bench.sh builds it in Release and runs it.
//
//   gantry-bench [SCENARIO...] [--quick] [--rounds N] [--json FILE.json]
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mutex_deadlock_detection.h"
#include "tools/bench/bench_options.h"
#include "tools/bench/bench_report.h"
#include "tools/bench/echo_handler.h"

namespace gantry::bench {
BenchOptions& Options() {
  static BenchOptions options;
  return options;
}
}  // namespace gantry::bench

namespace {

std::string Machine() {
  struct utsname u;
  uname(&u);
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  return absl::StrCat(cpu, ", ", sysconf(_SC_NPROCESSORS_ONLN), " cores, ",
                      sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE) / (1 << 30), " GiB, Linux ", u.release);
}

}  // namespace

int main(int argc, char** argv) {
  // As in Gantry's binaries, so the baselines built into this one (the echo relay, the hollow
  // nodes) pay for gRPC's locks what Gantry does.
  gantry::TurnOffMutexDeadlockDetection();
  // The invoke scenarios' capability handler is this binary too.
  if (argc == 2 && std::string(argv[1]) == "echo-handler") return gantry::bench::RunEchoHandler();
  Catch::Session session;
  auto& options = gantry::bench::Options();
  std::string out;
  using Catch::clara::Opt;
  session.cli(session.cli() | Opt(options.quick)["--quick"]("a few seconds per scenario (smoke run)") |
              Opt(options.rounds, "N")["--rounds"]("rounds per figure (median reported)") |
              // Not --out: that is Catch's own (its report's file), which took the name first.
              Opt(out, "FILE")["--json"]("write the raw figures as JSON here"));
  // Scenario names may come as separate words; Catch wants one comma-separated test spec.
  std::vector<std::string> args = {argv[0]};
  std::string scenarios;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--rounds" || arg == "--json") {
      args.push_back(arg);
      if (i + 1 < argc) args.push_back(argv[++i]);
    } else if (!arg.empty() && arg[0] != '-') {
      scenarios += (scenarios.empty() ? "" : ",") + arg;
    } else {
      args.push_back(arg);
    }
  }
  if (!scenarios.empty()) args.push_back(scenarios);
  std::vector<const char*> c_args;
  for (const auto& a : args) c_args.push_back(a.c_str());
  if (int rc = session.applyCommandLine(static_cast<int>(c_args.size()), c_args.data()); rc != 0) return rc;
  if (options.quick) options.rounds = 1;
  std::string machine = Machine();
  std::printf("gantry-bench on %s%s\n", machine.c_str(), options.quick ? " (quick)" : "");
  int failed = session.run();
  gantry::bench::Report::Global().Print();
  if (!out.empty() && !gantry::bench::Report::Global().WriteJson(out, machine)) {
    std::fprintf(stderr, "gantry-bench: cannot write %s\n", out.c_str());
    return 1;
  }
  return failed;
}
