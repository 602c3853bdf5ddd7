#include "api-server/http/http_connection.h"

#include <grpcpp/client_context.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "api-server/authenticator.h"
#include "api-server/http/generation.h"
#include "api-server/http/posting_listener.h"
#include "api-server/http/openai_request.h"
#include "api-server/http/openai_response.h"
#include "api-server/http/websocket_session.h"
#include "common/json_util.h"
#include "common/metrics.h"
#include "common/request_ids.h"
#include "common/status.h"

namespace gantry::api::http {
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kShutdownTimeout = std::chrono::seconds(5);
constexpr absl::Duration kUnaryTimeout = absl::Seconds(30);
constexpr int64_t kMaxTimeoutMs = 24 * 3600 * 1000;
// Bytes a client may send while its answer streams (a pipelined next request) before the
// gateway stops reading: past it, a disconnect is noticed at the next write instead.
constexpr size_t kMaxReadAhead = 64 * 1024;
constexpr absl::string_view kWorkersPrefix = "/api/cluster/workers/";

absl::string_view Sv(beast::string_view s) { return absl::string_view(s.data(), s.size()); }

// The route as a metric label: one of a fixed set, never the client's path.
absl::string_view RouteLabel(absl::string_view path) {
  for (absl::string_view route : {"/health", "/v1/models", "/v1/chat/completions", "/v1/completions",
                                 "/api/cluster/status", "/api/cluster/workers", "/ws"}) {
    if (path == route) return route;
  }
  if (absl::StartsWith(path, kWorkersPrefix)) return "/api/cluster/workers/{id}";
  return "other";
}

// As gRPC writes a peer, so the API server's guessing limiter keys it by address.
std::string GrpcPeer(const TlsStream& stream) {
  boost::system::error_code ec;
  tcp::endpoint endpoint = beast::get_lowest_layer(stream).socket().remote_endpoint(ec);
  if (ec) return "unknown";
  if (endpoint.address().is_v6()) return absl::StrCat("ipv6:[", endpoint.address().to_string(), "]:", endpoint.port());
  return absl::StrCat("ipv4:", endpoint.address().to_string(), ":", endpoint.port());
}

class HttpConnection : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(tcp::socket socket, net::ssl::context& tls, const GatewayContext& context)
      : stream_(std::move(socket), tls), context_(context), peer_(GrpcPeer(stream_)) {}

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Handshake(); });
  }

  template <typename F>
  void Post(F f) {
    net::post(stream_.get_executor(), std::move(f));
  }

  // A generation's events, on the strand (PostingListener).
  void Token(std::string token, int64_t index);
  void End(GenerationEnd end);

 private:
  void Handshake();
  void ReadRequest();
  void OnHeader(beast::error_code ec);
  void OnRequest(beast::error_code ec);
  void Route(absl::string_view path);

  absl::StatusOr<absl::Time> Deadline() const;
  CallHeaders Headers(absl::Time deadline) const;
  void SetCallHeaders(grpc::ClientContext* call, absl::Time deadline) const;

  // Unary calls to the API server's own services, answered as JSON.
  template <typename Request, typename Response, typename Issue, typename Render>
  void Unary(Request request, Issue issue, Render render);
  template <typename Render>
  void ListServedModels(Render render);  // model/* only: GET /v1/models, and the upgrade's key check.
  void ListModels();
  void ClusterStatus();
  void Workers(std::string id);
  void UpgradeToWebSocket();

  void BeginGeneration(GenerateKind kind);
  void WriteEvent(std::string event, std::function<void()> then, bool last = false);
  void FinishStream(std::string tail);

  void Respond(int status, std::string body);
  void RespondError(const absl::Status& status) { Respond(HttpStatusOf(status), ErrorBody(HttpStatusOf(status), status)); }
  void ResponseDone();
  void Count(int status);

  // Reads while an answer is produced, so a client that goes away is noticed at once.
  void WatchForDisconnect();
  void OnWatchRead(beast::error_code ec, size_t n);
  void ClientGone();
  void Close();

  TlsStream stream_;
  const GatewayContext& context_;
  const std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::request<bhttp::string_body> request_;
  std::string route_;
  std::string request_id_;
  bool keep_alive_ = false;
  std::shared_ptr<bhttp::response<bhttp::string_body>> response_;

  bool watching_ = false;      // A read for a disconnect is outstanding.
  bool awaiting_next_ = false;  // The response is out; that read goes on as the next request's.
  bool client_gone_ = false;

  // The generation being answered, if any.
  std::shared_ptr<Generation> generation_;
  GenerateRequest generate_;
  ResponseHead head_;
  absl::Time started_;
  std::string text_;  // A non-streamed answer, as it comes.
  bool too_long_ = false;
  bool sse_started_ = false;  // The response's head is written (with its first event).
  std::string head_bytes_;    // The head being written, if it is.
  std::string out_;           // The event being written.
};

