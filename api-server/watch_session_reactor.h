// WatchSession on gRPC's callback API: an open watch parks no thread. It is this object, a
// change subscription and a stream lease; admission (the database check, an API key looked up
// in PostgreSQL), the first read and each re-read after a change run as jobs on a small pool
// shared by every watch, and a reaction never blocks.
//
// A watch sends the session as it is, then again each time its version changes, until it is
// terminal (then OK), the client goes (CANCELLED) or a read fails (that status). Changes that
// land faster than a read coalesce: the watcher sees the latest state, and always the terminal
// one. At most one read of a watch is queued or running at a time, so the pool's queue never
// holds more jobs than there are watches.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "api-server/authenticator.h"
#include "api-server/database_monitor.h"
#include "api-server/session_manager.h"
#include "api-server/session_watch_hub.h"
#include "api-server/stream_admission.h"
#include "api-server/stream_quota.h"
#include "common/request_ids.h"
#include "common/work_pool.h"
#include "gantry/v1/session_service.grpc.pb.h"

namespace gantry::api {

struct WatchSessionDeps {
  const DatabaseMonitor* db;
  Authenticator* auth;
  StreamQuota* streams;
  SessionManager* sessions;
  SessionWatchHub* watches;
  WorkPool* reads;  // Drained (not stopped) at shutdown: a queued job owns its watch.
};

class WatchSessionReactor final : public grpc::ServerWriteReactor<v1::Session> {
 public:
  // Starts watching `session_id` for the call of `context`; the reactor deletes itself once
  // gRPC is done with the call and no job of its own is queued or running.
  static WatchSessionReactor* Start(const WatchSessionDeps& deps, grpc::CallbackServerContext* context,
                                    std::string session_id);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  WatchSessionReactor(const WatchSessionDeps& deps, grpc::CallbackServerContext* context, std::string session_id);

  // Jobs on deps_.reads.
  void Admit();
  void Read();
  // Reads until no change came during the last read (or the watch ended).
  void ReadUntilCurrent();
  // The hub's thread: a change (or the periodic recheck).
  void Changed();

  // A read's result: written if it is news; then another read if a change came meanwhile.
  void TakeLocked(const absl::StatusOr<v1::Session>& session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes the call with `status` now, or when the write in flight completes.
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The end of a job: deletes the watch if gRPC is done with it. Takes the lock.
  void JobDone();
  // Unsubscribes (outside mu_: the hub calls Changed under its lock) and deletes.
  void Delete();

  const WatchSessionDeps deps_;
  const std::string session_id_;
  const CallCredentials credentials_;
  const std::optional<RequestIds> ids_;  // The call's, for the jobs' log lines.

  std::mutex mu_;
  std::optional<Caller> caller_ ABSL_GUARDED_BY(mu_);
  std::optional<StreamQuota::Lease> lease_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<SessionWatchHub::Subscription> subscription_ ABSL_GUARDED_BY(mu_);
  bool job_ ABSL_GUARDED_BY(mu_) = false;         // A job of this watch is queued or running.
  bool read_again_ ABSL_GUARDED_BY(mu_) = false;  // A change came while it read.
  int64_t latest_version_ ABSL_GUARDED_BY(mu_) = -1;  // Of the latest session written or queued.
  bool terminal_seen_ ABSL_GUARDED_BY(mu_) = false;  // Nothing will change any more.
  std::optional<v1::Session> next_ ABSL_GUARDED_BY(mu_);  // Waiting for the write in flight.
  v1::Session in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);  // Finish once the write in flight is done.
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone: gRPC is done with the call.
};

}  // namespace gantry::api
