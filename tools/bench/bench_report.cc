#include "tools/bench/bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gantry::bench {
namespace {

double At(const std::vector<double>& sorted, double quantile) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(quantile * static_cast<double>(sorted.size()))) ;
  return sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)];
}

std::string Num(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 100) return absl::StrFormat("%.0f", v);
  if (std::fabs(v) >= 10) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.3g", v);
}

std::string Verdict(const Figure& f) {
  if (f.target.kind == Target::kNone) return "-";
  double value = Median(f.rounds);
  if (f.target.on_ratio) {
    if (f.baseline_rounds.empty() || Median(f.baseline_rounds) == 0) return "no baseline";
    value /= Median(f.baseline_rounds);
  }
  bool met = f.target.kind == Target::kAtLeast ? value >= f.target.threshold : value <= f.target.threshold;
  std::string want = absl::StrCat(f.target.kind == Target::kAtLeast ? ">= " : "<= ", Num(f.target.threshold),
                                  f.target.on_ratio ? "x" : "");
  if (met) return absl::StrCat("met (", want, ")");
  double by = f.target.kind == Target::kAtLeast ? (f.target.threshold - value) / f.target.threshold
                                                : (value - f.target.threshold) / f.target.threshold;
  return absl::StrCat("MISSED by ", absl::StrFormat("%.0f", by * 100), "% (", want, ")");
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string JsonArray(const std::vector<double>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&out, i ? "," : "", absl::StrFormat("%.6g", v[i]));
  return out + "]";
}

}  // namespace

Latencies Summarise(std::vector<double>* samples) {
  std::sort(samples->begin(), samples->end());
  Latencies l;
  l.count = samples->size();
  l.p50 = At(*samples, 0.5);
  l.p90 = At(*samples, 0.9);
  l.p99 = At(*samples, 0.99);
  l.p999 = At(*samples, 0.999);
  l.max = samples->empty() ? 0 : samples->back();
  return l;
}

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Report& Report::Global() {
  static Report report;
  return report;
}

void Report::Add(Figure figure) { figures_.push_back(std::move(figure)); }

void Report::Note(const std::string& scenario, const std::string& text) { notes_.emplace_back(scenario, text); }

void Report::Print() const {
  std::printf("\n%-18s %-44s %12s %-16s %12s %8s  %s\n", "scenario", "figure", "median", "spread", "baseline",
              "ratio", "target");
  for (const Figure& f : figures_) {
    auto [lo, hi] = std::minmax_element(f.rounds.begin(), f.rounds.end());
    std::string spread = f.rounds.size() > 1 ? absl::StrCat(Num(*lo), "..", Num(*hi)) : "";
    double base = Median(f.baseline_rounds);
    std::string baseline = f.baseline_rounds.empty() ? "" : Num(base);
    std::string ratio = f.baseline_rounds.empty() || base == 0 ? "" : absl::StrFormat("%.2fx", Median(f.rounds) / base);
    std::printf("%-18s %-44s %12s %-16s %12s %8s  %s\n", f.scenario.c_str(),
                absl::StrCat(f.name, " (", f.unit, ")").c_str(), Num(Median(f.rounds)).c_str(), spread.c_str(),
                baseline.c_str(), ratio.c_str(), Verdict(f).c_str());
  }
  for (const auto& [scenario, text] : notes_) std::printf("note %s: %s\n", scenario.c_str(), text.c_str());
  std::fflush(stdout);
}

bool Report::WriteJson(const std::string& path, const std::string& machine) const {
  std::ofstream out(path);
  out << "{\"machine\":" << JsonString(machine) << ",\"figures\":[";
  for (size_t i = 0; i < figures_.size(); ++i) {
    const Figure& f = figures_[i];
    out << (i ? "," : "") << "{\"scenario\":" << JsonString(f.scenario) << ",\"name\":" << JsonString(f.name)
        << ",\"unit\":" << JsonString(f.unit) << ",\"rounds\":" << JsonArray(f.rounds)
        << ",\"baseline_rounds\":" << JsonArray(f.baseline_rounds) << ",\"verdict\":" << JsonString(Verdict(f))
        << ",\"note\":" << JsonString(f.note) << "}";
  }
  out << "],\"notes\":[";
  for (size_t i = 0; i < notes_.size(); ++i) {
    out << (i ? "," : "") << "{\"scenario\":" << JsonString(notes_[i].first)
        << ",\"text\":" << JsonString(notes_[i].second) << "}";
  }
  out << "]}\n";
  return static_cast<bool>(out);
}

}  // namespace gantry::bench