void HttpConnection::Handshake() {
  beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
  stream_.async_handshake(net::ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->ReadRequest();
  });
}

void HttpConnection::ReadRequest() {
  parser_.emplace();
  parser_->body_limit(context_.max_body_bytes);
  parser_->header_limit(16 * 1024);
  beast::get_lowest_layer(stream_).expires_after(absl::ToChronoSeconds(context_.idle_timeout));
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

// A client that asks with `Expect: 100-continue` (curl does, for a body over 1 KiB) sends the
// body only once told to, or after waiting a second: told at once. A body too large was
// refused already (its Content-Length is checked with the head).
void HttpConnection::OnHeader(beast::error_code ec) {
  if (ec) return OnRequest(ec);
  auto read_body = [self = shared_from_this()] {
    bhttp::async_read(self->stream_, self->buffer_, *self->parser_,
                      [self](beast::error_code ec, size_t) { self->OnRequest(ec); });
  };
  if (!beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) return read_body();
  auto go_on = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, parser_->get().version());
  bhttp::async_write(stream_, *go_on, [go_on, read_body](beast::error_code ec, size_t) {
    if (!ec) read_body();
  });
}

void HttpConnection::OnRequest(beast::error_code ec) {
  if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit) {
    keep_alive_ = false;
    request_id_ = NewRequestId();
    route_ = "other";
    return Respond(413, ErrorBody(400, absl::InvalidArgumentError(absl::StrCat(
                                           "body: at most ", context_.max_body_bytes, " bytes, headers 16 KiB"))));
  }
  if (ec) return Close();  // The client closed, timed out, or sent no HTTP.
  request_ = parser_->release();
  keep_alive_ = request_.keep_alive();
  std::string id(Sv(request_["x-request-id"]));
  request_id_ = IsSaneRequestId(id) ? id : NewRequestId();
  started_ = absl::Now();
  beast::get_lowest_layer(stream_).expires_never();  // An answer may stream for long.
  absl::string_view target(request_.target().data(), request_.target().size());
  absl::string_view path = target.substr(0, target.find('?'));
  route_ = std::string(RouteLabel(path));
  Route(path);
}

void HttpConnection::Route(absl::string_view path) {
  const bool get = request_.method() == bhttp::verb::get, post = request_.method() == bhttp::verb::post;
  if (path == "/health" && get) {
    bool ready = context_.ready();
    return Respond(ready ? 200 : 503, ready ? R"({"status":"ok"})" : R"({"status":"unavailable"})");
  }
  if (path == "/v1/models" && get) return ListModels();
  if (path == "/v1/chat/completions" && post) return BeginGeneration(GenerateKind::kChat);
  if (path == "/v1/completions" && post) return BeginGeneration(GenerateKind::kCompletion);
  if (path == "/api/cluster/status" && get) return ClusterStatus();
  if (path == "/api/cluster/workers" && get) return Workers("");
  if (absl::StartsWith(path, kWorkersPrefix) && get) return Workers(std::string(path.substr(kWorkersPrefix.size())));
  if (path == "/ws" && get && beast::websocket::is_upgrade(request_)) return UpgradeToWebSocket();
  if (route_ != "other") {
    return Respond(405, ErrorBody(405, absl::InvalidArgumentError(absl::StrCat(
                                           "method ", Sv(request_.method_string()), " not allowed here"))));
  }
  Respond(404, ErrorBody(404, absl::NotFoundError("no such route")));
}

absl::StatusOr<absl::Time> HttpConnection::Deadline() const {
  absl::Duration timeout = context_.request_timeout;
  auto header = request_.find("x-gantry-timeout-ms");
  if (header != request_.end()) {
    int64_t ms = 0;
    if (!absl::SimpleAtoi(Sv(header->value()), &ms) || ms < 1 ||
        ms > kMaxTimeoutMs) {
      return absl::InvalidArgumentError(absl::StrCat("x-gantry-timeout-ms: milliseconds, 1..", kMaxTimeoutMs));
    }
    timeout = std::min(timeout, absl::Milliseconds(ms));
  }
  return absl::Now() + timeout;
}

CallHeaders HttpConnection::Headers(absl::Time deadline) const {
  std::string authorization(Sv(request_[bhttp::field::authorization]));
  if (authorization.empty() && route_ == "/ws") {
    std::string key = KeyFromWebSocketProtocols(Sv(request_[bhttp::field::sec_websocket_protocol]));
    if (!key.empty()) authorization = "Bearer " + key;  // A browser's (websocket_session.h).
  }
  return {std::move(authorization), request_id_, peer_, deadline};
}

