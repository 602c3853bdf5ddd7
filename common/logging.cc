#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/request_ids.h"

namespace gantry {
namespace {

// The message with quotes, backslashes and control bytes escaped, so that a message carrying a
// caller's input can never break its log line: as the body of a JSON string (\u00XX) in JSON
// logs, C-style (\n, \xXX) in text logs, where it can neither start a line of its own nor close
// a quote it sits in. Every line in the log is one line the daemon wrote.
template <bool kJson>
class EscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : msg.payload) {
      auto u = static_cast<unsigned char>(c);
      const char* named = kJson ? nullptr : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : nullptr;
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (named != nullptr) {
        dest.append(named, named + 2);
      } else if (kJson && u < 0x20) {
        const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        dest.append(esc, esc + sizeof(esc));
      } else if (!kJson && (u < 0x20 || u == 0x7f)) {
        const char esc[] = {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
        dest.append(esc, esc + sizeof(esc));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

// The ids of the request being served on this thread (request_ids.h).
// %Q, text: " [request=… session=…]"; %K, JSON: ,"request_id":"…","session_id":"…".
template <bool kJson>
class RequestIdsFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    const RequestIds* ids = CurrentRequestIds();
    if (ids == nullptr) return;
    std::string text;
    for (const auto& [name, value] : {std::pair<const char*, const std::string*>{"request", &ids->request},
                                      {"session", &ids->session},
                                      {"controller", &ids->controller},
                                      {"worker", &ids->worker}}) {
      if (value->empty()) continue;
      // Ids are checked when noted (request_ids.cc): no quotes or control bytes to escape.
      if (kJson) {
        absl::StrAppend(&text, ",\"", name, "_id\":\"", *value, "\"");
      } else {
        absl::StrAppend(&text, text.empty() ? " [" : " ", name, "=", *value);
      }
    }
    if (!kJson && !text.empty()) text += "]";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<RequestIdsFlag>(); }
};

}  // namespace

absl::Status InitLogging(const std::string& component, const std::string& format,
                         const std::string& level) {
  auto logger = spdlog::stderr_logger_mt(component);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<EscapedMessage<true>>('*').add_flag<RequestIdsFlag<true>>('K').set_pattern(
        absl::StrCat(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","component":")", component,
                     R"(","thread":%t,"msg":"%*"%K})"));
    logger->set_formatter(std::move(formatter));
  } else if (format == "text") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedMessage<false>>('*').add_flag<RequestIdsFlag<false>>('Q').set_pattern(
        absl::StrCat("%Y-%m-%dT%H:%M:%S.%e %^%L%$ ", component, " %*%Q"));
    logger->set_formatter(std::move(formatter));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("log format \"", format, "\" is not text or json"));
  }
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("log level \"", level, "\" is not trace, debug, info, warn or error"));
  }
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace gantry
