// The WebSocket token protocol of the mlx-serving seed, over the gateway's TLS connection
// (GET /ws, upgraded once the key checked out). The client sends
//   {"type":"inference","data":{"model","prompt" or "messages","maxTokens"}}
// and gets {"type":"token","data":{"token","index"}} per token, then
// {"type":"done","data":{"totalTokens","latencyMs"}} (or {"type":"error","data":{"message",
// "status"}}). Requests on one connection are answered in order, one at a time; a few may
// wait. The server pings an idle connection, and one that stops answering is closed. A closed
// connection cancels the request being answered.
#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <string>

#include "absl/strings/string_view.h"
#include "api-server/http/gateway_context.h"
#include "api-server/http/generation.h"

namespace gantry::api::http {

// A browser cannot set headers on a WebSocket, so the key may come in Sec-WebSocket-Protocol
// instead (as Kubernetes takes a bearer token): the client offers kWebSocketProtocol and
// "bearer.KEY", and the answer names kWebSocketProtocol, never the key. Gantry's keys are
// base64url, which a subprotocol may carry as it is.
inline constexpr char kWebSocketProtocol[] = "gantry.v1";
// The key offered in a Sec-WebSocket-Protocol list, or empty.
std::string KeyFromWebSocketProtocols(absl::string_view offered);
// Whether the list offers kWebSocketProtocol.
bool OffersGantryWebSocketProtocol(absl::string_view offered);

void StartWebSocketSession(boost::beast::ssl_stream<boost::beast::tcp_stream> stream,
                           boost::beast::http::request<boost::beast::http::string_body> upgrade,
                           const GatewayContext& context, CallHeaders headers);

}  // namespace gantry::api::http