void HttpConnection::SetCallHeaders(grpc::ClientContext* call, absl::Time deadline) const {
  CallHeaders h = Headers(deadline);
  if (!h.authorization.empty()) call->AddMetadata("authorization", h.authorization);
  call->AddMetadata("x-request-id", h.request_id);
  call->AddMetadata(kForwardedPeerHeader, h.peer);
  call->set_deadline(absl::ToChronoTime(deadline));
}

template <typename Request, typename Response, typename Issue, typename Render>
void HttpConnection::Unary(Request request, Issue issue, Render render) {
  struct Call {
    grpc::ClientContext context;
    Request request;
    Response response;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  SetCallHeaders(&call->context, absl::Now() + kUnaryTimeout);
  issue(&call->context, &call->request, &call->response,
        [self = shared_from_this(), call, render](grpc::Status status) {
          self->Post([self, call, render, status] {
            if (!status.ok()) return self->RespondError(FromGrpcStatus(status));
            render(call->response);
          });
        });
}

template <typename Render>
void HttpConnection::ListServedModels(Render render) {
  v1::ListCapabilitiesRequest request;
  request.set_prefix("model/");
  Unary<v1::ListCapabilitiesRequest, v1::ListCapabilitiesResponse>(
      std::move(request),
      [this](auto* call, auto* req, auto* resp, auto done) {
        context_.invoke->async()->ListCapabilities(call, req, resp, std::move(done));
      },
      std::move(render));
}

void HttpConnection::ListModels() {
  ListServedModels([this](const v1::ListCapabilitiesResponse& served) { Respond(200, ModelsBody(served)); });
}

void HttpConnection::ClusterStatus() {
  Unary<v1::GetClusterStatusRequest, v1::ClusterStatus>(
      {},
      [this](auto* call, auto* req, auto* resp, auto done) {
        context_.admin->async()->GetClusterStatus(call, req, resp, std::move(done));
      },
      [this](const v1::ClusterStatus& status) { Respond(200, ToJsonWithDefaults(status)); });
}

void HttpConnection::Workers(std::string id) {
  Unary<v1::ListWorkersRequest, v1::ListWorkersResponse>(
      {},
      [this](auto* call, auto* req, auto* resp, auto done) {
        context_.admin->async()->ListWorkers(call, req, resp, std::move(done));
      },
      [this, id](const v1::ListWorkersResponse& workers) {
        if (id.empty()) return Respond(200, ToJsonWithDefaults(workers));
        for (const v1::Worker& w : workers.workers()) {
          if (w.id() == id) return Respond(200, ToJsonWithDefaults(w));
        }
        Respond(404, ErrorBody(404, absl::NotFoundError("no worker with that id")));
      });
}

// The key is checked before the upgrade (a wrong one gets an HTTP 401, not a socket that
// fails later): by the cheapest call that checks it.
void HttpConnection::UpgradeToWebSocket() {
  ListServedModels([self = shared_from_this()](const v1::ListCapabilitiesResponse&) {
    self->Count(101);
    CallHeaders headers = self->Headers(absl::InfiniteFuture());  // Before request_ is moved away.
    StartWebSocketSession(std::move(self->stream_), std::move(self->request_), self->context_, std::move(headers));
  });
}

void HttpConnection::BeginGeneration(GenerateKind kind) {
  auto parsed = ParseOpenAiRequest(kind, request_.body());
  if (!parsed.ok()) return RespondError(parsed.status());
  auto deadline = Deadline();
  if (!deadline.ok()) return RespondError(deadline.status());
  generate_ = *std::move(parsed);
  head_ = MakeResponseHead(generate_, request_id_, absl::ToUnixSeconds(started_));
  text_.clear();
  too_long_ = false;
  sse_started_ = false;
  generation_ = Generation::Start(context_.invoke, generate_, Headers(*deadline),
                                  std::make_shared<PostingListener<HttpConnection>>(shared_from_this()));
  WatchForDisconnect();
}

void HttpConnection::Token(std::string token, int64_t index) {
  if (client_gone_ || generation_ == nullptr) return;  // Cancelled: its end follows.
  if (index == 0) {
    Metrics::Global().Observe("gantry_http_time_to_first_token_seconds",
                              "HTTP gateway: time from a generation request to its first token, by route and model",
                              {{"route", route_}, {"model", generate_.model}},
                              absl::ToDoubleSeconds(absl::Now() - started_));
  }
  if (!generate_.stream) {
    if (text_.size() + token.size() > static_cast<size_t>(context_.max_body_bytes)) {
      too_long_ = true;
      return generation_->Cancel();
    }
    text_ += token;
    return generation_->Next();
  }
  WriteEvent(TokenEvent(head_, token, index == 0), [this] {
    if (generation_ != nullptr) generation_->Next();
  });
}

void HttpConnection::End(GenerationEnd end) {
  generation_.reset();
  if (client_gone_) return;
  if (too_long_) {
    end.status = absl::ResourceExhaustedError(absl::StrCat("the answer is longer than ", context_.max_body_bytes,
                                                           " bytes; ask for it with \"stream\": true"));
  }
  if (!generate_.stream || !sse_started_) {
    if (!end.status.ok()) return RespondError(end.status);
    if (!generate_.stream) return Respond(200, CompletionBody(head_, text_, end.finish_reason, end.usage));
  }
  std::string tail;
  if (end.status.ok()) {
    tail = FinishEvent(head_, end.finish_reason);
    if (generate_.include_usage) tail += UsageEvent(head_, end.usage);
  } else {
    tail = ErrorEvent(HttpStatusOf(end.status), end.status);
  }
  absl::StrAppend(&tail, kDoneEvent);
  FinishStream(std::move(tail));
}

// SSE: the head goes with the first event, in one write (so a failure before any token still
// gets its own status, and the first token costs one TLS record), each event in one HTTP chunk.
void HttpConnection::WriteEvent(std::string event, std::function<void()> then, bool last) {
  out_ = std::move(event);
  head_bytes_.clear();
  if (!sse_started_) {
    sse_started_ = true;
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, request_.version()};
    head.set(bhttp::field::content_type, "text/event-stream");
    head.set(bhttp::field::cache_control, "no-cache");
    head.set("x-request-id", request_id_);
    head.keep_alive(keep_alive_);
    head.chunked(true);
    std::ostringstream os;
    os << head.base();
    head_bytes_ = os.str();
  }
  auto done = [self = shared_from_this(), then = std::move(then)](beast::error_code ec, size_t) {
    if (ec) return self->ClientGone();
    then();
  };
  auto event_chunk = bhttp::make_chunk(net::buffer(out_));
  if (last) {
    net::async_write(stream_, beast::buffers_cat(net::buffer(head_bytes_), event_chunk, bhttp::make_chunk_last()),
                     std::move(done));
  } else {
    net::async_write(stream_, beast::buffers_cat(net::buffer(head_bytes_), event_chunk), std::move(done));
  }
}

