#include "common/metrics.h"

#include <catch2/catch.hpp>

namespace gantry {

TEST_CASE("metrics render in the Prometheus text format", "[metrics]") {
  Metrics m;
  m.CounterAdd("requests_total", "Requests", {{"capability", "a\"b\\c"}, {"code", "OK"}});
  m.CounterAdd("requests_total", "Requests", {{"capability", "a\"b\\c"}, {"code", "OK"}}, 2);
  m.GaugeAdd("in_flight", "In flight", {}, 3);
  m.GaugeAdd("in_flight", "In flight", {}, -1);
  m.Observe("latency_seconds", "Latency", {{"capability", "x"}}, 0.003);
  m.Observe("latency_seconds", "Latency", {{"capability", "x"}}, 20);
  std::string text = m.Render();
  INFO(text);
  CHECK(text.find("# TYPE requests_total counter\n") != std::string::npos);
  CHECK(text.find("requests_total{capability=\"a\\\"b\\\\c\",code=\"OK\"} 3\n") != std::string::npos);
  CHECK(text.find("# TYPE in_flight gauge\nin_flight 2\n") != std::string::npos);
  CHECK(text.find("latency_seconds_bucket{capability=\"x\",le=\"0.0025\"} 0\n") != std::string::npos);
  CHECK(text.find("latency_seconds_bucket{capability=\"x\",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(text.find("latency_seconds_bucket{capability=\"x\",le=\"10\"} 1\n") != std::string::npos);
  CHECK(text.find("latency_seconds_bucket{capability=\"x\",le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(text.find("latency_seconds_count{capability=\"x\"} 2\n") != std::string::npos);
  CHECK(text.find("latency_seconds_sum{capability=\"x\"} 20.003\n") != std::string::npos);
}

TEST_CASE("fine histograms resolve microseconds and the milliseconds of a loaded node's tail", "[metrics]") {
  Metrics m;
  m.Observe("decision_seconds", "Decision", {}, 3e-6, /*fine=*/true);
  m.Observe("decision_seconds", "Decision", {}, 0.003, /*fine=*/true);
  m.Observe("decision_seconds", "Decision", {}, 0.04, /*fine=*/true);
  const std::string text = m.Render();
  INFO(text);
  CHECK(text.find("decision_seconds_bucket{le=\"2.5e-06\"} 0\n") != std::string::npos);
  CHECK(text.find("decision_seconds_bucket{le=\"5e-06\"} 1\n") != std::string::npos);
  // Between 1 and 10 ms: a 3 ms decision is told from a 9 ms one.
  CHECK(text.find("decision_seconds_bucket{le=\"0.0025\"} 1\n") != std::string::npos);
  CHECK(text.find("decision_seconds_bucket{le=\"0.005\"} 2\n") != std::string::npos);
  CHECK(text.find("decision_seconds_bucket{le=\"0.025\"} 2\n") != std::string::npos);
  CHECK(text.find("decision_seconds_bucket{le=\"0.1\"} 3\n") != std::string::npos);
}

TEST_CASE("metric values are printed exactly: counters past a million, and doubles that read back the same",
          "[metrics]") {
  Metrics m;
  m.CounterAdd("bytes_total", "Bytes", {}, 12345678901.0);
  m.CounterAdd("events_total", "Events", {}, 10000001);
  m.CounterAdd("events_total", "Events", {}, 1);
  m.GaugeAdd("ratio", "Ratio", {}, 0.1 + 0.2);
  const std::string text = m.Render();
  INFO(text);
  CHECK(text.find("bytes_total 12345678901\n") != std::string::npos);
  CHECK(text.find("events_total 10000002\n") != std::string::npos);
  CHECK(text.find("ratio 0.30000000000000004\n") != std::string::npos);
  CHECK(text.find("e+") == std::string::npos);

  CHECK(FormatMetricValue(0) == "0");
  CHECK(FormatMetricValue(-3) == "-3");
  CHECK(FormatMetricValue(9007199254740991.0) == "9007199254740991");
  CHECK(std::stod(FormatMetricValue(1e300)) == 1e300);
  CHECK(FormatMetricValue(2.5e-6) == "2.5e-06");
  CHECK(FormatMetricValue(1.0 / 0.0) == "+Inf");
  CHECK(FormatMetricValue(-1.0 / 0.0) == "-Inf");
  CHECK(FormatMetricValue(0.0 / 0.0) == "NaN");
}

}  // namespace gantry
