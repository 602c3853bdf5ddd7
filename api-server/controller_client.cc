#include "api-server/controller_client.h"

#include <grpcpp/create_channel.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/request_ids.h"
#include "common/status.h"
#include "common/tls.h"

namespace gantry::api {

namespace {
// How long a placement waits for a connection to a controller it has none to. A controller
// that cannot be reached in this long (a one-way partition drops the handshake; a wrong
// advertised address) never got the request: that is a refusal, and the create moves on to
// the next candidate instead of waiting out its deadline.
constexpr absl::Duration kPlacementConnectBound = absl::Seconds(3);
}  // namespace

std::pair<std::shared_ptr<grpc::Channel>, std::shared_ptr<v1::ControllerService::Stub>> GrpcControllerClient::LinkFor(
    const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = links_[endpoint];
  if (link.dial == nullptr) link.dial = std::make_unique<Redialer>(endpoint, creds_, Redialer::Policy{});
  std::shared_ptr<grpc::Channel> channel = link.dial->Channel();
  if (channel != link.channel) {
    link.channel = channel;
    link.stub = std::shared_ptr<v1::ControllerService::Stub>(v1::ControllerService::NewStub(channel));
  }
  return {link.channel, link.stub};
}

absl::Status GrpcControllerClient::Forget(const std::string& endpoint, const grpc::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = links_.find(endpoint);
    if (it != links_.end()) it->second.dial->Failed(status);
  }
  return Annotate(FromGrpcStatus(status), absl::StrCat("controller at ", endpoint));
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::CreateSession(
    const std::string& endpoint, const v1::ControllerCreateSessionRequest& request, absl::Duration timeout) {
  const absl::Time deadline =
      absl::Now() + (timeout > absl::ZeroDuration() ? std::min(timeout, timeout_) : timeout_);
  v1::ControllerSessionResponse response;
  grpc::Status s;
  // A connection that broke unnoticed (a partition that healed, a controller restarted behind
  // the same address) fails the first call on it, UNAVAILABLE. The controller takes the same
  // session id at most once, so it is asked once more on a new connection within the deadline.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto [channel, stub] = LinkFor(endpoint);
    if (!channel->WaitForConnected(absl::ToChronoTime(std::min(deadline, absl::Now() + kPlacementConnectBound)))) {
      s = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                       absl::StrCat("not reachable: no connection within ", absl::FormatDuration(kPlacementConnectBound)));
      break;
    }
    grpc::ClientContext ctx;
    AddRequestId(&ctx);
    ctx.set_deadline(absl::ToChronoTime(deadline));
    s = stub->CreateSession(&ctx, request, &response);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    (void)Forget(endpoint, s);
    if (absl::Now() >= deadline) break;
  }
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::DeleteSession(
    const std::string& endpoint, const std::string& session_id) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  // Only this controller can do it: ride out a reconnect (e.g. it just restarted) within the
  // deadline rather than fail at once.
  ctx.set_wait_for_ready(true);
  v1::ControllerSessionRequest request;
  request.set_session_id(session_id);
  v1::ControllerSessionResponse response;
  grpc::Status s = StubFor(endpoint)->DeleteSession(&ctx, request, &response);
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}

absl::StatusOr<v1::ControllerSessionResponse> GrpcControllerClient::SetHibernated(
    const std::string& endpoint, const std::string& session_id, bool hibernate) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  ctx.set_wait_for_ready(true);  // As for DeleteSession.
  v1::ControllerSessionRequest request;
  request.set_session_id(session_id);
  v1::ControllerSessionResponse response;
  auto stub = StubFor(endpoint);
  grpc::Status s = hibernate ? stub->HibernateSession(&ctx, request, &response)
                             : stub->WakeSession(&ctx, request, &response);
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}

absl::StatusOr<v1::SetCordonedResponse> GrpcControllerClient::TellCordoned(const std::string& endpoint,
                                                                           const std::string& controller_id,
                                                                           bool cordoned) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + std::min(timeout_, absl::Seconds(2))));
  v1::SetCordonedRequest request;
  request.set_controller_id(controller_id);
  request.set_cordoned(cordoned);
  v1::SetCordonedResponse response;
  grpc::Status s = StubFor(endpoint)->SetCordoned(&ctx, request, &response);
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}

absl::Status GrpcControllerClient::HandOverToken(const std::string& endpoint, const std::string& controller_id,
                                                 const std::string& token) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + std::min(timeout_, absl::Seconds(5))));
  v1::AdoptTokenRequest request;
  request.set_controller_id(controller_id);
  request.set_controller_token(token);
  v1::AdoptTokenResponse response;
  grpc::Status s = StubFor(endpoint)->AdoptToken(&ctx, request, &response);
  if (!s.ok()) return Forget(endpoint, s);
  return absl::OkStatus();
}

absl::StatusOr<v1::ListWorkersResponse> GrpcControllerClient::ListWorkers(
    const std::string& endpoint, absl::Duration timeout) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::ListWorkersResponse response;
  grpc::Status s = StubFor(endpoint)->ListWorkers(&ctx, v1::ListWorkersRequest(), &response);
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}

std::vector<absl::StatusOr<v1::HealthCheckResponse>> GrpcControllerClient::HealthCheckAll(
    const std::vector<std::string>& endpoints, absl::Duration timeout, int parallel) {
  struct Call {
    std::shared_ptr<v1::ControllerService::Stub> stub;  // held for the call
    grpc::ClientContext ctx;
    v1::HealthCheckRequest request;
    v1::HealthCheckResponse response;
  };
  const size_t n = endpoints.size();
  std::vector<absl::StatusOr<v1::HealthCheckResponse>> answers(n, absl::InternalError("not checked"));
  std::vector<std::unique_ptr<Call>> calls(n);
  std::mutex mu;
  std::condition_variable cv;
  size_t started = 0, finished = 0;
  const size_t window = static_cast<size_t>(std::max(parallel, 1));
  std::unique_lock<std::mutex> lock(mu);
  while (finished < n) {
    // This thread starts the calls; their callbacks only record the answers. Bounded, so a new
    // leader's first round does not start thousands of TLS handshakes at once.
    while (started < n && started - finished < window) {
      const size_t i = started++;
      lock.unlock();
      auto& call = calls[i] = std::make_unique<Call>();
      call->stub = StubFor(endpoints[i]);
      AddRequestId(&call->ctx);
      call->ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
      call->stub->async()->HealthCheck(&call->ctx, &call->request, &call->response,
                                       [&, i](grpc::Status s) {
        absl::StatusOr<v1::HealthCheckResponse> answer =
            s.ok() ? absl::StatusOr<v1::HealthCheckResponse>(std::move(calls[i]->response))
                   : Forget(endpoints[i], s);
        std::lock_guard<std::mutex> done(mu);
        answers[i] = std::move(answer);
        ++finished;
        cv.notify_one();
      });
      lock.lock();
    }
    cv.wait(lock, [&] { return finished == n || (started < n && started - finished < window); });
  }
  return answers;
}

absl::StatusOr<v1::SessionMetricsResponse> GrpcControllerClient::GetSessionMetrics(
    const std::string& endpoint, const std::string& session_id) {
  grpc::ClientContext ctx;
  AddRequestId(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + std::min(timeout_, absl::Seconds(5))));
  v1::ControllerSessionRequest request;
  request.set_session_id(session_id);
  v1::SessionMetricsResponse response;
  grpc::Status s = StubFor(endpoint)->GetSessionMetrics(&ctx, request, &response);
  if (!s.ok()) return Forget(endpoint, s);
  return response;
}


}  // namespace gantry::api
