// One session's output: the last `ring_bytes` in memory and the rest in its log file, capped.
//
// A log capped at `max_file_bytes` is kept as two files of at most half that each: PATH, being
// written, and PATH.1, the half before it. When PATH is full it becomes PATH.1 (the older half
// is deleted) and a new PATH is begun, so a chatty session uses at most its cap on disk, and a
// reader asking for output older than what is kept is told how many bytes were dropped.
//
// Offsets count bytes of output since the session started. The ring serves recent output (tail,
// follow) without touching the disk; older output comes from the file. When the file cannot be
// written (disk full, I/O error) a marker line goes into the file (over its last bytes when the
// disk is full), the file stays truncated there, and output goes on into the ring: the session
// and the worker carry on, and a reader who asks for output that is in neither is told how much
// was lost.
//
// Thread-safe: the pump appends while log streams read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gantry::worker {

class SessionLog {
 public:
  // A new, empty log for a starting session; creates (truncates) `path`. `max_file_bytes`: its
  // cap on disk (0: none).
  static absl::StatusOr<std::shared_ptr<SessionLog>> Create(const std::string& path, size_t ring_bytes,
                                                           int64_t max_file_bytes = 0);
  // The log files (PATH.1 then PATH) of a session this worker no longer holds in memory:
  // read-only, closed. Offsets start at the first byte kept.
  static absl::StatusOr<std::shared_ptr<SessionLog>> OpenExisting(const std::string& path);
  ~SessionLog();

  SessionLog(const SessionLog&) = delete;
  SessionLog& operator=(const SessionLog&) = delete;

  void Append(const char* data, size_t size);
  // A line from the worker itself (e.g. why the session did not start).
  void AppendNote(const std::string& line) { Append(line.data(), line.size()); }
  // The session's output ended (EOF on its pipe).
  void Close();

  struct Chunk {
    std::string data;
    int64_t next = 0;  // Offset to read from next.
  };
  // Up to `max` bytes from `offset`; empty data when there is nothing more yet. Output that was
  // lost comes back as one marker line saying how many bytes.
  Chunk Read(int64_t offset, size_t max) const;
  // Offset of the first byte of the last `lines` lines (a final newline ends the last line).
  int64_t TailOffset(int lines) const;

  // Calls `wake` once, the next time output is appended beyond `offset` or the log is closed,
  // and returns a token for CancelWake; returns 0 without keeping `wake` if that has happened
  // already. `wake` runs under the log's lock, on the appending thread: it must only hand off
  // (post to a loop), never call back into the log. Once CancelWake returns, it never runs.
  uint64_t WakeBeyond(int64_t offset, std::function<void()> wake);
  void CancelWake(uint64_t token);

  int64_t size() const;
  bool closed() const;
  absl::Time last_output() const;
  // Offset up to which output reached the files; less than size() once the file failed.
  int64_t file_bytes() const;
  // Bytes on disk now (both files).
  int64_t disk_bytes() const;

 private:
  SessionLog(std::string path, int write_fd, int read_fd, size_t ring_bytes, int64_t max_file_bytes, bool closed);
  // PATH becomes PATH.1 and a new PATH is begun; false (file_error_ set) when that fails.
  bool Rotate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first offset the files still hold.
  int64_t FileStart() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t RingStart() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Chunk ReadLocked(int64_t offset, size_t max) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteFile(const char* data, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteTruncationMarker() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const size_t ring_cap_;
  const int64_t max_file_bytes_;  // 0: not capped.
  mutable std::mutex mu_;
  int write_fd_ ABSL_GUARDED_BY(mu_);  // -1 for a read-only log.
  int read_fd_ ABSL_GUARDED_BY(mu_);   // PATH, whose first byte is offset current_start_.
  int previous_fd_ ABSL_GUARDED_BY(mu_) = -1;  // PATH.1, from offset previous_start_; -1: none.
  int64_t current_start_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t previous_start_ ABSL_GUARDED_BY(mu_) = 0;
  std::string ring_ ABSL_GUARDED_BY(mu_);  // Circular once full: offset o lives at o % ring_cap_.
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t file_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string file_error_ ABSL_GUARDED_BY(mu_);  // Why the file stopped, once it has.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_output_ ABSL_GUARDED_BY(mu_);
  uint64_t next_wake_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::function<void()>> wakes_ ABSL_GUARDED_BY(mu_);  // Followers at the end.
};

}  // namespace gantry::worker
