#include "common/grpc_server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/keepalive.h"
#include "common/reflection_service.h"
#include "common/request_ids.h"
#include "common/rpc_metrics.h"

namespace gantry {

void ApplyKeepalive(grpc::ServerBuilder& builder) {
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Our own clients ping every 2 s (tls.cc), which may arrive closer together under load.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, kMinPingIntervalMs);
}

absl::StatusOr<RunningServer> StartGrpcServer(const std::string& listen_address,
                                              std::shared_ptr<grpc::ServerCredentials> creds,
                                              const std::vector<grpc::Service*>& services,
                                              const ServerLimits& limits) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.SetOption(ReflectionFromEmbeddedDescriptors());
  RunningServer running;
  builder.AddListeningPort(listen_address, std::move(creds), &running.port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(limits.max_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_message_bytes);
  if (limits.max_concurrent_calls > 0) {
    grpc::ResourceQuota quota("gantry-server");
    // The synchronous server's pollers take threads of the same quota.
    quota.SetMaxThreads(limits.max_concurrent_calls + 4);
    builder.SetResourceQuota(quota);
  }
  ApplyKeepalive(builder);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RequestIdInterceptorFactory>());
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  running.server = builder.BuildAndStart();
  if (running.server == nullptr || running.port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen_address));
  }
  return running;
}

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

std::string WithPort(const std::string& host_port, int port) {
  auto colon = host_port.rfind(':');
  std::string host = colon == std::string::npos ? host_port : host_port.substr(0, colon);
  return absl::StrCat(host, ":", port);
}

}  // namespace gantry
