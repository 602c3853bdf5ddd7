#include "api-server/http/openai_request.h"
#include "api-server/http/openai_response.h"
#include "api-server/http/websocket_session.h"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

namespace gantry::api::http {
namespace json = boost::json;
namespace {

json::object Parsed(const std::string& text) { return json::parse(text).as_object(); }

std::string InvalidMessage(GenerateKind kind, const std::string& body) {
  auto parsed = ParseOpenAiRequest(kind, body);
  REQUIRE(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

}  // namespace

TEST_CASE("a chat request becomes the handler's generate request, with what it may pass on", "[openai]") {
  auto request = ParseOpenAiRequest(GenerateKind::kChat, R"({
    "model": "llama@^1.2", "stream": true, "stream_options": {"include_usage": true},
    "max_tokens": 7, "temperature": 0.5, "stop": "\n", "user": "u-1", "n": 1,
    "messages": [{"role": "system", "content": "be brief"},
                 {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]}]})");
  REQUIRE(request.ok());
  CHECK(request->model == "llama");
  CHECK(request->version == "^1.2");
  CHECK(request->stream);
  CHECK(request->include_usage);
  CHECK(request->max_tokens == 7);
  json::object payload = Parsed(request->payload);
  CHECK(payload.at("type") == "chat");
  CHECK(payload.at("model") == "llama");
  CHECK(payload.at("max_tokens") == 7);
  CHECK(payload.at("temperature") == 0.5);
  CHECK(payload.at("stop") == json::array{"\n"});
  CHECK(payload.at("user") == "u-1");
  CHECK(payload.at("messages").as_array().size() == 2);
  CHECK(payload.at("messages").as_array()[1].as_object().at("content") == "hi there");

  v1::InvokeRequest invoke = ToInvokeRequest(*request);
  CHECK(invoke.capability() == "model/llama");
  CHECK(invoke.version() == "^1.2");
  CHECK(invoke.payload() == request->payload);
  CHECK(invoke.metadata().at("content-type") == "application/vnd.gantry.generate+json");
}

TEST_CASE("a completion request takes a prompt, and max_completion_tokens wins over max_tokens", "[openai]") {
  auto request = ParseOpenAiRequest(GenerateKind::kCompletion,
                                    R"({"model":"demo","prompt":["once upon"],"max_tokens":9,"max_completion_tokens":3})");
  REQUIRE(request.ok());
  CHECK_FALSE(request->stream);
  CHECK(request->max_tokens == 3);
  json::object payload = Parsed(request->payload);
  CHECK(payload.at("type") == "completion");
  CHECK(payload.at("prompt") == "once upon");
}

TEST_CASE("a bad OpenAI request is refused naming its field", "[openai]") {
  CHECK(InvalidMessage(GenerateKind::kChat, "{") .rfind("body: not JSON", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, "[]") == "body: not a JSON object");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"messages":[{"role":"user","content":"x"}]})") == "model: required");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"../x y","messages":[]})").rfind("model: ", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m@not a range","messages":[]})").rfind("model: version", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m"})") == "messages: required");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","messages":[]})") == "messages: a non-empty array");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","messages":[{"role":"robot","content":"x"}]})")
            .rfind("messages[0].role: ", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat,
                       R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})")
            .rfind("messages[0].content: only text parts", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","max_tokens":0,"messages":[{"role":"user"}]})")
            .rfind("max_tokens: must be within 1..", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","temperature":3,"messages":[{"role":"user"}]})")
            .rfind("temperature: must be within 0..2", 0) == 0);
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","n":2,"messages":[{"role":"user"}]})") ==
        "n: only 1 is supported");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","stream":"yes","messages":[{"role":"user"}]})") ==
        "stream: must be true or false");
  CHECK(InvalidMessage(GenerateKind::kChat, R"({"model":"m","stop":[1],"messages":[{"role":"user"}]})") ==
        "stop: every element must be a string");
  CHECK(InvalidMessage(GenerateKind::kCompletion, R"({"model":"m","prompt":["a","b"]})")
            .rfind("prompt: a string", 0) == 0);
}

TEST_CASE("an error body has OpenAI's shape, its param the field the message names", "[openai]") {
  absl::Status bad = absl::InvalidArgumentError("messages[0].role: system, developer, user, assistant or tool");
  CHECK(HttpStatusOf(bad) == 400);
  json::object error = Parsed(ErrorBody(400, bad)).at("error").as_object();
  CHECK(error.at("type") == "invalid_request_error");
  CHECK(error.at("param") == "messages[0].role");
  CHECK(error.at("message") == "messages[0].role: system, developer, user, assistant or tool");

  CHECK(HttpStatusOf(absl::UnauthenticatedError("x")) == 401);
  CHECK(HttpStatusOf(absl::PermissionDeniedError("x")) == 403);
  CHECK(HttpStatusOf(absl::NotFoundError("x")) == 404);
  CHECK(HttpStatusOf(absl::ResourceExhaustedError("x")) == 429);
  CHECK(HttpStatusOf(absl::UnavailableError("x")) == 503);
  CHECK(HttpStatusOf(absl::DeadlineExceededError("x")) == 504);
  CHECK(HttpStatusOf(absl::FailedPreconditionError("x")) == 502);
  CHECK(Parsed(ErrorBody(404, absl::NotFoundError("no model"))).at("error").as_object().at("code") == "model_not_found");
  CHECK(Parsed(ErrorBody(401, absl::UnauthenticatedError("no key"))).at("error").as_object().at("param").is_null());
}

