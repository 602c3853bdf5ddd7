#include "tools/bench/load.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"

namespace gantry::bench {
namespace {

LoadResult Run(int n, int concurrency, const std::function<absl::Time(int)>& start_of,
               const std::function<bool(int)>& call) {
  LoadResult result;
  std::mutex mu;
  std::atomic<int> next{0};
  absl::Time begin = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      int failures = 0;
      for (int i = next++; i < n; i = next++) {
        absl::Time start = start_of(i);
        if (absl::Now() < start) absl::SleepFor(start - absl::Now());
        bool ok = call(i);
        double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
        if (ok) {
          mine.push_back(ms);
        } else {
          ++failures;
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      result.latency_ms.insert(result.latency_ms.end(), mine.begin(), mine.end());
      result.failures += failures;
    });
  }
  for (auto& t : threads) t.join();
  result.seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  return result;
}

}  // namespace

LoadResult ClosedLoop(int n, int concurrency, const std::function<bool(int)>& call) {
  return Run(n, concurrency, [](int) { return absl::Now(); }, call);
}

LoadResult OpenLoop(int n, double rate_per_second, int concurrency, const std::function<bool(int)>& call) {
  absl::Time begin = absl::Now();
  return Run(n, concurrency, [begin, rate_per_second](int i) { return begin + absl::Seconds(i / rate_per_second); },
             call);
}

}  // namespace gantry::bench
