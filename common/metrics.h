// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
// text exposition format for /metrics (see metrics_server.h). Thread-safe; cheap enough for a
// per-request call (one mutex, one map lookup).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace gantry {

// A sample's value in the text format: whole numbers exactly (up to 2^53), other numbers in the
// shortest form that reads back as the same double, NaN and +Inf/-Inf as Prometheus spells them.
std::string FormatMetricValue(double v);

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // The process's registry.
  static Metrics& Global();

  void CounterAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta = 1);
  void GaugeAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta);
  // Latency histograms in seconds, buckets from 1 ms to 10 s; with `fine`, from 1 µs to 100 ms
  // (for decisions made in memory). A family keeps the buckets of its first observation.
  void Observe(const std::string& name, const std::string& help, const MetricLabels& labels, double seconds,
               bool fine = false);
  // Replaces every series of gauge `name`: for figures read whole at scrape time (sessions by
  // phase), where a label set that is gone must disappear too.
  void GaugeReplace(const std::string& name, const std::string& help,
                    const std::vector<std::pair<MetricLabels, double>>& series);

  // `collect` runs at the start of every Render, outside the registry's lock (it may block, e.g.
  // on PostgreSQL, and it records through the calls above).
  void OnScrape(std::function<void()> collect);

  std::string Render();

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
    const std::vector<double>* bounds = nullptr;  // Histograms.
    std::map<std::string, Series> series;  // By rendered label set.
  };
  Family& FamilyFor(const std::string& name, const std::string& help, Kind kind) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_ ABSL_GUARDED_BY(mu_);
  std::mutex collect_mu_;  // One scrape collects at a time.
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(collect_mu_);
};

// Observes, in histogram `name`, the time from its construction to its destruction, with the
// labels as they are by then (a call sets its outcome late: labels()[0].second = "placed").
class ScopedLatency {
 public:
  ScopedLatency(std::string name, std::string help, MetricLabels labels, bool fine = false);
  ~ScopedLatency();
  ScopedLatency(const ScopedLatency&) = delete;
  ScopedLatency& operator=(const ScopedLatency&) = delete;
  MetricLabels& labels() { return labels_; }

 private:
  std::string name_;
  std::string help_;
  MetricLabels labels_;
  bool fine_;
  int64_t start_ns_;
};

}  // namespace gantry
