// WorkerService: workers register (a unary call) and hold a Connect stream (a reactor per
// connected worker: worker_connect_reactor.h). Every call needs a worker certificate whose name
// matches.
#pragma once

#include "controller/fleet.h"
#include "controller/credit_relay.h"
#include "gantry/v1/worker_service.grpc.pb.h"

namespace gantry::controller {

class WorkerServiceImpl final : public v1::WorkerService::WithCallbackMethod_Connect<v1::WorkerService::Service> {
 public:
  WorkerServiceImpl(Fleet* fleet, LogRelay* logs, InvokeRelay* invokes, absl::Duration heartbeat_interval)
      : fleet_(fleet), logs_(logs), invokes_(invokes), heartbeat_interval_(heartbeat_interval) {}

  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::ServerBidiReactor<v1::WorkerMessage, v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  Fleet* fleet_;
  LogRelay* logs_;
  InvokeRelay* invokes_;
  absl::Duration heartbeat_interval_;
};

}  // namespace gantry::controller
