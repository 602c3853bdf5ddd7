// How every Gantry process reaches a peer it depends on (the API server, a controller): the
// peer's addresses (a comma-separated list, as the flags take them), one channel to one of them
// kept while calls on it go through, and after a call fails UNAVAILABLE (or a stream on it
// ends) a fresh channel to the next address: a gRPC channel can stay stuck in its own
// reconnect backoff after its peer restarts behind the same address, and a fresh one is never
// stuck. Channels come from CreateInternalChannel (TLS, keepalive, reconnect bounds: one
// policy), and the waits between attempts from one jittered backoff that doubles while
// attempts fail and starts over once one works.
//
// Thread-safe.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/backoff.h"

namespace gantry {

class Redialer {
 public:
  struct Policy {
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(10);
  };
  // Asked at every dial (certificates rotate); null when there are none to offer now.
  using Credentials = std::function<std::shared_ptr<grpc::ChannelCredentials>()>;

  Redialer(const std::string& addresses, Credentials credentials, Policy policy);
  Redialer(const std::string& addresses, std::shared_ptr<grpc::ChannelCredentials> credentials, Policy policy);

  // The channel calls go on now, dialed on first use; null if the credentials are missing.
  std::shared_ptr<grpc::Channel> Channel();
  // The address Channel() leads to (the first one before any dial).
  std::string address() const;
  // A call on the channel ended with `status`. UNAVAILABLE (the peer, or the connection to it,
  // is gone): the next Channel() is a fresh one to the next address. True if so.
  bool Failed(const grpc::Status& status);
  // Done with this channel (a stream on it ended): the next Channel() is a fresh one to the
  // next address.
  void Redial();
  // How long to wait before the next attempt after a failure: doubles each time (full jitter).
  absl::Duration Backoff();
  // An attempt worked: the next failure waits the shortest time again.
  void Recovered();

 private:
  void DialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::vector<std::string> addresses_;
  const Credentials credentials_;
  mutable std::mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;     // The address the next dial takes.
  size_t current_ ABSL_GUARDED_BY(mu_) = 0;  // The address of channel_.
  std::shared_ptr<grpc::Channel> channel_ ABSL_GUARDED_BY(mu_);
  gantry::Backoff backoff_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry
