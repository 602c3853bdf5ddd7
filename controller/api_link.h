// The controller's side of RegistryService: registers with the API server (retrying with
// backoff until it is up), heartbeats what the node has and does, and deregisters on shutdown.
// It also carries the one route of session phase changes: every change the Fleet reports is
// numbered in a stream new to this process, sent in order, and kept until the API server
// acknowledges its sequence, so a lost answer or a lost API server resends from the first
// change not acknowledged and the API server applies each once.
#pragma once

#include <grpcpp/security/credentials.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/redialer.h"
#include "controller/fleet.h"
#include "gantry/v1/registry_service.grpc.pb.h"

namespace gantry::controller {

struct ApiLinkConfig {
  std::string api_url;  // host:port, or several comma-separated: replicas tried in turn
  std::string join_token;
  std::string name;
  std::string type;
  std::string endpoint;
  std::map<std::string, std::string> labels;
  size_t max_pending_events = 100000;
};

class ApiLink {
 public:
  using StopFn = std::function<void(const std::string& session_id)>;

  ApiLink(ApiLinkConfig config, std::shared_ptr<grpc::ChannelCredentials> creds, Fleet* fleet,
          StopFn stop_session);
  ~ApiLink();

  void Start();
  // Flushes pending events (bounded by `deadline`), deregisters, stops the thread.
  void Shutdown(absl::Time deadline);

  // Numbers `event` and queues it for the API server. Thread-safe; never blocks on the network.
  void Report(v1::SessionEvent event);
  // Events reported and not yet acknowledged.
  size_t unacknowledged() const;

  bool registered() const;
  // The id the API server gave this controller; "" before registration.
  std::string controller_id() const;
  // Uses `token` (rotated by the API server) from the next call on; refused for another id,
  // or before registration.
  absl::Status AdoptToken(const std::string& controller_id, const std::string& token);

 private:
  void Loop();
  bool Register();
  bool SendHeartbeat();
  bool FlushEvents();
  // Stops the sessions the API server said it no longer wants.
  void StopUnwanted(const google::protobuf::RepeatedPtrField<std::string>& ids);

  ApiLinkConfig config_;
  // config_.api_url's addresses: a fresh channel to the next one after UNAVAILABLE, and the
  // waits between attempts.
  Redialer api_;
  // On api_'s channel now. Loop thread only, and Shutdown after the loop has stopped.
  std::unique_ptr<v1::RegistryService::Stub> stub_;
  std::shared_ptr<grpc::Channel> stub_channel_;
  v1::RegistryService::Stub& Stub();
  void Redial(const grpc::Status& status);
  Fleet* fleet_;
  StopFn stop_session_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Numbered events not yet acknowledged, oldest first.
  std::deque<v1::SessionEvent> pending_ ABSL_GUARDED_BY(mu_);
  const std::string stream_id_;  // New at each start: a restarted controller numbers from 1 again.
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  std::string controller_id_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  absl::Time last_heartbeat_ = absl::InfinitePast();  // Loop thread only.
  std::thread thread_;
};

}  // namespace gantry::controller
