#include "tools/bench/echo_relay.h"

#include <grpcpp/client_context.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_server.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::bench {
namespace {

// Echoes the payload as one chunk, or "STREAM n size" as n chunks, like the echo handler.
class Echo final : public v1::InvokeService::Service {
  grpc::Status Invoke(grpc::ServerContext*, const v1::InvokeRequest* request,
                      grpc::ServerWriter<v1::InvokeChunk>* writer) override {
    int n = 0, size = 0;
    v1::InvokeChunk chunk;
    if (std::sscanf(request->payload().c_str(), "STREAM %d %d", &n, &size) == 2) {
      chunk.set_data(std::string(static_cast<size_t>(size), 'x'));
      for (int i = 0; i < n; ++i) {
        chunk.set_sequence(i);
        if (!writer->Write(chunk)) return grpc::Status::CANCELLED;
      }
    } else {
      chunk.set_data(request->payload());
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }
};

// Passes each request to the next hop and its chunks back.
class Relay final : public v1::InvokeService::Service {
 public:
  explicit Relay(std::shared_ptr<grpc::Channel> next) : next_(v1::InvokeService::NewStub(next)) {}
  grpc::Status Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* request,
                      grpc::ServerWriter<v1::InvokeChunk>* writer) override {
    auto call = grpc::ClientContext::FromServerContext(*ctx);
    auto reader = next_->Invoke(call.get(), *request);
    v1::InvokeChunk chunk;
    while (reader->Read(&chunk)) {
      if (!writer->Write(chunk)) call->TryCancel();
    }
    return reader->Finish();
  }

 private:
  std::unique_ptr<v1::InvokeService::Stub> next_;
};

}  // namespace

struct EchoRelay::Impl {
  std::vector<std::unique_ptr<grpc::Service>> services;
  std::vector<std::unique_ptr<grpc::Server>> servers;
  std::string front;
};

EchoRelay::EchoRelay(const TlsFiles& tls, int relays) : impl_(std::make_unique<Impl>()) {
  auto server_creds = MakeServerCredentials(tls, ClientCertPolicy::kRequire);
  auto client_creds = MakeChannelCredentials(tls);
  std::string next;
  for (int hop = 0; hop <= relays; ++hop) {
    if (hop == 0) {
      impl_->services.push_back(std::make_unique<Echo>());
    } else {
      impl_->services.push_back(std::make_unique<Relay>(CreateInternalChannel(next, *client_creds)));
    }
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *server_creds, &port);
    ApplyKeepalive(builder);  // As Gantry's servers: the relays' clients are Gantry's channels.
    builder.RegisterService(impl_->services.back().get());
    impl_->servers.push_back(builder.BuildAndStart());
    next = absl::StrCat("127.0.0.1:", port);
  }
  impl_->front = next;
}

EchoRelay::~EchoRelay() {
  for (auto it = impl_->servers.rbegin(); it != impl_->servers.rend(); ++it) (*it)->Shutdown();
}

std::string EchoRelay::address() const { return impl_->front; }

}  // namespace gantry::bench
