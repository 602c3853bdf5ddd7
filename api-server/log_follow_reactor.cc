#include "api-server/log_follow_reactor.h"

#include <utility>

#include "common/status.h"

namespace gantry::api {

LogFollowReactor* LogFollowReactor::Start(const LogFollowDeps& deps, grpc::CallbackServerContext* context,
                                          const v1::StreamLogsRequest& request) {
  auto* stream = new LogFollowReactor(deps, context, request);
  std::lock_guard<std::mutex> lock(stream->mu_);
  stream->QueueJobLocked([stream] { stream->Admit(); }, "log streams");
  return stream;
}

LogFollowReactor::LogFollowReactor(const LogFollowDeps& deps, grpc::CallbackServerContext* context,
                                   const v1::StreamLogsRequest& request)
    : RelayedStream(deps.jobs, deps.client, CopyCurrentRequestIds(), context->deadline()),
      deps_(deps),
      request_(request),
      credentials_(CallCredentials::Of(*context)) {}

void LogFollowReactor::Admit() {
  MaybeRequestIdScope scope(ids());
  bool cancelled = false;  // Before its turn came.
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = ended();
  }
  if (cancelled) {
    JobDone();
    return;
  }
  absl::Status ready = deps_.db->CheckReady();
  absl::StatusOr<Caller> caller = ready.ok() ? deps_.auth->AuthenticateClient(credentials_) : ready;
  absl::Status admitted = caller.status();
  std::optional<StreamQuota::Lease> lease;
  if (admitted.ok()) {
    auto acquired = deps_.streams->Acquire(caller->principal);
    admitted = acquired.status();
    if (acquired.ok()) lease.emplace(std::move(*acquired));
  }
  std::optional<LogUpstream> upstream;
  if (admitted.ok()) {
    auto found = deps_.sessions->LogUpstreamOf(*caller, request_);
    admitted = found.status();
    if (found.ok()) upstream = *std::move(found);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease.has_value()) lease_.emplace(std::move(*lease));
    if (!admitted.ok()) EndLocked(ToGrpcStatus(admitted));
  }
  if (!upstream.has_value()) {
    JobDone();
    return;
  }
  upstream_request_ = std::move(upstream->request);
  Relay(upstream->controller, [this](v1::ControllerService::StubInterface* stub, grpc::ClientContext* context,
                                     grpc::ClientReadReactor<v1::LogEntry>* reactor) {
    stub->async()->StreamLogs(context, &upstream_request_, reactor);
  });
}

}  // namespace gantry::api
