#include "worker/session_identity.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <cstdlib>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gantry::worker {
namespace {

absl::StatusOr<gid_t> ParseGroup(absl::string_view text) {
  uint32_t number = 0;
  if (absl::SimpleAtoi(text, &number)) return static_cast<gid_t>(number);
  std::string name(text);
  struct group* g = getgrnam(name.c_str());  // Start-up only, one thread.
  if (g == nullptr) return absl::InvalidArgumentError(absl::StrCat("--session-groups: no group \"", name, "\""));
  return g->gr_gid;
}

}  // namespace

absl::StatusOr<std::string> MakeOwnHome(const std::string& path, const SessionUser& user) {
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot make the home ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::InternalError(absl::StrCat("the home ", path, " is not a directory"));
  }
  const uid_t owner = user.drop ? user.uid : getuid();
  if (st.st_uid == owner && (st.st_mode & 07777) == 0700) return path;  // Made so by an earlier attempt.
  // Closed first, then given away: it is never the user's while open to others, and the mode
  // is set while the worker still owns it (after the chown, that would take CAP_FOWNER, which
  // the worker does without).
  if (chmod(path.c_str(), 0700) != 0 || (user.drop && chown(path.c_str(), user.uid, user.gid) != 0)) {
    return absl::InternalError(absl::StrCat("cannot give ", path, " to its user: ", std::strerror(errno)));
  }
  return path;
}

absl::Status CheckSearchableByOthers(const std::string& dir) {
  char resolved[PATH_MAX];
  if (realpath(dir.c_str(), resolved) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat("--session-dir: cannot resolve ", dir));
  }
  std::string path(resolved);
  while (true) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || path == "/") break;
    path = slash == 0 ? "/" : path.substr(0, slash);
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--session-dir: sessions run as other uids and cannot reach ", dir, ": ", path,
          " does not let other users through (chmod o+x it, or put the session directory elsewhere)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SessionIdentities> SessionIdentities::Create(const std::string& uid_range, const std::string& groups,
                                                            bool as_worker_user) {
  SessionIdentities out;
  if (as_worker_user) {
    if (!uid_range.empty()) {
      return absl::InvalidArgumentError("--session-uids and --sessions-as-worker-user: one or the other");
    }
    out.as_worker_user_ = true;
    return out;
  }
  if (uid_range.empty()) {
    return absl::InvalidArgumentError(
        "--session-uids: required, e.g. 200000-265535 (sessions are tenants' code and must not run as the "
        "worker's user); --sessions-as-worker-user runs them as the worker's user, for development only");
  }
  std::vector<absl::string_view> ends = absl::StrSplit(uid_range, '-');
  uint32_t first = 0, last = 0;
  constexpr uint32_t kMax = std::numeric_limits<int32_t>::max() - 1;  // (uid_t)-1 means "unchanged"
  if (ends.size() != 2 || !absl::SimpleAtoi(ends[0], &first) || !absl::SimpleAtoi(ends[1], &last) || first == 0 ||
      first > last || last > kMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("--session-uids: \"", uid_range, "\" is not FIRST-LAST with 0 < FIRST <= LAST <= ", kMax));
  }
  const uid_t self = getuid();
  if (self >= first && self <= last) {
    return absl::InvalidArgumentError(
        absl::StrCat("--session-uids: ", uid_range, " holds the worker's own uid ", self));
  }
  out.first_ = first;
  out.last_ = last;
  out.next_ = first;
  for (absl::string_view g : absl::StrSplit(groups, ',', absl::SkipEmpty())) {
    auto gid = ParseGroup(absl::StripAsciiWhitespace(g));
    if (!gid.ok()) return gid.status();
    if (*gid == 0) return absl::InvalidArgumentError("--session-groups: not root's group");
    out.groups_.push_back(*gid);
  }
  return out;
}

