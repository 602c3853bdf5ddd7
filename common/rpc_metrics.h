// RPC metrics for every Gantry gRPC server, with the conventional names of the Prometheus gRPC
// middleware: grpc_server_handled_total{grpc_service,grpc_method,grpc_code} and the
// grpc_server_handling_seconds histogram (a stream counts from its start to its status).
#pragma once

#include <grpcpp/support/server_interceptor.h>

namespace gantry {

class RpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace gantry
