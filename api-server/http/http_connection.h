// One TLS connection to the HTTP gateway: HTTP/1.1 requests, kept alive, one at a time.
// Routes (docs/openai.md):
//   GET  /health                       no key; 200 while the API server can serve
//   GET  /v1/models                    InvokeService.ListCapabilities, model/* only
//   POST /v1/chat/completions          InvokeService.Invoke; SSE with "stream": true
//   POST /v1/completions               the same, for a prompt
//   GET  /api/cluster/status           AdminService.GetClusterStatus (admin key)
//   GET  /api/cluster/workers[/{id}]   AdminService.ListWorkers (admin key)
//   GET  /ws                           the WebSocket token protocol (websocket_session.h)
// Every call goes to gantry-api's own gRPC services in-process, with the client's key, so
// what they check and count holds here too. Every response carries x-request-id.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "api-server/http/gateway_context.h"

namespace gantry::api::http {

// Takes over `socket` (accepted) until the connection closes.
void StartHttpConnection(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& tls,
                         const GatewayContext& context);

}  // namespace gantry::api::http
