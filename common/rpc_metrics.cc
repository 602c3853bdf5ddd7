#include "common/rpc_metrics.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/metrics.h"

namespace gantry {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit RpcMetricsInterceptor(const char* method) : start_(absl::Now()) {
    // "/gantry.v1.SessionService/CreateSession"
    std::string full = method == nullptr ? "" : method;
    size_t slash = full.rfind('/');
    service_ = slash == std::string::npos || slash == 0 ? "unknown" : full.substr(1, slash - 1);
    method_ = slash == std::string::npos ? full : full.substr(slash + 1);
  }

  // A call the client abandoned may end without a status of ours: it counts as CANCELLED.
  ~RpcMetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Record(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    const std::string code_name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
    Metrics& m = Metrics::Global();
    m.CounterAdd("grpc_server_handled_total", "RPCs completed on the server, by method and status code",
                 {{"grpc_service", service_}, {"grpc_method", method_}, {"grpc_code", code_name}});
    m.Observe("grpc_server_handling_seconds", "Time from an RPC's start to its status, by method",
              {{"grpc_service", service_}, {"grpc_method", method_}}, absl::ToDoubleSeconds(absl::Now() - start_));
  }

  absl::Time start_;
  std::string service_;
  std::string method_;
  bool recorded_ = false;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(info->method());
}

}  // namespace gantry
