// Who a session's process runs as. A session is a tenant's code: it runs under a uid of its
// own from a configured range (and a group of the same number), never the worker's, so the
// worker's keys, environment and state, and every other session's files and processes, are
// another user's to it. The development mode that runs sessions as the worker's own user says
// so in the log at every session start.
#pragma once

#include <sys/types.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace gantry::worker {

// What the session process becomes before exec. `drop` false: it stays the worker's user.
struct SessionUser {
  bool drop = true;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups (those GPU devices need), nothing else

  static SessionUser Unchanged() {
    SessionUser user;
    user.drop = false;
    return user;
  }
};

// Makes `path` a directory of `user`'s own, mode 0700 (chowned before it is opened up, so it
// is never the user's while open to others; one already there is fixed up the same way).
absl::StatusOr<std::string> MakeOwnHome(const std::string& path, const SessionUser& user);

// OK if every directory above `dir` lets other users through (o+x): sessions of their own
// uids reach their homes under it. FAILED_PRECONDITION naming the first that does not.
absl::Status CheckSearchableByOthers(const std::string& dir);

class SessionIdentities {
 public:
  // `uid_range` "FIRST-LAST" (e.g. "200000-265535"); `groups` comma-separated group names or
  // numbers; `as_worker_user` the development mode. Exactly one of a range and that mode; the
  // range must leave out root and the worker's own uid.
  static absl::StatusOr<SessionIdentities> Create(const std::string& uid_range, const std::string& groups,
                                                  bool as_worker_user);

  SessionIdentities(SessionIdentities&& other) noexcept;

  // The uid a session runs as: its own while it lives (the same one again for the same id).
  // RESOURCE_EXHAUSTED when every uid of the range is taken.
  absl::StatusOr<SessionUser> Acquire(const std::string& session_id);
  void Release(const std::string& session_id);
  // Takes `uid` under `key` as Acquire would have, for a home an earlier run of the worker left
  // behind (its session died with it): no session is given that uid before the home is gone.
  // INVALID_ARGUMENT for a uid outside the range (a directory that is no session's),
  // ALREADY_EXISTS for one taken. In the development mode: the worker's own uid, unchanged.
  absl::StatusOr<SessionUser> Hold(const std::string& key, uid_t uid);

  bool isolated() const { return !as_worker_user_; }

  // Who capability handlers (exec and persistent) run as: `flag` is --handler-user, "UID[:GID]"
  // or a user name; neither root, the worker's uid nor a uid of the session range. With
  // sessions isolated it is required (FAILED_PRECONDITION) for a worker that serves
  // capabilities; in the development mode an empty one leaves them the worker's user.
  absl::StatusOr<SessionUser> HandlerUser(const std::string& flag) const;

 private:
  SessionIdentities() = default;

  bool as_worker_user_ = false;
  uid_t first_ = 0, last_ = 0;
  std::vector<gid_t> groups_;
  std::mutex mu_;
  std::map<std::string, uid_t> by_session_;
  std::set<uid_t> taken_;
  uid_t next_ = 0;  // where the search for a free uid starts: spreads reuse over the range
};

}  // namespace gantry::worker
