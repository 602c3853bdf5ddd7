#include "worker/handler_frames.h"

#include <algorithm>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace gantry::worker {

absl::StatusOr<std::optional<HandlerFrameParser::Parsed>> HandlerFrameParser::Next() {
  if (!error_.ok()) return error_;
  // Drop what was parsed once it is most of the buffer: amortised O(1) per byte.
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  const absl::string_view rest = absl::string_view(buffer_).substr(start_);
  // The header's end is looked for only where it may be, so the verdict on a long header does
  // not depend on how the bytes arrived.
  const size_t eol = rest.substr(0, kMaxHeaderBytes + 1).find('\n');
  if (eol == absl::string_view::npos) {
    if (rest.size() > kMaxHeaderBytes) {
      error_ = absl::InvalidArgumentError("wrote a frame header longer than 256 bytes");
      return error_;
    }
    return std::nullopt;
  }
  const absl::string_view header = rest.substr(0, eol);
  std::vector<absl::string_view> words = absl::StrSplit(header, ' ');
  Parsed parsed{"", HandlerFrame{HandlerFrame::Kind::kEnd, "", absl::StatusCode::kOk}};
  size_t length = 0;
  if (words.size() == 3 && (words[0] == "CHUNK" || words[0] == "ERROR")) {
    if (!absl::SimpleAtoi(words[2], &length) || length > kMaxFrameBytes) {
      error_ = absl::InvalidArgumentError(absl::StrCat("wrote a bad frame length \"", words[2].substr(0, 32), "\""));
      return error_;
    }
    parsed.frame.kind = words[0] == "CHUNK" ? HandlerFrame::Kind::kChunk : HandlerFrame::Kind::kError;
    if (parsed.frame.kind == HandlerFrame::Kind::kError) parsed.frame.code = absl::StatusCode::kUnknown;
  } else if (words.size() >= 2 && words[0] == "HELLO") {
    // No id: it is about the handler, not a request.
    parsed.frame.kind = HandlerFrame::Kind::kHello;
    parsed.frame.data = std::string(header.substr(words[0].size() + 1));
    start_ += eol + 1;
    return parsed;
  } else if (!(words.size() == 2 && words[0] == "END")) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("wrote something that is not a frame: \"", header.substr(0, 64), "\""));
    return error_;
  }
  if (rest.size() < eol + 1 + length) return std::nullopt;  // The body is still coming.
  parsed.id = std::string(words[1]);
  parsed.frame.data = std::string(rest.substr(eol + 1, length));
  start_ += eol + 1 + length;
  return parsed;
}

}  // namespace gantry::worker
