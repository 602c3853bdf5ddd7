// InvokeService: capability-routed streaming. Picks a healthy, uncordoned controller whose
// workers serve the capability at a matching version (least busy first), and relays the
// controller's chunks to the client as they come. A controller that refuses before the first
// chunk (busy, or its worker failed) passes the request to the next one; after the first chunk
// a failure ends the stream. The client's deadline and cancellation reach the handler.
#pragma once

#include "api-server/authenticator.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/stream_quota.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api {

class InvokeServiceImpl final : public v1::InvokeService::Service {
 public:
  InvokeServiceImpl(Authenticator* auth, StreamQuota* streams, ControllerStore* controllers,
                    ControllerClient* client, int64_t max_payload_bytes, int max_attempts = 3)
      : auth_(auth), streams_(streams), controllers_(controllers), client_(client),
        max_payload_bytes_(max_payload_bytes), max_attempts_(max_attempts) {}

  grpc::Status Invoke(grpc::ServerContext* ctx, const v1::InvokeRequest* request,
                      grpc::ServerWriter<v1::InvokeChunk>* writer) override;

 private:
  Authenticator* auth_;
  StreamQuota* streams_;
  ControllerStore* controllers_;
  ControllerClient* client_;
  const int64_t max_payload_bytes_;
  const int max_attempts_;
};

}  // namespace gantry::api
