// The frames a persistent handler writes (docs/invoke-protocol.md), parsed from its output as
// it arrives, in pieces of any size:
//
//   CHUNK <id> <length>\n<bytes>      END <id>\n      ERROR <id> <length>\n<message>
//   HELLO <feature>...\n               (what it understands beyond the base protocol)
//
// Anything else (a header over 256 bytes, an unknown word, a bad or over-large length) is an
// error that ends the stream: the handler is not speaking the protocol, and nothing after it
// can be trusted.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gantry::worker {

struct HandlerFrame {
  enum class Kind { kChunk, kEnd, kError, kHello } kind;
  std::string data;  // Chunk bytes, the error message, or HELLO's features (space-separated).
  absl::StatusCode code = absl::StatusCode::kOk;  // For kError.
};

class HandlerFrameParser {
 public:
  static constexpr size_t kMaxHeaderBytes = 256;
  static constexpr size_t kMaxFrameBytes = 16 << 20;

  struct Parsed {
    std::string id;
    HandlerFrame frame;
  };

  void Append(const char* data, size_t size) { buffer_.append(data, size); }
  // The next whole frame; nullopt until more bytes arrive; INVALID_ARGUMENT saying what the
  // handler wrote when it is not a frame (and for every call after).
  absl::StatusOr<std::optional<Parsed>> Next();
  // Bytes received and not yet returned as frames.
  size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;  // Parsed frames end here; compacted now and then, not per frame.
  absl::Status error_;
};

}  // namespace gantry::worker
