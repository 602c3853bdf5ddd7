// Wakes WatchSession calls when their session changes, whichever replica changed it: one
// dedicated PostgreSQL connection per replica LISTENs on gantry_sessions (migration 0002's
// trigger NOTIFYs "<id>:<version>" on every committed change) and signals the subscribers of
// that id. After a lost connection every subscriber is woken, since notifications may have
// been missed meanwhile; subscribers re-read the session, so a spurious wake costs one read.
//
// Thread-safe. Bounded: at most `max_watchers` subscriptions per replica.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gantry::api {

class SessionWatchHub {
 public:
  class Subscription {
   public:
    ~Subscription();
    // True if the session (may have) changed since the last call; false after `timeout`.
    bool Wait(absl::Duration timeout);

   private:
    friend class SessionWatchHub;
    Subscription(SessionWatchHub* hub, std::string id, std::function<void()> on_change)
        : hub_(hub), id_(std::move(id)), on_change_(std::move(on_change)) {}
    void Signal();  // Under hub_->mu_.
    SessionWatchHub* hub_;
    std::string id_;
    std::function<void()> on_change_;  // Set: called instead of waking Wait.
    bool signalled_ = false;  // Guarded by hub_->mu_.
    // Its own, so that a change wakes the calls waiting on that session and no others (a burst
    // of creates waiting for RUNNING would otherwise wake each other once per change).
    std::condition_variable changed_;
  };

  explicit SessionWatchHub(std::string dsn, size_t max_watchers = 10000,
                           absl::Duration recheck = absl::Seconds(30));
  ~SessionWatchHub();

  void Start();
  void Stop();

  absl::StatusOr<std::unique_ptr<Subscription>> Subscribe(const std::string& session_id);
  // As Subscribe, but each change calls `on_change` (from the hub's thread, under its lock: it
  // must only queue work, never block or call into the hub) instead of waking Wait. Once the
  // subscription is destroyed it is not called again, nor running. For reactors, which never
  // wait. These are also called every `recheck` (30 s) whatever happened: a safety net for a
  // notification lost in a way the hub could not tell, not the mechanism.
  absl::StatusOr<std::unique_ptr<Subscription>> SubscribeCalls(const std::string& session_id,
                                                              std::function<void()> on_change);
  void Notify(const std::string& session_id);

 private:
  void Loop();
  void NotifyAll();

  const std::string dsn_;
  const size_t max_watchers_;
  const absl::Duration recheck_;
  std::mutex mu_;
  std::condition_variable cv_;  // The listener's pause between reconnects.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  size_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::set<Subscription*>> by_session_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace gantry::api
