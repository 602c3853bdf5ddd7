#include "common/metrics.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/strings/str_join.h"

namespace gantry {
namespace {

}  // namespace

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers (every counter of events or bytes) exactly, as integers, up to 2^53, past
  // which a double holds no more of them; anything else in the shortest form that reads back
  // as the same double. (absl::StrCat keeps 6 digits: a counter past 999,999 read 1.23457e+06,
  // and rate() over it flattened, then jumped.)
  if (std::fabs(v) < 9007199254740992.0 && v == std::trunc(v)) return absl::StrCat(static_cast<int64_t>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : absl::StrCat(v);
}

namespace {

const std::vector<double> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// Down to a microsecond, and on past 1 ms: an in-memory decision on a loaded node can take
// milliseconds, and how many is what a reader of the tail needs.
const std::vector<double> kFineBounds = {1e-6,   2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4,
                                         5e-4,   1e-3,   2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1};

std::string Escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string LabelText(const MetricLabels& labels) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(absl::StrCat(k, "=\"", Escape(v), "\""));
  return absl::StrJoin(parts, ",");
}

std::string Braced(const std::string& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  return absl::StrCat("{", labels, labels.empty() || extra.empty() ? "" : ",", extra, "}");
}

}  // namespace

Metrics& Metrics::Global() {
  static Metrics* metrics = new Metrics();  // Never destroyed: used until the process exits.
  return *metrics;
}

Metrics::Family& Metrics::FamilyFor(const std::string& name, const std::string& help, Kind kind) {
  auto [it, inserted] = families_.try_emplace(name);
  if (inserted) {
    it->second.kind = kind;
    it->second.help = help;
  }
  return it->second;
}

void Metrics::CounterAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  FamilyFor(name, help, Kind::kCounter).series[LabelText(labels)].value += delta;
}

void Metrics::GaugeAdd(const std::string& name, const std::string& help, const MetricLabels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  FamilyFor(name, help, Kind::kGauge).series[LabelText(labels)].value += delta;
}

void Metrics::Observe(const std::string& name, const std::string& help, const MetricLabels& labels, double seconds,
                      bool fine) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyFor(name, help, Kind::kHistogram);
  if (family.bounds == nullptr) family.bounds = fine ? &kFineBounds : &kBounds;
  const std::vector<double>& bounds = *family.bounds;
  Series& s = family.series[LabelText(labels)];
  if (s.buckets.empty()) s.buckets.assign(bounds.size(), 0);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) ++s.buckets[i];
  }
  ++s.count;
  s.value += seconds;
}

void Metrics::GaugeReplace(const std::string& name, const std::string& help,
                           const std::vector<std::pair<MetricLabels, double>>& series) {
  std::lock_guard<std::mutex> lock(mu_);
  Family& family = FamilyFor(name, help, Kind::kGauge);
  family.series.clear();
  for (const auto& [labels, value] : series) family.series[LabelText(labels)].value = value;
}

void Metrics::OnScrape(std::function<void()> collect) {
  std::lock_guard<std::mutex> lock(collect_mu_);
  collectors_.push_back(std::move(collect));
}

std::string Metrics::Render() {
  {
    std::lock_guard<std::mutex> collecting(collect_mu_);
    for (const auto& collect : collectors_) collect();
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.kind == Kind::kCounter ? "counter" : family.kind == Kind::kGauge ? "gauge" : "histogram";
    absl::StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ", type, "\n");
    for (const auto& [labels, s] : family.series) {
      if (family.kind != Kind::kHistogram) {
        absl::StrAppend(&out, name, Braced(labels), " ", FormatMetricValue(s.value), "\n");
        continue;
      }
      for (size_t i = 0; i < family.bounds->size(); ++i) {
        absl::StrAppend(&out, name, "_bucket", Braced(labels, absl::StrCat("le=\"", FormatMetricValue((*family.bounds)[i]), "\"")), " ",
                        s.buckets[i], "\n");
      }
      absl::StrAppend(&out, name, "_bucket", Braced(labels, "le=\"+Inf\""), " ", s.count, "\n");
      absl::StrAppend(&out, name, "_sum", Braced(labels), " ", FormatMetricValue(s.value), "\n");
      absl::StrAppend(&out, name, "_count", Braced(labels), " ", s.count, "\n");
    }
  }
  return out;
}

ScopedLatency::ScopedLatency(std::string name, std::string help, MetricLabels labels, bool fine)
    : name_(std::move(name)),
      help_(std::move(help)),
      labels_(std::move(labels)),
      fine_(fine),
      start_ns_(absl::GetCurrentTimeNanos()) {}

ScopedLatency::~ScopedLatency() {
  Metrics::Global().Observe(name_, help_, labels_, static_cast<double>(absl::GetCurrentTimeNanos() - start_ns_) / 1e9,
                            fine_);
}

}  // namespace gantry
