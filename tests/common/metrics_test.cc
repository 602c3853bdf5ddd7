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

}  // namespace gantry
