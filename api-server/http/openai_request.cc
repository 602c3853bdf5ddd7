#include "api-server/http/openai_request.h"

#include <boost/json.hpp>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api-server/http/json_text.h"
#include "common/invoke_request.h"
#include "common/semver.h"

namespace gantry::api::http {
namespace json = boost::json;
namespace {

constexpr absl::string_view kModelPrefix = "model/";
constexpr int64_t kMaxTokensLimit = 1000000;
constexpr size_t kMaxStops = 4;
constexpr size_t kMaxUserBytes = 256;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

absl::StatusOr<json::object> ParseObject(absl::string_view text, absl::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(what, ": not JSON (", ec.message(), ")"));
  if (!v.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  return std::move(v.get_object());
}

// "name" or "name@range": the model, and the version range a client may pin.
absl::Status SetModel(const json::value* model, GenerateRequest* out) {
  if (model == nullptr) return Invalid("model", "required");
  if (!model->is_string()) return Invalid("model", "must be a string");
  std::string name = Str(model->get_string());
  if (size_t at = name.find('@'); at != std::string::npos) {
    out->version = name.substr(at + 1);
    name.resize(at);
    if (auto range = SemVerRange::Parse(out->version); !range.ok()) {
      return Invalid("model", absl::StrCat("version after '@': ", range.status().message()));
    }
  }
  if (name.empty() || !IsValidCapabilityName(absl::StrCat(kModelPrefix, name))) {
    return Invalid("model", "1..122 of [A-Za-z0-9._/-], optionally followed by @<version range>");
  }
  out->model = std::move(name);
  return absl::OkStatus();
}

// A message's content: a string, or text parts ([{"type":"text","text":...}]), joined.
absl::StatusOr<std::string> MessageContent(const json::value* content, const std::string& field) {
  if (content == nullptr || content->is_null()) return std::string();
  if (content->is_string()) return Str(content->get_string());
  if (!content->is_array()) return Invalid(field, "must be a string or an array of text parts");
  std::string text;
  for (const json::value& part : content->get_array()) {
    const json::object* p = part.if_object();
    const json::value* type = p != nullptr ? p->if_contains("type") : nullptr;
    const json::value* part_text = p != nullptr ? p->if_contains("text") : nullptr;
    if (type == nullptr || !type->is_string() || type->get_string() != "text" || part_text == nullptr ||
        !part_text->is_string()) {
      return Invalid(field, "only text parts ({\"type\":\"text\",\"text\":...}) are supported");
    }
    text += Str(part_text->get_string());
  }
  return text;
}

absl::StatusOr<json::array> Messages(const json::value* messages) {
  if (messages == nullptr) return Invalid("messages", "required");
  if (!messages->is_array() || messages->get_array().empty()) return Invalid("messages", "a non-empty array");
  json::array out;
  size_t i = 0;
  for (const json::value& m : messages->get_array()) {
    std::string field = absl::StrCat("messages[", i++, "]");
    const json::object* message = m.if_object();
    if (message == nullptr) return Invalid(field, "must be an object");
    const json::value* role = message->if_contains("role");
    if (role == nullptr || !role->is_string()) return Invalid(field + ".role", "required, a string");
    const json::string& r = role->get_string();
    if (r != "system" && r != "developer" && r != "user" && r != "assistant" && r != "tool") {
      return Invalid(field + ".role", "system, developer, user, assistant or tool");
    }
    auto content = MessageContent(message->if_contains("content"), field + ".content");
    if (!content.ok()) return content.status();
    out.push_back(json::object{{"role", r}, {"content", *content}});
  }
  return out;
}

absl::StatusOr<std::string> Prompt(const json::value* prompt) {
  if (prompt == nullptr) return Invalid("prompt", "required");
  if (prompt->is_string()) return Str(prompt->get_string());
  if (prompt->is_array() && prompt->get_array().size() == 1 && prompt->get_array()[0].is_string()) {
    return Str(prompt->get_array()[0].get_string());
  }
  return Invalid("prompt", "a string (or an array of one string)");
}

absl::StatusOr<std::optional<double>> NumberIn(const json::object& body, absl::string_view field, double lo,
                                                double hi) {
  const json::value* v = body.if_contains(json::string_view(field.data(), field.size()));
  if (v == nullptr || v->is_null()) return std::optional<double>();
  if (!v->is_number()) return Invalid(field, "must be a number");
  double d = v->to_number<double>();
  if (!std::isfinite(d) || d < lo || d > hi) return Invalid(field, absl::StrCat("must be within ", lo, "..", hi));
  return std::optional<double>(d);
}

absl::StatusOr<int64_t> MaxTokens(const json::value* v, absl::string_view field) {
  if (v == nullptr || v->is_null()) return 0;
  if (!v->is_int64() && !v->is_uint64()) return Invalid(field, "must be an integer");
  if (v->is_uint64() || v->get_int64() < 1 || v->get_int64() > kMaxTokensLimit) {
    return Invalid(field, absl::StrCat("must be within 1..", kMaxTokensLimit));
  }
  return v->get_int64();
}

absl::StatusOr<json::array> Stops(const json::value* stop) {
  json::array out;
  if (stop == nullptr || stop->is_null()) return out;
  if (stop->is_string()) {
    out.push_back(stop->get_string());
    return out;
  }
  if (!stop->is_array() || stop->get_array().size() > kMaxStops) {
    return Invalid("stop", absl::StrCat("a string or an array of at most ", kMaxStops, " strings"));
  }
  for (const json::value& s : stop->get_array()) {
    if (!s.is_string()) return Invalid("stop", "every element must be a string");
    out.push_back(s);
  }
  return out;
}

// The fields every OpenAI request may carry, checked and copied into the handler's request.
absl::Status CommonFields(const json::object& body, GenerateRequest* out, json::object* payload) {
  if (absl::Status s = SetModel(body.if_contains("model"), out); !s.ok()) return s;
  (*payload)["model"] = out->model;
  const json::value* stream = body.if_contains("stream");
  if (stream != nullptr && !stream->is_null()) {
    if (!stream->is_bool()) return Invalid("stream", "must be true or false");
    out->stream = stream->get_bool();
  }
  if (const json::value* options = body.if_contains("stream_options"); options != nullptr && !options->is_null()) {
    const json::object* o = options->if_object();
    if (o == nullptr) return Invalid("stream_options", "must be an object");
    if (const json::value* usage = o->if_contains("include_usage"); usage != nullptr) {
      if (!usage->is_bool()) return Invalid("stream_options.include_usage", "must be true or false");
      out->include_usage = usage->get_bool();
    }
  }
  if (const json::value* n = body.if_contains("n"); n != nullptr && !n->is_null()) {
    if (!n->is_int64() || n->get_int64() != 1) return Invalid("n", "only 1 is supported");
  }
  // max_completion_tokens is the newer name; either is the limit.
  const json::value* newer = body.if_contains("max_completion_tokens");
  auto max_tokens = newer != nullptr && !newer->is_null() ? MaxTokens(newer, "max_completion_tokens")
                                                          : MaxTokens(body.if_contains("max_tokens"), "max_tokens");
  if (!max_tokens.ok()) return max_tokens.status();
  out->max_tokens = *max_tokens;
  if (out->max_tokens > 0) (*payload)["max_tokens"] = out->max_tokens;
  for (auto [field, hi] : {std::pair<absl::string_view, double>{"temperature", 2}, {"top_p", 1}}) {
    auto value = NumberIn(body, field, 0, hi);
    if (!value.ok()) return value.status();
    if (value->has_value()) (*payload)[json::string_view(field.data(), field.size())] = **value;
  }
  auto stops = Stops(body.if_contains("stop"));
  if (!stops.ok()) return stops.status();
  if (!stops->empty()) (*payload)["stop"] = *std::move(stops);
  if (const json::value* user = body.if_contains("user"); user != nullptr && !user->is_null()) {
    if (!user->is_string() || user->get_string().size() > kMaxUserBytes) {
      return Invalid("user", absl::StrCat("a string of at most ", kMaxUserBytes, " bytes"));
    }
    (*payload)["user"] = user->get_string();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerateRequest> ParseOpenAiRequest(GenerateKind kind, absl::string_view body) {
  auto object = ParseObject(body, "body");
  if (!object.ok()) return object.status();
  GenerateRequest out;
  out.kind = kind;
  json::object payload;
  payload["type"] = kind == GenerateKind::kChat ? "chat" : "completion";
  if (absl::Status s = CommonFields(*object, &out, &payload); !s.ok()) return s;
  if (kind == GenerateKind::kChat) {
    auto messages = Messages(object->if_contains("messages"));
    if (!messages.ok()) return messages.status();
    payload["messages"] = *std::move(messages);
  } else {
    auto prompt = Prompt(object->if_contains("prompt"));
    if (!prompt.ok()) return prompt.status();
    payload["prompt"] = *std::move(prompt);
  }
  out.payload = json::serialize(payload);
  return out;
}

absl::StatusOr<GenerateRequest> ParseWebSocketInference(absl::string_view message) {
  auto object = ParseObject(message, "message");
  if (!object.ok()) return object.status();
  const json::value* type = object->if_contains("type");
  if (type == nullptr || !type->is_string() || type->get_string() != "inference") {
    return Invalid("type", "must be \"inference\"");
  }
  const json::value* data = object->if_contains("data");
  if (data == nullptr || !data->is_object()) return Invalid("data", "required, an object");
  const json::object& d = data->get_object();
  GenerateRequest out;
  out.stream = true;
  json::object payload;
  if (absl::Status s = SetModel(d.if_contains("model"), &out); !s.ok()) return s;
  payload["model"] = out.model;
  auto max_tokens = MaxTokens(d.if_contains("maxTokens"), "data.maxTokens");
  if (!max_tokens.ok()) return max_tokens.status();
  out.max_tokens = *max_tokens;
  if (out.max_tokens > 0) payload["max_tokens"] = out.max_tokens;
  if (d.if_contains("messages") != nullptr) {
    out.kind = GenerateKind::kChat;
    payload["type"] = "chat";
    auto messages = Messages(d.if_contains("messages"));
    if (!messages.ok()) return absl::InvalidArgumentError(absl::StrCat("data.", messages.status().message()));
    payload["messages"] = *std::move(messages);
  } else {
    out.kind = GenerateKind::kCompletion;
    payload["type"] = "completion";
    const json::value* prompt = d.if_contains("prompt");
    if (prompt == nullptr || !prompt->is_string()) return Invalid("data.prompt", "a string (or give data.messages)");
    payload["prompt"] = prompt->get_string();
  }
  out.payload = json::serialize(payload);
  return out;
}

v1::InvokeRequest ToInvokeRequest(const GenerateRequest& request) {
  v1::InvokeRequest out;
  out.set_capability(absl::StrCat(kModelPrefix, request.model));
  out.set_version(request.version);
  out.set_payload(request.payload);
  (*out.mutable_metadata())["content-type"] = "application/vnd.gantry.generate+json";
  return out;
}

absl::StatusOr<HandlerEvent> ParseHandlerChunk(absl::string_view chunk) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(chunk.data(), chunk.size()), ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return absl::FailedPreconditionError("the model handler sent a chunk that is not a JSON object");
  HandlerEvent out;
  if (const json::value* token = o->if_contains("token"); token != nullptr) {
    if (!token->is_string()) return absl::FailedPreconditionError("the model handler sent a token that is not a string");
    out.token = Str(token->get_string());
  }
  if (const json::value* finish = o->if_contains("finish_reason"); finish != nullptr && !finish->is_null()) {
    if (!finish->is_string() || (finish->get_string() != "stop" && finish->get_string() != "length")) {
      return absl::FailedPreconditionError("the model handler sent a finish_reason other than \"stop\" or \"length\"");
    }
    out.finish_reason = Str(finish->get_string());
  }
  if (const json::value* usage = o->if_contains("usage"); usage != nullptr && usage->is_object()) {
    const json::value* prompt = usage->get_object().if_contains("prompt_tokens");
    if (prompt != nullptr && prompt->is_int64() && prompt->get_int64() >= 0) out.prompt_tokens = prompt->get_int64();
  }
  if (!out.token && !out.finish_reason && !out.prompt_tokens) {
    return absl::FailedPreconditionError("the model handler sent a chunk with no token, finish_reason or usage");
  }
  return out;
}

}  // namespace gantry::api::http
