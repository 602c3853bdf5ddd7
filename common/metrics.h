// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format for /metrics (see metrics_server.h). Thread-safe; cheap enough for a
// per-request call (one mutex, one map lookup).
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace gantry {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // The process's registry.
  static Metrics& Global();

  void CounterAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta = 1);
  void GaugeAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta);
  // Latency histograms in seconds, buckets from 1 ms to 10 s.
  void Observe(const std::string& name, const std::string& help, const MetricLabels& labels, double seconds);

  std::string Render() const;

 private:
  enum class Kind { kCounter, kGauge, kHistogram };
  struct Series {
    double value = 0;                 // Counter, gauge; histogram sum.
    std::vector<uint64_t> buckets;    // Histogram: cumulative counts per bound.
    uint64_t count = 0;
  };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, Series> series;  // By rendered label set.
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry
