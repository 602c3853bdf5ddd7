// The OpenAI-compatible door's answers, as data: tokens to OpenAI's stream chunks (Server-Sent
// Events) and bodies, failures to OpenAI's error object and an HTTP status, the model list,
// and the WebSocket protocol's messages. Pure and unit-tested.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "api-server/http/openai_request.h"
#include "gantry/v1/invoke_service.pb.h"

namespace gantry::api::http {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// What every response of one request shares.
struct ResponseHead {
  GenerateKind kind = GenerateKind::kChat;
  std::string id;  // "chatcmpl-<request id>" or "cmpl-<request id>".
  std::string model;
  int64_t created = 0;  // Unix seconds.
};
ResponseHead MakeResponseHead(const GenerateRequest& request, const std::string& request_id, int64_t created);

// Server-sent events: each is "data: <json>\n\n".
std::string TokenEvent(const ResponseHead& head, absl::string_view token, bool first);
std::string FinishEvent(const ResponseHead& head, absl::string_view finish_reason);
std::string UsageEvent(const ResponseHead& head, const Usage& usage);
inline constexpr absl::string_view kDoneEvent = "data: [DONE]\n\n";
// An error after the stream began: OpenAI's error object as one event.
std::string ErrorEvent(int http_status, const absl::Status& status);

// The whole answer of a request with stream: false.
std::string CompletionBody(const ResponseHead& head, absl::string_view text, absl::string_view finish_reason,
                           const Usage& usage);

// {"error":{"message","type","param","code"}} and the HTTP status for a failure.
int HttpStatusOf(const absl::Status& status);
std::string ErrorBody(int http_status, const absl::Status& status);

// GET /v1/models from InvokeService.ListCapabilities (model/* only).
std::string ModelsBody(const v1::ListCapabilitiesResponse& served);

// The WebSocket protocol's messages.
std::string WebSocketToken(absl::string_view token, int64_t index);
std::string WebSocketDone(int64_t total_tokens, int64_t latency_ms);
std::string WebSocketError(int http_status, const absl::Status& status);

}  // namespace gantry::api::http
