#include "api-server/http/openai_response.h"

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api-server/http/json_text.h"

namespace gantry::api::http {
namespace json = boost::json;
namespace {

constexpr absl::string_view kModelPrefix = "model/";

std::string Event(const json::object& o) { return absl::StrCat("data: ", json::serialize(o), "\n\n"); }

json::object Head(const ResponseHead& head, absl::string_view object) {
  return json::object{{"id", head.id}, {"object", J(object)}, {"created", head.created}, {"model", head.model}};
}

json::object UsageObject(const Usage& usage) {
  return json::object{{"prompt_tokens", usage.prompt_tokens},
                      {"completion_tokens", usage.completion_tokens},
                      {"total_tokens", usage.prompt_tokens + usage.completion_tokens}};
}

}  // namespace

ResponseHead MakeResponseHead(const GenerateRequest& request, const std::string& request_id, int64_t created) {
  bool chat = request.kind == GenerateKind::kChat;
  return {request.kind, absl::StrCat(chat ? "chatcmpl-" : "cmpl-", request_id), request.model, created};
}

std::string TokenEvent(const ResponseHead& head, absl::string_view token, bool first) {
  json::object choice{{"index", 0}, {"finish_reason", nullptr}};
  if (head.kind == GenerateKind::kChat) {
    json::object delta{{"content", J(token)}};
    if (first) delta["role"] = "assistant";
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = J(token);
    choice["logprobs"] = nullptr;
  }
  json::object o = Head(head, head.kind == GenerateKind::kChat ? "chat.completion.chunk" : "text_completion");
  o["choices"] = json::array{std::move(choice)};
  return Event(o);
}

std::string FinishEvent(const ResponseHead& head, absl::string_view finish_reason) {
  json::object choice{{"index", 0}, {"finish_reason", J(finish_reason)}};
  if (head.kind == GenerateKind::kChat) {
    choice["delta"] = json::object{};
  } else {
    choice["text"] = "";
    choice["logprobs"] = nullptr;
  }
  json::object o = Head(head, head.kind == GenerateKind::kChat ? "chat.completion.chunk" : "text_completion");
  o["choices"] = json::array{std::move(choice)};
  return Event(o);
}

std::string UsageEvent(const ResponseHead& head, const Usage& usage) {
  json::object o = Head(head, head.kind == GenerateKind::kChat ? "chat.completion.chunk" : "text_completion");
  o["choices"] = json::array{};
  o["usage"] = UsageObject(usage);
  return Event(o);
}

std::string ErrorEvent(int http_status, const absl::Status& status) {
  return absl::StrCat("data: ", ErrorBody(http_status, status), "\n\n");
}

std::string CompletionBody(const ResponseHead& head, absl::string_view text, absl::string_view finish_reason,
                           const Usage& usage) {
  json::object choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", J(finish_reason)}};
  if (head.kind == GenerateKind::kChat) {
    choice["message"] = json::object{{"role", "assistant"}, {"content", J(text)}};
  } else {
    choice["text"] = J(text);
  }
  json::object o = Head(head, head.kind == GenerateKind::kChat ? "chat.completion" : "text_completion");
  o["choices"] = json::array{std::move(choice)};
  o["usage"] = UsageObject(usage);
  return json::serialize(o);
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kCancelled: return 499;
    case absl::StatusCode::kFailedPrecondition: return 502;  // The handler broke the protocol.
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

std::string ErrorBody(int http_status, const absl::Status& status) {
  absl::string_view type = "api_error", code = "internal_error";
  switch (http_status) {
    case 400: type = "invalid_request_error"; code = "invalid_request"; break;
    case 401: type = "authentication_error"; code = "invalid_api_key"; break;
    case 403: type = "permission_error"; code = "permission_denied"; break;
    case 404: type = "invalid_request_error"; code = "model_not_found"; break;
    case 429: type = "rate_limit_error"; code = "rate_limit_exceeded"; break;
    case 502: type = "api_error"; code = "bad_model_output"; break;
    case 503: type = "api_error"; code = "no_worker_available"; break;
    case 504: type = "timeout_error"; code = "deadline_exceeded"; break;
    default: break;
  }
  json::object error{{"message", J(status.message())}, {"type", J(type)}, {"param", nullptr}, {"code", J(code)}};
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    // Our messages begin with the field ("messages[0].role: ..."): OpenAI's param.
    absl::string_view message = status.message();
    if (size_t colon = message.find(": "); colon != absl::string_view::npos && message.find(' ') > colon) {
      error["param"] = J(message.substr(0, colon));
    }
  }
  return json::serialize(json::object{{"error", std::move(error)}});
}

std::string ModelsBody(const v1::ListCapabilitiesResponse& served) {
  json::array data;
  for (const v1::ServedCapability& c : served.capabilities()) {
    if (!absl::StartsWith(c.name(), kModelPrefix)) continue;
    json::array versions;
    for (const std::string& v : c.versions()) versions.push_back(json::string(v));
    data.push_back(json::object{{"id", c.name().substr(kModelPrefix.size())},
                                {"object", "model"},
                                {"created", 0},
                                {"owned_by", "gantry"},
                                {"versions", std::move(versions)},
                                {"controllers", c.controllers()}});
  }
  return json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}});
}

std::string WebSocketToken(absl::string_view token, int64_t index) {
  return json::serialize(json::object{{"type", "token"}, {"data", json::object{{"token", J(token)}, {"index", index}}}});
}

std::string WebSocketDone(int64_t total_tokens, int64_t latency_ms) {
  return json::serialize(json::object{
      {"type", "done"}, {"data", json::object{{"totalTokens", total_tokens}, {"latencyMs", latency_ms}}}});
}

std::string WebSocketError(int http_status, const absl::Status& status) {
  return json::serialize(json::object{
      {"type", "error"},
      {"data", json::object{{"message", J(status.message())}, {"status", http_status}}}});
}

}  // namespace gantry::api::http
