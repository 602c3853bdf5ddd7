// Serves StreamLogsCommands: reads a session's output (from the last N lines, or the start) from
// its SessionLog — memory for recent output, the log file for older — optionally follows it as
// it grows, and sends it up the Connect stream in batches of at most 64 KiB, one batch per
// credit the controller grants. A reader that stops reading stops the credits, and with them
// this worker's reading: nothing here grows without bound.
//
// Every stream lives on one EventLoop: a stream is its place in the log and a partial line,
// never a thread. A follower at the end of the output is woken by the log when more is
// appended (SessionLog::WakeBeyond), and looks now and then whether its session is gone.
//
// Thread-safe: commands may come from any thread; they reach the loop in the order they came.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gantry/v1/worker_service.pb.h"
#include "worker/event_loop.h"
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
  struct Options {
    // A stream holds at most a partial line (16 KiB) between batches: 4,096 of them, 64 MiB.
    int max_streams = 4096;
    // How often a follower at the end looks whether its process is gone: the log wakes it for
    // output and for the pipe's close, but nothing tells it of an exit that leaves the pipe
    // open (something the process started may hold it).
    absl::Duration recheck = absl::Seconds(1);
  };

  LogStreamer(std::string session_dir, FindLog find, Sender send, IsRunning running, Options options);
  ~LogStreamer();  // Ends every stream (sending nothing more) and stops the loop.

  void Start(const v1::StreamLogsCommand& command);
  void AddCredit(const std::string& stream_id, int credit);
  void Cancel(const std::string& stream_id);
  // The connection to the controller broke: every stream ends.
  void CancelAll();

 private:
  struct Stream;

  // On the loop.
  void Open(const v1::StreamLogsCommand& command);
  // Sends what the stream has credit for; ends it when its output is complete.
  void Step(const std::string& stream_id);
  // Reads on and sends the next batch (or the end) if there is one; false when the stream
  // must wait for more output.
  bool SendNext(Stream& stream);
  void WaitForOutput(const std::string& stream_id, Stream& stream);
  void Close(const std::string& stream_id);

  const std::string session_dir_;
  const FindLog find_;
  const Sender send_;
  const IsRunning running_;
  const Options options_;
  std::map<std::string, std::unique_ptr<Stream>> streams_;  // The loop's own.
  EventLoop loop_;  // Last: stopped (in the destructor's body) before the rest goes.
};

}  // namespace gantry::worker