TEST_CASE("a handler's chunks are tokens, an ending, or a protocol error", "[openai]") {
  auto token = ParseHandlerChunk(R"({"token":" world"})");
  REQUIRE(token.ok());
  CHECK(*token->token == " world");
  CHECK_FALSE(token->finish_reason.has_value());
  auto end = ParseHandlerChunk(R"({"finish_reason":"length","usage":{"prompt_tokens":4,"completion_tokens":2}})");
  REQUIRE(end.ok());
  CHECK(*end->finish_reason == "length");
  CHECK(*end->prompt_tokens == 4);
  for (const char* broken : {"plain text", "[1]", R"({"token":5})", R"({"finish_reason":"tired"})", "{}"}) {
    INFO(broken);
    CHECK(ParseHandlerChunk(broken).status().code() == absl::StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("stream events: the first delta names the role, then content, an ending, usage, [DONE]", "[openai]") {
  GenerateRequest request;
  request.model = "demo";
  ResponseHead head = MakeResponseHead(request, "req1", 1700000000);
  CHECK(head.id == "chatcmpl-req1");
  std::string first = TokenEvent(head, "Hi", true);
  REQUIRE(first.rfind("data: ", 0) == 0);
  REQUIRE(first.substr(first.size() - 2) == "\n\n");
  json::object chunk = Parsed(first.substr(6));
  CHECK(chunk.at("object") == "chat.completion.chunk");
  CHECK(chunk.at("model") == "demo");
  json::object delta = chunk.at("choices").as_array()[0].as_object().at("delta").as_object();
  CHECK(delta.at("role") == "assistant");
  CHECK(delta.at("content") == "Hi");
  std::string later = TokenEvent(head, " there", false);
  CHECK_FALSE(Parsed(later.substr(6)).at("choices").as_array()[0].as_object().at("delta").as_object().contains("role"));
  json::object finish = Parsed(FinishEvent(head, "stop").substr(6));
  CHECK(finish.at("choices").as_array()[0].as_object().at("finish_reason") == "stop");
  json::object usage = Parsed(UsageEvent(head, {3, 2}).substr(6));
  CHECK(usage.at("choices").as_array().empty());
  CHECK(usage.at("usage").as_object().at("total_tokens") == 5);

  json::object body = Parsed(CompletionBody(head, "Hi there", "stop", {3, 2}));
  CHECK(body.at("object") == "chat.completion");
  CHECK(body.at("choices").as_array()[0].as_object().at("message").as_object().at("content") == "Hi there");
}

TEST_CASE("the WebSocket protocol: inference in, tokens and done out", "[openai]") {
  auto request = ParseWebSocketInference(R"({"type":"inference","data":{"model":"demo","prompt":"a b","maxTokens":5}})");
  REQUIRE(request.ok());
  CHECK(request->kind == GenerateKind::kCompletion);
  CHECK(request->max_tokens == 5);
  CHECK(Parsed(request->payload).at("prompt") == "a b");
  auto chat = ParseWebSocketInference(
      R"({"type":"inference","data":{"model":"demo","messages":[{"role":"user","content":"x"}]}})");
  REQUIRE(chat.ok());
  CHECK(chat->kind == GenerateKind::kChat);
  CHECK(ParseWebSocketInference(R"({"type":"ping"})").status().message() == "type: must be \"inference\"");
  CHECK(ParseWebSocketInference(R"({"type":"inference","data":{"model":"demo"}})").status().message().rfind(
            "data.prompt: ", 0) == 0);
  CHECK(Parsed(WebSocketToken("Hi", 0)) == Parsed(R"({"type":"token","data":{"token":"Hi","index":0}})"));
  CHECK(Parsed(WebSocketDone(2, 31)) == Parsed(R"({"type":"done","data":{"totalTokens":2,"latencyMs":31}})"));
}

TEST_CASE("GET /v1/models lists the model/* capabilities only, by their model names", "[openai]") {
  v1::ListCapabilitiesResponse served;
  auto* model = served.add_capabilities();
  model->set_name("model/demo");
  model->add_versions("1.0.0");
  model->set_controllers(2);
  served.add_capabilities()->set_name("demo/echo");
  json::object list = Parsed(ModelsBody(served));
  CHECK(list.at("object") == "list");
  REQUIRE(list.at("data").as_array().size() == 1);
  CHECK(list.at("data").as_array()[0].as_object().at("id") == "demo");
}

TEST_CASE("a browser's WebSocket key comes as the subprotocol bearer.KEY beside gantry.v1", "[openai]") {
  CHECK(KeyFromWebSocketProtocols("gantry.v1, bearer.gantry_key-abc_DEF-123") == "gantry_key-abc_DEF-123");
  CHECK(KeyFromWebSocketProtocols("bearer.k1,gantry.v1") == "k1");
  CHECK(KeyFromWebSocketProtocols("gantry.v1") == "");
  CHECK(KeyFromWebSocketProtocols("bearer.") == "");  // No key: refused as a missing one.
  CHECK(KeyFromWebSocketProtocols("") == "");
  CHECK(OffersGantryWebSocketProtocol("chat, gantry.v1 ,bearer.k"));
  CHECK_FALSE(OffersGantryWebSocketProtocol("gantry.v2, bearer.k"));
  CHECK_FALSE(OffersGantryWebSocketProtocol(""));
}

}  // namespace gantry::api::http
