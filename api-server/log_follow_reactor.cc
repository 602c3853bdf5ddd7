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
  if (!StillWanted()) return;
  absl::StatusOr<StreamAdmission> admission = AdmitStream(deps_.db, deps_.auth, deps_.streams, credentials_);
  absl::Status admitted = admission.status();
  std::optional<LogUpstream> upstream;
  if (admitted.ok()) {
    auto found = deps_.sessions->LogUpstreamOf(admission->caller, request_);
    admitted = found.status();
    if (found.ok()) upstream = *std::move(found);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (admission.ok()) lease_.emplace(std::move(admission->lease));
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
