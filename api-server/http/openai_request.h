// The OpenAI-compatible door's requests, as data: a client's JSON request (OpenAI's, or the
// WebSocket protocol's) to the model handler's request (docs/invoke-protocol.md, "Model
// handlers"), and a handler's chunk back to a token. Pure and unit-tested; openai_response.h
// writes the answers, http_connection.h and websocket_session.h use both.
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

// One chunk of a model handler's output: a token, or how the answer ended, or both.
struct HandlerEvent {
  std::optional<std::string> token;
  std::optional<std::string> finish_reason;  // "stop" or "length".
  std::optional<int64_t> prompt_tokens;      // From the handler's usage record.
};
// FAILED_PRECONDITION saying what is wrong: the handler broke the protocol.
absl::StatusOr<HandlerEvent> ParseHandlerChunk(absl::string_view chunk);

}  // namespace gantry::api::http
