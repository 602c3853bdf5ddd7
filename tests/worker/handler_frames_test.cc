#include "worker/handler_frames.h"

#include <catch2/catch.hpp>

namespace gantry::worker {
namespace {

// Every frame `input` holds when it arrives in pieces of `piece` bytes, as "<kind> <id> <data>".
std::vector<std::string> ParseInPieces(const std::string& input, size_t piece, std::string* error) {
  HandlerFrameParser parser;
  std::vector<std::string> out;
  for (size_t at = 0; at < input.size(); at += piece) {
    parser.Append(input.data() + at, std::min(piece, input.size() - at));
    for (;;) {
      auto next = parser.Next();
      if (!next.ok()) {
        *error = std::string(next.status().message());
        return out;
      }
      if (!next->has_value()) break;
      const auto& p = **next;
      const char* kind = p.frame.kind == HandlerFrame::Kind::kChunk   ? "CHUNK"
                         : p.frame.kind == HandlerFrame::Kind::kEnd   ? "END"
                         : p.frame.kind == HandlerFrame::Kind::kHello ? "HELLO"
                                                                       : "ERROR";
      out.push_back(std::string(kind) + " " + p.id + " " + p.frame.data);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("handler frames parse the same however the bytes arrive", "[worker][invoke]") {
  const std::string input = "HELLO pause future\nCHUNK a 5\nhel\nlCHUNK b 0\nEND b\nERROR a 4\nboomCHUNK c 3\nxyz";
  const std::vector<std::string> expected = {"HELLO  pause future", "CHUNK a hel\nl", "CHUNK b ", "END b ",
                                             "ERROR a boom", "CHUNK c xyz"};
  for (size_t piece = 1; piece <= input.size(); ++piece) {
    std::string error;
    INFO("pieces of " << piece);
    CHECK(ParseInPieces(input, piece, &error) == expected);
    CHECK(error.empty());
  }
}

TEST_CASE("handler frames: what is not a frame ends the stream, saying what it was", "[worker][invoke]") {
  struct Case {
    std::string input, error;
  };
  for (const Case& c : std::vector<Case>{
           {"hello world\n", "wrote something that is not a frame: \"hello world\""},
           {"CHUNK a\n", "wrote something that is not a frame: \"CHUNK a\""},
           {"END a b\n", "wrote something that is not a frame: \"END a b\""},
           {"HELLO\n", "wrote something that is not a frame: \"HELLO\""},
           {"CHUNK a -1\n", "wrote a bad frame length \"-1\""},
           {"CHUNK a 16777217\n", "wrote a bad frame length \"16777217\""},
           {"CHUNK a 1x\n", "wrote a bad frame length \"1x\""},
           {std::string(257, 'C'), "wrote a frame header longer than 256 bytes"},
           // Found by fuzzing: a long header with its newline in the same read got through.
           {"END " + std::string(300, 'x') + "\n", "wrote a frame header longer than 256 bytes"},
       }) {
    std::string error;
    CHECK(ParseInPieces("END ok\n" + c.input, 7, &error) == std::vector<std::string>{"END ok "});
    CHECK(error == c.error);
  }
  // A length at the limit is a frame, still waiting for its body.
  HandlerFrameParser parser;
  std::string header = "CHUNK big 16777216\n";
  parser.Append(header.data(), header.size());
  auto next = parser.Next();
  REQUIRE(next.ok());
  CHECK_FALSE(next->has_value());
  CHECK(parser.buffered() == header.size());
}

}  // namespace gantry::worker
