// The frames a persistent handler writes, as worker/persistent_handler.cc reads them: the same
// frames (or the same error) however the bytes are split, never a frame over the limit, and
// never more bytes out than in.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "worker/handler_frames.h"

namespace {

using gantry::worker::HandlerFrameParser;

struct Outcome {
  std::vector<std::string> frames;  // kind, id and data of each
  std::string error;
  bool operator==(const Outcome& o) const { return frames == o.frames && error == o.error; }
};

Outcome Parse(const std::string& input, const std::vector<size_t>& cuts) {
  HandlerFrameParser parser;
  Outcome out;
  size_t at = 0, data_bytes = 0;
  auto drain = [&] {
    for (;;) {
      auto next = parser.Next();
      if (!next.ok()) {
        out.error = std::string(next.status().message());
        return false;
      }
      if (!next->has_value()) return true;
      const auto& p = **next;
      FUZZ_CHECK(p.frame.data.size() <= HandlerFrameParser::kMaxFrameBytes);
      data_bytes += p.frame.data.size() + p.id.size();
      out.frames.push_back(std::to_string(static_cast<int>(p.frame.kind)) + "|" + p.id + "|" + p.frame.data);
    }
  };
  for (size_t cut : cuts) {
    cut = std::min(std::max(cut, at), input.size());
    parser.Append(input.data() + at, cut - at);
    at = cut;
    if (!drain()) return out;
  }
  parser.Append(input.data() + at, input.size() - at);
  drain();
  FUZZ_CHECK(data_bytes <= input.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // The first two bytes choose where the input is split; the rest is the handler's output.
  const size_t a = data[0], b = data[1];
  const std::string input(reinterpret_cast<const char*>(data + 2), size - 2);
  Outcome whole = Parse(input, {});
  Outcome split = Parse(input, {a, a + b});
  Outcome bytewise = Parse(input, [&] {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size() && i < 512; ++i) cuts.push_back(i);
    return cuts;
  }());
  FUZZ_CHECK(whole == split);
  if (input.size() < 512) FUZZ_CHECK(whole == bytewise);
  return 0;
}
