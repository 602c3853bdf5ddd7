// The OpenAI-compatible door's translation, both ways, with nothing but data: a client's JSON
// request to the model handler's request (docs/invoke-protocol.md, "Model handlers"), a
// handler's chunks to tokens, and tokens to OpenAI's response shapes. Pure and unit-tested;
// the connections that use it are in http_connection.h and websocket_session.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gantry/v1/invoke_service.pb.h"

namespace gantry::api::http {

enum class GenerateKind { kChat, kCompletion };

// A generation request as the gateway understood it.
struct GenerateRequest {
  GenerateKind kind = GenerateKind::kChat;
  std::string model;    // As named, without "@range": the capability is "model/<model>".
  std::string version;  // The range after '@'; empty for any.
  bool stream = false;
  bool include_usage = false;
  int64_t max_tokens = 0;  // 0: the handler's own limit. Else the gateway stops at it too.
  std::string payload;     // The handler's request (JSON).
};

// POST /v1/chat/completions and /v1/completions bodies. INVALID_ARGUMENT names the field.
absl::StatusOr<GenerateRequest> ParseOpenAiRequest(GenerateKind kind, absl::string_view body);
// The WebSocket's {"type":"inference","data":{"model","prompt" or "messages","maxTokens"}}.
absl::StatusOr<GenerateRequest> ParseWebSocketInference(absl::string_view message);

v1::InvokeRequest ToInvokeRequest(const GenerateRequest& request);

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// One chunk of a model handler's output: a token, or how the answer ended, or both.
struct HandlerEvent {
  std::optional<std::string> token;
  std::optional<std::string> finish_reason;  // "stop" or "length".
  std::optional<int64_t> prompt_tokens;      // From the handler's usage record.
};
// FAILED_PRECONDITION saying what is wrong: the handler broke the protocol.
absl::StatusOr<HandlerEvent> ParseHandlerChunk(absl::string_view chunk);

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
