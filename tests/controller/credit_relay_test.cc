#include "controller/credit_relay.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

namespace gantry::controller {
namespace {

// What a sink was told, in order.
struct Told {
  std::vector<std::string> chunks;
  std::vector<absl::Status> failures;
};

std::shared_ptr<const InvokeRelay::Sink> SinkInto(Told* told) {
  auto sink = std::make_shared<InvokeRelay::Sink>();
  sink->on_item = [told](v1::WorkerInvokeOutput output) { told->chunks.push_back(output.chunk().data()); };
  sink->on_failure = [told](const absl::Status& status) { told->failures.push_back(status); };
  return sink;
}

v1::WorkerInvokeOutput Chunk(const std::string& id, size_t bytes) {
  v1::WorkerInvokeOutput output;
  output.set_invoke_id(id);
  output.mutable_chunk()->set_data(std::string(bytes, 'x'));
  return output;
}

v1::WorkerInvokeOutput Error(const std::string& id) {
  v1::WorkerInvokeOutput output;
  output.set_invoke_id(id);
  output.set_error_code(13);
  output.set_error_message("handler failed");
  return output;
}

}  // namespace

TEST_CASE("credit relay: a worker may send its window of chunks and one final item, and no more",
          "[controller][relay]") {
  InvokeRelay relay("invoke", 3);
  Told told;
  const std::string id = relay.OpenWithSink("w1", SinkInto(&told));
  for (int i = 0; i < 3; ++i) relay.Deliver("w1", Chunk(id, 10));
  relay.Deliver("w1", Error(id));  // The final item needs no credit.
  CHECK(told.chunks.size() == 4);
  CHECK(told.failures.empty());
  relay.Deliver("w1", Chunk(id, 10));
  REQUIRE(told.failures.size() == 1);
  CHECK(told.failures[0].code() == absl::StatusCode::kResourceExhausted);
  CHECK(told.chunks.size() == 4);
  relay.Deliver("w1", Chunk(id, 10));  // A failed stream hears nothing more.
  CHECK(told.failures.size() == 1);
  CHECK(told.chunks.size() == 4);
}

TEST_CASE("credit relay: credit handed back lets the worker send as much more", "[controller][relay]") {
  InvokeRelay relay("invoke", 2);
  Told told;
  const std::string id = relay.OpenWithSink("w1", SinkInto(&told));
  for (int round = 0; round < 10; ++round) {
    relay.Deliver("w1", Chunk(id, 10));
    relay.Deliver("w1", Chunk(id, 10));
    relay.Credit(id, 2, 0);
  }
  CHECK(told.chunks.size() == 20);
  CHECK(told.failures.empty());
}

TEST_CASE("credit relay: counted in bytes, a chunk may start while any byte of the window is left, none after",
          "[controller][relay]") {
  InvokeRelay relay("invoke", 1000, 100);
  Told told;
  const std::string id = relay.OpenWithSink("w1", SinkInto(&told));
  relay.Deliver("w1", Chunk(id, 60));
  relay.Deliver("w1", Chunk(id, 60));  // 60 of 100 held: it may go, overshooting.
  CHECK(told.failures.empty());
  relay.Credit(id, 1, 60);  // 60 held: one more may go.
  relay.Deliver("w1", Chunk(id, 50));
  CHECK(told.failures.empty());
  relay.Deliver("w1", Chunk(id, 0));  // The empty last chunk spends no bytes.
  CHECK(told.failures.empty());
  relay.Deliver("w1", Chunk(id, 1));  // 110 held: spent.
  REQUIRE(told.failures.size() == 1);
  CHECK(told.failures[0].code() == absl::StatusCode::kResourceExhausted);
  CHECK(told.chunks.size() == 4);
}

TEST_CASE("credit relay: items from another worker, or for a closed stream, are dropped, and a lost worker "
          "fails only its own streams",
          "[controller][relay]") {
  InvokeRelay relay("invoke", 4);
  Told one, two;
  const std::string a = relay.OpenWithSink("w1", SinkInto(&one));
  const std::string b = relay.OpenWithSink("w2", SinkInto(&two));
  CHECK(a != b);
  relay.Deliver("w2", Chunk(a, 5));  // Not w2's stream.
  CHECK(one.chunks.empty());
  relay.WorkerLost("w1");
  REQUIRE(one.failures.size() == 1);
  CHECK(one.failures[0].code() == absl::StatusCode::kUnavailable);
  CHECK(two.failures.empty());
  relay.Close(b);
  relay.Deliver("w2", Chunk(b, 5));
  CHECK(two.chunks.empty());
  CHECK(relay.open_streams() == 1);
}

}  // namespace gantry::controller