void HttpConnection::FinishStream(std::string tail) {
  WriteEvent(std::move(tail), [self = shared_from_this()] {
    self->Count(200);
    self->ResponseDone();
  }, /*last=*/true);
}

void HttpConnection::Respond(int status, std::string body) {
  response_ = std::make_shared<bhttp::response<bhttp::string_body>>(static_cast<bhttp::status>(status),
                                                                    request_.version());
  response_->set(bhttp::field::content_type, "application/json");
  response_->set(bhttp::field::cache_control, "no-store");
  response_->set("x-request-id", request_id_);
  response_->keep_alive(keep_alive_);
  response_->body() = std::move(body);
  response_->prepare_payload();
  bhttp::async_write(stream_, *response_, [self = shared_from_this(), status](beast::error_code ec, size_t) {
    if (ec) return self->ClientGone();
    self->Count(status);
    self->ResponseDone();
  });
}

void HttpConnection::Count(int status) {
  Metrics::Global().CounterAdd("gantry_http_requests_total", "HTTP gateway requests by route and status",
                               {{"route", route_}, {"code", std::to_string(status)}});
}

void HttpConnection::ResponseDone() {
  if (!keep_alive_) return Close();
  if (watching_) {
    // The read that watched for a disconnect becomes the next request's first bytes.
    awaiting_next_ = true;
    beast::get_lowest_layer(stream_).expires_after(absl::ToChronoSeconds(context_.idle_timeout));
    return;
  }
  ReadRequest();
}

void HttpConnection::WatchForDisconnect() {
  watching_ = true;
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->OnWatchRead(ec, n);
  });
}

void HttpConnection::OnWatchRead(beast::error_code ec, size_t n) {
  watching_ = false;
  if (ec && awaiting_next_) return;  // A kept-alive connection closed between requests.
  if (ec) return ClientGone();
  buffer_.commit(n);
  if (awaiting_next_) {
    awaiting_next_ = false;
    return ReadRequest();
  }
  if (generation_ != nullptr && buffer_.size() < kMaxReadAhead) WatchForDisconnect();
}

void HttpConnection::ClientGone() {
  if (client_gone_) return;
  client_gone_ = true;
  Count(499);  // nginx's "client closed request".
  if (generation_ != nullptr) generation_->Cancel();
  beast::error_code ignored;
  beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
}

void HttpConnection::Close() {
  beast::get_lowest_layer(stream_).expires_after(kShutdownTimeout);
  stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
    beast::error_code ignored;
    beast::get_lowest_layer(self->stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  });
}

}  // namespace

void StartHttpConnection(tcp::socket socket, net::ssl::context& tls, const GatewayContext& context) {
  std::make_shared<HttpConnection>(std::move(socket), tls, context)->Run();
}

}  // namespace gantry::api::http
