#include "api-server/controller_client.h"

#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace gantry::api {

v1::ControllerService::Stub* GrpcControllerClient::StubFor(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& stub = stubs_[endpoint];
  if (stub == nullptr) {
    stub = v1::ControllerService::NewStub(grpc::CreateChannel(endpoint, creds_));
  }
  return stub.get();
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::CreateSession(
    const std::string& endpoint, const v1::ControllerCreateSessionRequest& request) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  v1::ControllerSessionResponse response;
  grpc::Status s = StubFor(endpoint)->CreateSession(&ctx, request, &response);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), absl::StrCat("controller at ", endpoint));
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::DeleteSession(
    const std::string& endpoint, const std::string& session_id) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  v1::ControllerSessionRequest request;
  request.set_session_id(session_id);
  v1::ControllerSessionResponse response;
  grpc::Status s = StubFor(endpoint)->DeleteSession(&ctx, request, &response);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), absl::StrCat("controller at ", endpoint));
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::SetHibernated(
    const std::string& endpoint, const std::string& session_id, bool hibernate) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  v1::ControllerSessionRequest request;
  request.set_session_id(session_id);
  v1::ControllerSessionResponse response;
  auto* stub = StubFor(endpoint);
  grpc::Status s = hibernate ? stub->HibernateSession(&ctx, request, &response)
                             : stub->WakeSession(&ctx, request, &response);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), absl::StrCat("controller at ", endpoint));
  return response;
}

absl::StatusOr<v1::ListWorkersResponse> GrpcControllerClient::ListWorkers(
    const std::string& endpoint, absl::Duration timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::ListWorkersResponse response;
  grpc::Status s = StubFor(endpoint)->ListWorkers(&ctx, v1::ListWorkersRequest(), &response);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), absl::StrCat("controller at ", endpoint));
  return response;
}

}  // namespace gantry::api