absl::StatusOr<SessionUser> SessionIdentities::HandlerUser(const std::string& flag) const {
  if (flag.empty()) {
    if (as_worker_user_) return SessionUser::Unchanged();
    return absl::FailedPreconditionError(
        "--handler-user: required to serve capabilities, e.g. 199999 (handlers take tenants' payloads and must "
        "not run as the worker's user); --sessions-as-worker-user runs them as the worker's user, for "
        "development only");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(flag, ':');
  uint32_t uid = 0, gid = 0;
  if (parts.size() > 2) return absl::InvalidArgumentError("--handler-user: UID[:GID] or a user name");
  if (absl::SimpleAtoi(parts[0], &uid)) {
    gid = uid;
  } else {
    std::string name(parts[0]);
    struct passwd* pw = getpwnam(name.c_str());  // Start-up only, one thread.
    if (pw == nullptr) return absl::InvalidArgumentError(absl::StrCat("--handler-user: no user \"", name, "\""));
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  if (parts.size() == 2 && !absl::SimpleAtoi(parts[1], &gid)) {
    return absl::InvalidArgumentError(absl::StrCat("--handler-user: \"", flag, "\" is not UID[:GID]"));
  }
  constexpr uint32_t kMax = std::numeric_limits<int32_t>::max() - 1;
  if (uid == 0 || gid == 0 || uid > kMax || gid > kMax || uid == getuid() ||
      (!as_worker_user_ && uid >= first_ && uid <= last_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--handler-user: ", flag, " must be neither root, the worker's own uid, nor a uid of --session-uids"));
  }
  SessionUser user;
  user.uid = uid;
  user.gid = gid;
  user.groups = groups_;
  return user;
}

SessionIdentities::SessionIdentities(SessionIdentities&& other) noexcept
    : as_worker_user_(other.as_worker_user_),
      first_(other.first_),
      last_(other.last_),
      groups_(std::move(other.groups_)),
      by_session_(std::move(other.by_session_)),
      taken_(std::move(other.taken_)),
      next_(other.next_) {}

absl::StatusOr<SessionUser> SessionIdentities::Acquire(const std::string& session_id) {
  if (as_worker_user_) return SessionUser::Unchanged();
  SessionUser user;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_session_.find(session_id);
  uid_t uid = 0;
  if (it != by_session_.end()) {
    uid = it->second;
  } else {
    const uint64_t size = uint64_t{last_} - first_ + 1;
    if (taken_.size() >= size) {
      return absl::ResourceExhaustedError(
          absl::StrCat("every uid of --session-uids ", first_, "-", last_, " is taken by a live session"));
    }
    uid = next_;
    while (taken_.count(uid) > 0) uid = uid == last_ ? first_ : uid + 1;
    next_ = uid == last_ ? first_ : uid + 1;
    taken_.insert(uid);
    by_session_[session_id] = uid;
  }
  user.uid = uid;
  user.gid = static_cast<gid_t>(uid);
  user.groups = groups_;
  return user;
}

void SessionIdentities::Release(const std::string& session_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_session_.find(session_id);
  if (it == by_session_.end()) return;
  taken_.erase(it->second);
  by_session_.erase(it);
}

absl::StatusOr<SessionUser> SessionIdentities::Hold(const std::string& key, uid_t uid) {
  if (as_worker_user_) {
    if (uid != getuid()) return absl::InvalidArgumentError(absl::StrCat("uid ", uid, " is not the worker's"));
    return SessionUser::Unchanged();
  }
  if (uid < first_ || uid > last_) {
    return absl::InvalidArgumentError(absl::StrCat("uid ", uid, " is outside --session-uids ", first_, "-", last_));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!taken_.insert(uid).second) return absl::AlreadyExistsError(absl::StrCat("uid ", uid, " is taken"));
  by_session_[key] = uid;
  SessionUser user;
  user.uid = uid;
  user.gid = static_cast<gid_t>(uid);
  return user;
}

}  // namespace gantry::worker
