#include "api-server/http/websocket_session.h"

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "api-server/http/openai_request.h"
#include "api-server/http/openai_response.h"
#include "api-server/http/posting_listener.h"
#include "common/metrics.h"

namespace gantry::api::http {
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace net = boost::asio;
namespace {

// Requests that may wait behind the one being answered; more are refused (429).
constexpr size_t kMaxWaiting = 8;
constexpr absl::string_view kBearerProtocolPrefix = "bearer.";

// A Sec-WebSocket-Protocol list, each entry trimmed.
std::vector<absl::string_view> Protocols(absl::string_view offered) {
  std::vector<absl::string_view> out;
  for (absl::string_view p : absl::StrSplit(offered, ',')) out.push_back(absl::StripAsciiWhitespace(p));
  return out;
}

class WebSocketSession : public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(beast::ssl_stream<beast::tcp_stream> stream, const GatewayContext& context, CallHeaders headers)
      : ws_(std::move(stream)), context_(context), headers_(std::move(headers)) {}

  void Accept(beast::http::request<beast::http::string_body> upgrade);

  template <typename F>
  void Post(F f) {
    net::post(ws_.get_executor(), std::move(f));
  }
  void Token(std::string token, int64_t index);
  void End(GenerationEnd end);

 private:
  void Read();
  void OnMessage();
  void StartNext();
  // Writes are one at a time: queued, each with what to do once it is out.
  void Send(std::string message, std::function<void()> then = nullptr);
  void WriteFront();
  void Gone();

  websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws_;
  const GatewayContext& context_;
  const CallHeaders headers_;
  beast::flat_buffer in_;
  std::deque<std::pair<std::string, std::function<void()>>> outbox_;
  bool writing_ = false;
  bool gone_ = false;
  std::deque<GenerateRequest> waiting_;
  std::shared_ptr<Generation> current_;
  absl::Time current_started_;
  int64_t requests_ = 0;
};

void WebSocketSession::Accept(beast::http::request<beast::http::string_body> upgrade) {
  beast::get_lowest_layer(ws_).expires_never();  // The stream's own timeouts from here.
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(10);
  timeouts.idle_timeout = std::chrono::seconds(30);  // Pinged at half of it; closed unanswered.
  timeouts.keep_alive_pings = true;
  ws_.set_option(timeouts);
  ws_.read_message_max(static_cast<size_t>(context_.max_body_bytes));
  const auto offered = upgrade[beast::http::field::sec_websocket_protocol];
  const bool gantry_protocol = OffersGantryWebSocketProtocol(absl::string_view(offered.data(), offered.size()));
  ws_.set_option(websocket::stream_base::decorator(
      [id = headers_.request_id, gantry_protocol](websocket::response_type& r) {
        r.set("x-request-id", id);
        // A client that offered protocols fails an answer that names none of them.
        if (gantry_protocol) r.set(beast::http::field::sec_websocket_protocol, kWebSocketProtocol);
      }));
  ws_.async_accept(upgrade, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->Gone();
    self->Read();
  });
}

void WebSocketSession::Read() {
  ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Gone();
    self->OnMessage();
    self->Read();
  });
}

void WebSocketSession::OnMessage() {
  std::string text = beast::buffers_to_string(in_.data());
  in_.consume(in_.size());
  auto request = ParseWebSocketInference(text);
  if (!request.ok()) return Send(WebSocketError(HttpStatusOf(request.status()), request.status()));
  if (waiting_.size() >= kMaxWaiting) {
    absl::Status busy = absl::ResourceExhaustedError(
        absl::StrCat("at most ", kMaxWaiting, " requests may wait on one connection"));
    return Send(WebSocketError(429, busy));
  }
  waiting_.push_back(*std::move(request));
  StartNext();
}

void WebSocketSession::StartNext() {
  if (current_ != nullptr || waiting_.empty() || gone_) return;
  GenerateRequest request = std::move(waiting_.front());
  waiting_.pop_front();
  CallHeaders headers = headers_;
  headers.request_id = absl::StrCat(headers_.request_id, ".", requests_++);
  headers.deadline = absl::Now() + context_.request_timeout;
  current_started_ = absl::Now();
  current_ = Generation::Start(context_.invoke, request, headers,
                               std::make_shared<PostingListener<WebSocketSession>>(shared_from_this()));
}

void WebSocketSession::Token(std::string token, int64_t index) {
  if (gone_ || current_ == nullptr) return;
  Send(WebSocketToken(token, index), [this] {
    if (current_ != nullptr) current_->Next();
  });
}

void WebSocketSession::End(GenerationEnd end) {
  current_.reset();
  if (gone_) return;
  Metrics::Global().CounterAdd("gantry_http_requests_total", "HTTP gateway requests by route and status",
                               {{"route", "/ws"}, {"code", std::to_string(HttpStatusOf(end.status))}});
  if (end.status.ok()) {
    Send(WebSocketDone(end.usage.completion_tokens, absl::ToInt64Milliseconds(absl::Now() - current_started_)));
  } else {
    Send(WebSocketError(HttpStatusOf(end.status), end.status));
  }
  StartNext();
}

void WebSocketSession::Send(std::string message, std::function<void()> then) {
  if (gone_) return;
  outbox_.emplace_back(std::move(message), std::move(then));
  if (!writing_) WriteFront();
}

void WebSocketSession::WriteFront() {
  writing_ = true;
  ws_.text(true);
  ws_.async_write(net::buffer(outbox_.front().first), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->Gone();
    std::function<void()> then = std::move(self->outbox_.front().second);
    self->outbox_.pop_front();
    self->writing_ = false;
    if (then) then();
    if (!self->writing_ && !self->outbox_.empty()) self->WriteFront();
  });
}

void WebSocketSession::Gone() {
  if (gone_) return;
  gone_ = true;
  waiting_.clear();  // The outbox stays: a write in flight still reads its message.
  if (current_ != nullptr) current_->Cancel();
}

}  // namespace

std::string KeyFromWebSocketProtocols(absl::string_view offered) {
  for (absl::string_view p : Protocols(offered)) {
    if (absl::ConsumePrefix(&p, kBearerProtocolPrefix) && !p.empty()) return std::string(p);
  }
  return "";
}

bool OffersGantryWebSocketProtocol(absl::string_view offered) {
  for (absl::string_view p : Protocols(offered)) {
    if (p == kWebSocketProtocol) return true;
  }
  return false;
}

void StartWebSocketSession(beast::ssl_stream<beast::tcp_stream> stream,
                           beast::http::request<beast::http::string_body> upgrade, const GatewayContext& context,
                           CallHeaders headers) {
  auto session = std::make_shared<WebSocketSession>(std::move(stream), context, std::move(headers));
  session->Accept(std::move(upgrade));
}

}  // namespace gantry::api::http
