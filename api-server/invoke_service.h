// InvokeService: capability-routed streaming. Picks a healthy, uncordoned controller whose
// workers serve the capability at a matching version (least busy first), and relays the
// controller's chunks to the client as they come. A controller that refuses before the first
// chunk (busy, or its worker failed) passes the request to the next one; after the first chunk
// a failure ends the stream. The client's deadline and cancellation reach the handler.
#pragma once

#include "api-server/invoke_reactor.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api {

// On gRPC's callback API (InvokeReactor): an invoke in flight parks no thread here.
class InvokeServiceImpl final : public v1::InvokeService::CallbackService {
 public:
  // `store` answers ListCapabilities.
  InvokeServiceImpl(const InvokeDeps& deps, ControllerStore* store) : deps_(deps), store_(store) {}

  grpc::ServerWriteReactor<v1::InvokeChunk>* Invoke(grpc::CallbackServerContext* ctx,
                                                    const v1::InvokeRequest* request) override;
  // On the invokes' pool: it asks PostgreSQL (the key, then the controllers).
  grpc::ServerUnaryReactor* ListCapabilities(grpc::CallbackServerContext* ctx,
                                             const v1::ListCapabilitiesRequest* request,
                                             v1::ListCapabilitiesResponse* response) override;

 private:
  const InvokeDeps deps_;
  ControllerStore* const store_;
};

}  // namespace gantry::api
