#include "worker/session_log.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace gantry::worker {
namespace {

constexpr size_t kMinRingBytes = 4096;
constexpr int64_t kScanBytes = 64 * 1024;

}  // namespace

absl::StatusOr<std::shared_ptr<SessionLog>> SessionLog::Create(const std::string& path, size_t ring_bytes,
                                                               int64_t max_file_bytes) {
  int write_fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (write_fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create log ", path, ": ", std::strerror(errno)));
  }
  int read_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd < 0) {
    int err = errno;
    close(write_fd);
    return absl::InternalError(absl::StrCat("cannot read log ", path, ": ", std::strerror(err)));
  }
  return std::shared_ptr<SessionLog>(new SessionLog(path, write_fd, read_fd, std::max(ring_bytes, kMinRingBytes),
                                                    std::max<int64_t>(max_file_bytes, 0), /*closed=*/false));
}

absl::StatusOr<std::shared_ptr<SessionLog>> SessionLog::OpenExisting(const std::string& path) {
  int read_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (read_fd < 0 || fstat(read_fd, &st) != 0) {
    int err = errno;
    if (read_fd >= 0) close(read_fd);
    return absl::NotFoundError(absl::StrCat("cannot open log ", path, ": ", std::strerror(err)));
  }
  auto log = std::shared_ptr<SessionLog>(new SessionLog(path, -1, read_fd, 0, 0, /*closed=*/true));
  std::lock_guard<std::mutex> lock(log->mu_);
  int64_t previous = 0;
  const std::string older = path + ".1";
  if (int fd = open(older.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    struct stat pst;
    if (fstat(fd, &pst) == 0) {
      log->previous_fd_ = fd;
      previous = pst.st_size;
    } else {
      close(fd);
    }
  }
  log->current_start_ = previous;
  log->size_ = log->file_bytes_ = previous + st.st_size;
  log->last_output_ = absl::FromTimeT(st.st_mtime);
  return log;
}

SessionLog::SessionLog(std::string path, int write_fd, int read_fd, size_t ring_bytes, int64_t max_file_bytes,
                       bool closed)
    : path_(std::move(path)),
      ring_cap_(ring_bytes),
      max_file_bytes_(max_file_bytes),
      write_fd_(write_fd),
      read_fd_(read_fd),
      closed_(closed),
      last_output_(absl::Now()) {}

SessionLog::~SessionLog() {
  for (int fd : {write_fd_, read_fd_, previous_fd_}) {
    if (fd >= 0) close(fd);
  }
}

int64_t SessionLog::FileStart() const { return previous_fd_ >= 0 ? previous_start_ : current_start_; }

bool SessionLog::Rotate() {
  const std::string older = path_ + ".1";
  int write_fd = -1, read_fd = -1;
  if (rename(path_.c_str(), older.c_str()) != 0 ||
      (write_fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
      (read_fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC)) < 0) {
    file_error_ = absl::StrCat("rotating it failed: ", std::strerror(errno));
    if (write_fd >= 0) close(write_fd);
    spdlog::warn("log file stopped after {} bytes: {}; the session goes on", file_bytes_, file_error_);
    return false;
  }
  if (previous_fd_ >= 0) close(previous_fd_);  // Its file was replaced by the rename.
  previous_fd_ = read_fd_;                     // Still reads the renamed file.
  previous_start_ = current_start_;
  close(write_fd_);
  write_fd_ = write_fd;
  read_fd_ = read_fd;
  current_start_ = file_bytes_;
  return true;
}

void SessionLog::WriteFile(const char* data, size_t size) {
  while (size > 0 && file_error_.empty()) {
    size_t now = size;
    if (max_file_bytes_ > 0) {
      const int64_t half = std::max<int64_t>(max_file_bytes_ / 2, 1);
      if (file_bytes_ - current_start_ >= half && !Rotate()) return;
      now = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(size), half - (file_bytes_ - current_start_)));
    }
    ssize_t n = write(write_fd_, data, now);
    if (n > 0) {
      file_bytes_ += n;
      data += n;
      size -= static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      file_error_ = std::strerror(errno);
      WriteTruncationMarker();
      spdlog::warn("log file stopped after {} bytes: {}; the session goes on", file_bytes_, file_error_);
    }
  }
}

void SessionLog::WriteTruncationMarker() {
  const std::string marker = absl::StrCat("\n[gantry: log file truncated here (", file_error_,
                                          "); later output is kept in memory only]\n");
  if (write(write_fd_, marker.data(), marker.size()) == static_cast<ssize_t>(marker.size())) return;
  // A full disk has no room after the last byte, so the marker goes over the last bytes written
  // (their blocks are already allocated). Readers are then told those bytes were lost.
  const int64_t at = file_bytes_ - current_start_ - static_cast<int64_t>(marker.size());  // In PATH.
  if (at < 0 || ftruncate(write_fd_, at) != 0) return;
  file_bytes_ = current_start_ + at;
  if (write(write_fd_, marker.data(), marker.size()) < 0) {
    // Nothing more to do: Read() tells readers what is missing.
  }
}

