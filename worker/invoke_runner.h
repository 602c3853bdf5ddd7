// Serves InvokeCommands with the worker's capabilities: `exec` handlers as one process per
// request (payload on stdin, stdout streamed back as it is written, stderr kept for the error,
// the exit code deciding success) and `persistent` handlers through PersistentHandler.
//
// Flow control: each request sends at most as many outputs as the controller granted credits;
// an exec handler outrunning its client blocks on its stdout pipe, and a persistent one (whose
// pipe other requests share) is cut off with RESOURCE_EXHAUSTED once more than
// `max_buffered_chunks` or `max_buffered_bytes` wait for a slow client. Cancel kills
// the exec process at once or sends the persistent handler a CANCEL frame; so does the deadline.
//
// Thread-safe. One thread per request in flight, at most `max_concurrency` per capability.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gantry/v1/worker_service.pb.h"
#include "worker/capability_config.h"
#include "worker/persistent_handler.h"

namespace gantry::worker {

class InvokeRunner {
 public:
  // Sends one output up the stream; false if the stream is gone.
  using Sender = std::function<bool(const v1::WorkerInvokeOutput&)>;
  struct Options {
    int max_concurrency = 8;  // Per capability.
    // What a persistent handler's output for one request may hold in the worker while its
    // client catches up; past either bound the request is cut off.
    size_t max_buffered_chunks = 16384;
    size_t max_buffered_bytes = 8 << 20;
    size_t max_chunk_bytes = 64 * 1024;
    std::string working_dir;  // The handlers' home, their user's own.
    // Who handlers run as (SessionIdentities::HandlerUser): tenants' payloads are their input.
    SessionUser user = SessionUser::Unchanged();
  };

  InvokeRunner(std::vector<CapabilityConfig> capabilities, Options options, Sender send);
  ~InvokeRunner();  // Cancels everything and stops the persistent handlers.

  void Start(const v1::InvokeCommand& command);
  // While draining (DrainCommand), new invokes are refused; running ones carry on.
  void SetDraining(bool draining);
  void AddCredit(const std::string& invoke_id, int credit);
  void Cancel(const std::string& invoke_id);
  // The stream to the controller broke: nobody is waiting for any output.
  void CancelAll();
  int active() const;

 private:
  struct Invocation {
    std::string id;
    std::string capability;
    int credit = 0;
    bool cancelled = false;
    pid_t exec_pid = 0;  // Killed at once on cancel.
    std::deque<HandlerFrame> frames;  // Persistent handlers' output, waiting for credit.
    size_t buffered_bytes = 0;
    bool overflow = false;
    int64_t sequence = 0;
    std::thread thread;
  };
  struct Capability {
    CapabilityConfig config;
    std::unique_ptr<PersistentHandler> persistent;
    int in_flight = 0;
  };

  void RunExec(const CapabilityConfig& capability, const v1::InvokeCommand& command,
               std::shared_ptr<Invocation> invocation, absl::Time deadline);
  void RunPersistent(PersistentHandler& handler, const v1::InvokeCommand& command,
                     std::shared_ptr<Invocation> invocation, absl::Time deadline);
  bool SendChunk(Invocation& invocation, std::string data, bool last);
  void SendError(const std::string& invoke_id, int code, const std::string& message);
  // Start's work, under mu_: starts the invocation, or says why not (sent as its refusal).
  absl::Status Admit(const v1::InvokeCommand& command);
  void Finish(const std::shared_ptr<Invocation>& invocation) ABSL_LOCKS_EXCLUDED(mu_);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> HandlerEnv(const std::string& capability, const std::string& invoke_id) const;

  const Options options_;
  Sender send_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Capability> capabilities_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Invocation>> running_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Invocation>> finished_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::worker
