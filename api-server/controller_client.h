// Calls a controller's ControllerService over mTLS as spiffe://gantry/api-server.
// An interface because tests substitute a fake; GrpcControllerClient is the real one.
// Thread-safe: any handler thread may call it.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redialer.h"
#include "gantry/v1/controller_service.grpc.pb.h"

namespace gantry::api {

class ControllerClient {
 public:
  virtual ~ControllerClient() = default;
  // `timeout`: at most this long; zero means the client's own call timeout.
  virtual absl::StatusOr<v1::ControllerSessionResponse> CreateSession(
      const std::string& endpoint, const v1::ControllerCreateSessionRequest& request, absl::Duration timeout) = 0;
  virtual absl::StatusOr<v1::ControllerSessionResponse> DeleteSession(
      const std::string& endpoint, const std::string& session_id) = 0;
  // Hibernate (true) or wake (false).
  virtual absl::StatusOr<v1::ControllerSessionResponse> SetHibernated(
      const std::string& endpoint, const std::string& session_id, bool hibernate) = 0;
  // Tells the running controller it is cordoned, or no longer; it answers with its capacity.
  virtual absl::StatusOr<v1::SetCordonedResponse> TellCordoned(const std::string& endpoint,
                                                               const std::string& controller_id, bool cordoned) = 0;
  // Hands a rotated token to the running controller.
  virtual absl::Status HandOverToken(const std::string& endpoint, const std::string& controller_id,
                                     const std::string& token) = 0;
  virtual absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const std::string& endpoint,
                                                              absl::Duration timeout) = 0;
  // Health-checks every endpoint, many at once (at most `parallel` in flight, each for at most
  // `timeout`); the answer for endpoints[i] is at [i]. A fleet of thousands is checked in about
  // the time of its slowest checks, not of all of them in turn.
  virtual std::vector<absl::StatusOr<v1::HealthCheckResponse>> HealthCheckAll(
      const std::vector<std::string>& endpoints, absl::Duration timeout, int parallel) = 0;
  virtual absl::StatusOr<v1::SessionMetricsResponse> GetSessionMetrics(
      const std::string& endpoint, const std::string& session_id) = 0;
  // The controller at `endpoint` for a call on gRPC's callback API (the invoke relay): its
  // stub, on the channel every call there shares, to keep for the whole call; null if there
  // is none. A call that found it UNAVAILABLE before any answer says so with Unavailable, and
  // the next call dials afresh.
  virtual std::shared_ptr<v1::ControllerService::StubInterface> AsyncStub(const std::string& endpoint) = 0;
  virtual void Unavailable(const std::string& endpoint) = 0;
};

class GrpcControllerClient : public ControllerClient {
 public:
  GrpcControllerClient(std::shared_ptr<grpc::ChannelCredentials> creds, absl::Duration timeout)
      : creds_(std::move(creds)), timeout_(timeout) {}

  absl::StatusOr<v1::ControllerSessionResponse> CreateSession(
      const std::string& endpoint, const v1::ControllerCreateSessionRequest& request, absl::Duration timeout) override;
  absl::StatusOr<v1::ControllerSessionResponse> DeleteSession(
      const std::string& endpoint, const std::string& session_id) override;
  absl::StatusOr<v1::ControllerSessionResponse> SetHibernated(
      const std::string& endpoint, const std::string& session_id, bool hibernate) override;
  absl::StatusOr<v1::SetCordonedResponse> TellCordoned(const std::string& endpoint, const std::string& controller_id,
                                                       bool cordoned) override;
  absl::Status HandOverToken(const std::string& endpoint, const std::string& controller_id,
                             const std::string& token) override;
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const std::string& endpoint,
                                                      absl::Duration timeout) override;
  std::vector<absl::StatusOr<v1::HealthCheckResponse>> HealthCheckAll(const std::vector<std::string>& endpoints,
                                                                      absl::Duration timeout, int parallel) override;
  absl::StatusOr<v1::SessionMetricsResponse> GetSessionMetrics(
      const std::string& endpoint, const std::string& session_id) override;
  std::shared_ptr<v1::ControllerService::StubInterface> AsyncStub(const std::string& endpoint) override {
    return StubFor(endpoint);
  }
  void Unavailable(const std::string& endpoint) override {
    (void)Forget(endpoint, grpc::Status(grpc::StatusCode::UNAVAILABLE, ""));
  }

 private:
  struct Link {
    std::unique_ptr<Redialer> dial;
    std::shared_ptr<grpc::Channel> channel;  // The one `stub` is on.
    std::shared_ptr<v1::ControllerService::Stub> stub;
  };
  // Callers hold the returned stub for the whole call (streams included).
  std::pair<std::shared_ptr<grpc::Channel>, std::shared_ptr<v1::ControllerService::Stub>> LinkFor(
      const std::string& endpoint);
  std::shared_ptr<v1::ControllerService::Stub> StubFor(const std::string& endpoint) { return LinkFor(endpoint).second; }
  // After UNAVAILABLE the next call dials afresh (Redialer::Failed).
  absl::Status Forget(const std::string& endpoint, const grpc::Status& status);

  std::shared_ptr<grpc::ChannelCredentials> creds_;
  absl::Duration timeout_;
  std::mutex mu_;
  // One channel per controller endpoint, reused across calls. shared_ptr: a call in flight
  // keeps its stub alive while a redial replaces it.
  std::map<std::string, Link> links_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::api
