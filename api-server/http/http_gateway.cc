#include "api-server/http/http_gateway.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>

#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api-server/http/generation.h"
#include "api-server/http/http_connection.h"
#include "common/cert_reloader.h"

namespace gantry::api::http {
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct HttpGateway::Impl {
  Impl() : tls(net::ssl::context::tls_server), acceptor(io) {}

  void Accept() {
    acceptor.async_accept(net::make_strand(io), [this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;  // Stopped.
      if (!ec) {
        // Each event goes out as written: Nagle's algorithm would hold a token behind the
        // last one's ACK, which the client delays (40 ms a token on Linux).
        boost::system::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        StartHttpConnection(std::move(socket), tls, context);
      }
      Accept();  // Also after an error (out of descriptors): the next may work.
    });
  }

  std::unique_ptr<CertReloader> certificate;  // Outlives `tls`, whose handshakes use it.
  net::io_context io;
  net::ssl::context tls;
  tcp::acceptor acceptor;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::InvokeService::Stub> invoke;
  std::unique_ptr<v1::AdminService::Stub> admin;
  GatewayContext context;
  std::vector<std::thread> threads;
  bool stopped = false;
};

namespace {

absl::StatusOr<tcp::endpoint> ParseListen(const std::string& listen) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--http-listen: HOST:PORT, not \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  net::ip::address address = net::ip::make_address(host.empty() ? "0.0.0.0" : host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("--http-listen: \"", host, "\" is not an IP address"));
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Start(const HttpGatewayConfig& config,
                                                                std::shared_ptr<grpc::Channel> channel,
                                                                std::function<bool()> ready) {
  auto endpoint = ParseListen(config.listen);
  if (!endpoint.ok()) return endpoint.status();
  auto impl = std::make_unique<Impl>();
  boost::system::error_code ec;
  // TLS 1.2 and later only, as the gRPC listener; the server certificate is the API server's.
  impl->tls.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                        net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                        net::ssl::context::single_dh_use);
  // A connection waiting on a token holds no TLS buffers (34 KiB each, per 1,000 streams 33 MiB).
  SSL_CTX_set_mode(impl->tls.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  // Each handshake gets the current pair, so a rotated certificate is served with no restart,
  // as the gRPC port's (cert-manager and kubelet replace the mounted Secret in place).
  impl->certificate =
      std::make_unique<CertReloader>("front door", config.cert_file, config.key_file, config.cert_refresh_interval);
  if (absl::Status s = impl->certificate->Load(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--http-listen: ", s.message()));
  }
  impl->certificate->Install(impl->tls.native_handle());

  impl->acceptor.open(endpoint->protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(*endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("--http-listen ", config.listen, ": ", ec.message()));

  impl->channel = std::move(channel);
  impl->invoke = v1::InvokeService::NewStub(impl->channel);
  impl->admin = v1::AdminService::NewStub(impl->channel);
  impl->context.invoke = impl->invoke.get();
  impl->context.admin = impl->admin.get();
  impl->context.ready = std::move(ready);
  impl->context.request_timeout = config.request_timeout;
  impl->context.max_body_bytes = config.max_body_bytes;
  impl->Accept();
  for (int i = 0; i < config.threads; ++i) {
    impl->threads.emplace_back([io = &impl->io] { io->run(); });
  }
  return std::unique_ptr<HttpGateway>(new HttpGateway(std::move(impl)));
}

HttpGateway::HttpGateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpGateway::~HttpGateway() { Stop(); }

int HttpGateway::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpGateway::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  net::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  if (!Generation::WaitUntilNone(absl::Now() + absl::Seconds(10))) {
    spdlog::warn("HTTP gateway: generations still open 10 s after the server stopped; exiting with them");
  }
  impl_->io.stop();
  for (std::thread& t : impl_->threads) t.join();
}

}  // namespace gantry::api::http