void SessionLog::Append(const char* data, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (write_fd_ < 0 || size == 0) return;
  WriteFile(data, size);
  int64_t offset = size_;
  size_ += static_cast<int64_t>(size);
  last_output_ = absl::Now();
  WakeAllLocked();  // They read under this lock: after the ring below is updated.
  if (size >= ring_cap_) {  // Only the newest ring_cap_ bytes can stay.
    data += size - ring_cap_;
    offset += static_cast<int64_t>(size - ring_cap_);
    size = ring_cap_;
  }
  if (ring_.size() < ring_cap_ && offset + static_cast<int64_t>(size) <= static_cast<int64_t>(ring_cap_)) {
    ring_.append(data, size);  // Not yet wrapped: the ring is the whole output so far.
    return;
  }
  ring_.resize(ring_cap_);
  size_t pos = static_cast<size_t>(offset % static_cast<int64_t>(ring_cap_));
  size_t first = std::min(size, ring_cap_ - pos);
  std::memcpy(&ring_[pos], data, first);
  std::memcpy(&ring_[0], data + first, size - first);
}

void SessionLog::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  WakeAllLocked();
}

uint64_t SessionLog::WakeBeyond(int64_t offset, std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (size_ > offset || closed_) return 0;
  const uint64_t token = next_wake_++;
  wakes_.emplace(token, std::move(wake));
  return token;
}

void SessionLog::CancelWake(uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  wakes_.erase(token);
}

void SessionLog::WakeAllLocked() {
  if (wakes_.empty()) return;
  std::map<uint64_t, std::function<void()>> wakes;
  wakes.swap(wakes_);
  for (auto& [token, wake] : wakes) wake();
}

int64_t SessionLog::RingStart() const { return size_ - static_cast<int64_t>(ring_.size()); }

SessionLog::Chunk SessionLog::ReadLocked(int64_t offset, size_t max) const {
  Chunk chunk;
  chunk.next = offset;
  if (offset >= size_ || max == 0) return chunk;
  const int64_t ring_start = RingStart();
  if (offset >= ring_start && !ring_.empty()) {
    size_t n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(max), size_ - offset));
    size_t pos = static_cast<size_t>(offset % static_cast<int64_t>(ring_cap_));
    size_t first = std::min(n, ring_.size() - pos);
    chunk.data.assign(ring_, pos, first);
    chunk.data.append(ring_, 0, n - first);
  } else if (offset < file_bytes_ && offset >= FileStart()) {
    const bool current = offset >= current_start_;
    const int64_t start = current ? current_start_ : previous_start_;
    const int64_t end = current ? file_bytes_ : current_start_;
    chunk.data.resize(static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(max), end - offset)));
    ssize_t n = pread(current ? read_fd_ : previous_fd_, chunk.data.data(), chunk.data.size(), offset - start);
    chunk.data.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  if (chunk.data.empty()) {
    if (offset < FileStart() && FileStart() < file_bytes_) {
      // Older than the files keep: dropped by the cap. Go on from the oldest byte kept.
      const int64_t resume = std::min(FileStart(), ring_.empty() ? FileStart() : ring_start);
      chunk.data = absl::StrCat("[gantry: ", resume - offset, " bytes of output dropped: this session's log is capped at ",
                                max_file_bytes_, " bytes]\n");
      chunk.next = resume;
      return chunk;
    }
    // In neither the file nor the ring: say how much is gone and go on from what is kept.
    int64_t resume = std::max(ring_start, offset + 1);
    chunk.data = absl::StrCat("[gantry: ", resume - offset, " bytes of output lost: the log file failed (",
                              file_error_.empty() ? "unreadable" : file_error_, ")]\n");
    chunk.next = resume;
    return chunk;
  }
  chunk.next = offset + static_cast<int64_t>(chunk.data.size());
  return chunk;
}

SessionLog::Chunk SessionLog::Read(int64_t offset, size_t max) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ReadLocked(offset, max);
}

int64_t SessionLog::TailOffset(int lines) const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t end = size_;
  if (end == 0 || lines <= 0) return lines <= 0 ? end : 0;
  if (ReadLocked(end - 1, 1).data == "\n") --end;
  // Scan back only through output that can be read without a gap.
  const int64_t floor = file_bytes_ >= RingStart() ? std::min(FileStart(), RingStart()) : RingStart();
  int seen = 0;
  int64_t pos = end;
  while (pos > floor) {
    int64_t start = std::max(floor, pos - kScanBytes);
    std::string buf;
    for (int64_t at = start; at < pos;) {
      Chunk c = ReadLocked(at, static_cast<size_t>(pos - at));
      if (c.next != at + static_cast<int64_t>(c.data.size())) return pos;  // A gap: stop here.
      buf += c.data;
      at = c.next;
    }
    for (int64_t i = static_cast<int64_t>(buf.size()) - 1; i >= 0; --i) {
      if (buf[static_cast<size_t>(i)] == '\n' && ++seen == lines) return start + i + 1;
    }
    pos = start;
  }
  return floor;
}

int64_t SessionLog::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_;
}

bool SessionLog::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

absl::Time SessionLog::last_output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_output_;
}

int64_t SessionLog::file_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return file_bytes_;
}

int64_t SessionLog::disk_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return file_bytes_ - FileStart();
}

}  // namespace gantry::worker
