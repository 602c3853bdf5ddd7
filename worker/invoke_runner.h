// Serves InvokeCommands with the worker's capabilities: `exec` handlers as one process per
// request (ExecInvocation) and `persistent` handlers through a PersistentHandler
// (PersistentInvocation). Every request in flight lives on one EventLoop: an open invoke holds
// its pipes and a little memory, never a thread, and output is sent from the loop as it comes.
//
// Flow control: each request sends at most as many outputs (and, where the controller counts
// them, bytes) as the controller granted credits;
// an exec handler outrunning its client blocks on its stdout pipe, and a persistent one (whose
// pipe other requests share) is cut off with RESOURCE_EXHAUSTED once more than
// `max_buffered_chunks` or `max_buffered_bytes` wait for a slow client. Cancel kills the exec
// process at once or sends the persistent handler a CANCEL frame; so does the deadline.
//
// Thread-safe: commands may come from any thread; they reach the loop in the order they came.
// The Sender is called on the loop's thread; while it blocks (the stream to the controller is
// full) the other requests wait too, as they share that stream.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/work_pool.h"
#include "gantry/v1/worker_service.pb.h"
#include "worker/capability_config.h"
#include "worker/event_loop.h"
#include "worker/exec_invocation.h"
#include "worker/invocation.h"
#include "worker/persistent_handler.h"
#include "worker/persistent_invocation.h"

namespace gantry::worker {

class InvokeRunner {
 public:
  // Sends one output up the stream; false if the stream is gone.
  using Sender = Invocation::Send;
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
    bool use_pidfd = true;  // ExecSettings::use_pidfd.
  };

  InvokeRunner(std::vector<CapabilityConfig> capabilities, Options options, Sender send);
  ~InvokeRunner();  // Cancels everything and stops the persistent handlers.

  // Start, SetDraining, AddCredit and Cancel never wait (each takes a lock or posts to the
  // loop): the stream's reading thread calls them itself, without a hand-off.
  void Start(const v1::InvokeCommand& command);
  // While draining (DrainCommand), new invokes are refused; running ones carry on.
  void SetDraining(bool draining);
  void AddCredit(const std::string& invoke_id, int64_t chunks, int64_t bytes = 0);
  void Cancel(const std::string& invoke_id);
  // The stream to the controller broke: nobody is waiting for any output.
  void CancelAll();
  int active() const;

 private:
  struct Capability {
    CapabilityConfig config;
    std::unique_ptr<PersistentHandler> persistent;
    std::unique_ptr<WorkPool> writer;  // Persistent only: its requests and cancels, in order.
    int in_flight ABSL_GUARDED_BY(mu_) = 0;
  };

  // Under mu_: counts the request in, or says why not (sent as its refusal).
  absl::Status Admit(const v1::InvokeCommand& command);
  // Starts an admitted request: false if the loop has stopped. A persistent handler's request
  // goes to its writer from the calling thread (no hand-off to the loop first); an exec
  // handler's is spawned on the loop (BeginExec).
  bool Begin(const v1::InvokeCommand& command);
  void BeginExec(const v1::InvokeCommand& command);
  void Ended(const std::string& invoke_id);
  std::vector<std::string> HandlerEnv(const std::string& capability, const std::string& invoke_id) const;

  const Options options_;
  const ExecSettings exec_settings_;
  const PersistentLimits persistent_limits_;
  const Sender send_;
  // Filled by the constructor and never changed after: read from any thread without mu_.
  std::map<std::string, Capability> capabilities_;

  mutable std::mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> admitted_ ABSL_GUARDED_BY(mu_);  // invoke id -> capability

  // The loop's own. Last: it stops (and so touches nothing above) before the rest goes.
  std::unordered_map<std::string, std::shared_ptr<Invocation>> live_;
  EventLoop loop_;
};

}  // namespace gantry::worker
