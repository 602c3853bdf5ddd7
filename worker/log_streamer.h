// Serves StreamLogsCommands: reads a session's output (from the last N lines, or the start) from
// its SessionLog — memory for recent output, the log file for older — optionally follows it as
// it grows, and sends it up the Connect stream in batches of at most
// 64 KiB, one batch per credit the controller grants. A reader that stops reading stops the
// credits, and with them this worker's reading: nothing here grows without bound.
//
// Thread-safe. One thread per active stream, at most `max_streams` at once.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "gantry/v1/worker_service.pb.h"
#include "worker/session_log.h"

namespace gantry::worker {

// Safe as a file name: [A-Za-z0-9_-], 1..64 bytes (session ids are UUIDs).
bool IsSafeSessionId(const std::string& id);

class LogStreamer {
 public:
  // Sends one batch up the stream; false if the stream is gone.
  using Sender = std::function<bool(const v1::WorkerLogLines&)>;
  // Whether the session still has a process (following ends when it has none).
  using IsRunning = std::function<bool(const std::string& session_id)>;
  // The session's log if the worker holds it in memory; null to read <session_dir>/<id>.log.
  using FindLog = std::function<std::shared_ptr<SessionLog>(const std::string& session_id)>;

  static constexpr size_t kMaxBatchBytes = 64 * 1024;
  static constexpr size_t kMaxLineBytes = 16 * 1024;

  LogStreamer(std::string session_dir, FindLog find, Sender send, IsRunning running, int max_streams = 64);
  ~LogStreamer();  // Cancels every stream and joins its thread.

  void Start(const v1::StreamLogsCommand& command);
  void AddCredit(const std::string& stream_id, int credit);
  void Cancel(const std::string& stream_id);
  // The connection to the controller broke: every stream ends.
  void CancelAll();

 private:
  struct Stream {
    int credit = 0;
    bool cancelled = false;
    bool done = false;
    std::thread thread;
  };

  void Run(const v1::StreamLogsCommand& command, std::shared_ptr<Stream> stream);
  // Waits for a credit and sends; false if cancelled or the send failed.
  bool SendBatch(const std::shared_ptr<Stream>& stream, const v1::WorkerLogLines& batch);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string session_dir_;
  FindLog find_;
  Sender send_;
  IsRunning running_;
  const int max_streams_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Stream>> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::worker
