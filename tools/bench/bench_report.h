// What gantry-bench measures and prints: each figure is the median of its rounds with their
// spread, beside the baseline measured in the same run and their ratio, and the target it is
// held to (met or missed, by how much). Latencies are summarised HDR-style (p50, p90, p99,
// p99.9, max) from every sample, warm-up excluded by the caller.
#pragma once

#include <string>
#include <vector>

namespace gantry::bench {

struct Latencies {
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  size_t count = 0;
};
// Summarises samples (any unit; sorted in place).
Latencies Summarise(std::vector<double>* samples);
double Median(std::vector<double> values);

// A target: the value (or its ratio to the baseline) at least / at most `threshold`.
struct Target {
  enum Kind { kNone, kAtLeast, kAtMost } kind = kNone;
  bool on_ratio = false;
  double threshold = 0;
  static Target AtLeast(double t, bool on_ratio = false) { return {kAtLeast, on_ratio, t}; }
  static Target AtMost(double t, bool on_ratio = false) { return {kAtMost, on_ratio, t}; }
};

struct Figure {
  Figure(std::string scenario_, std::string name_, std::string unit_, std::vector<double> rounds_ = {})
      : scenario(std::move(scenario_)), name(std::move(name_)), unit(std::move(unit_)), rounds(std::move(rounds_)) {}
  std::string scenario;
  std::string name;
  std::string unit;
  std::vector<double> rounds;           // the figure, once per round
  std::vector<double> baseline_rounds;  // empty: no baseline
  Target target;
  std::string note;
};

class Report {
 public:
  static Report& Global();
  void Add(Figure figure);
  void Note(const std::string& scenario, const std::string& text);
  // The table on stdout; the raw figures as JSON in `path`.
  void Print() const;
  bool WriteJson(const std::string& path, const std::string& machine) const;

 private:
  std::vector<Figure> figures_;
  std::vector<std::pair<std::string, std::string>> notes_;
};

}  // namespace gantry::bench
