// One session's output: the last `ring_bytes` in memory and everything in a log file.
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
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gantry::worker {

class SessionLog {
 public:
  // A new, empty log for a starting session; creates (truncates) `path`.
  static absl::StatusOr<std::shared_ptr<SessionLog>> Create(const std::string& path, size_t ring_bytes);
  // The log file of a session this worker no longer holds in memory: read-only, closed.
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

  int64_t size() const;
  bool closed() const;
  absl::Time last_output() const;
  // Bytes that reached the file; less than size() once the file failed.
  int64_t file_bytes() const;

 private:
  SessionLog(int write_fd, int read_fd, size_t ring_bytes, bool closed);
  int64_t RingStart() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Chunk ReadLocked(int64_t offset, size_t max) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteFile(const char* data, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteTruncationMarker() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int write_fd_;  // -1 for a read-only log.
  const int read_fd_;
  const size_t ring_cap_;
  mutable std::mutex mu_;
  std::string ring_ ABSL_GUARDED_BY(mu_);  // Circular once full: offset o lives at o % ring_cap_.
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t file_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::string file_error_ ABSL_GUARDED_BY(mu_);  // Why the file stopped, once it has.
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_output_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::worker
