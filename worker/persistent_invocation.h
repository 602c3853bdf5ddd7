// One request to a `persistent` capability, driven by the EventLoop with no thread of its own.
// The request is written to the shared handler process by the capability's writer (one thread
// per persistent capability: a handler slow to read its input delays only its own requests,
// and requests, cancels and pauses reach it in order). Frames come from the handler's reader
// thread into a bounded inbox, which nudges the loop once per batch; the loop sends them while
// the request has credit.
//
// A slow client slows the handler down when the handler said `HELLO pause`: once
// `pause_at_chunks` or `pause_at_bytes` wait, it is sent PAUSE for the request, and RESUME once
// no more than `resume_at_chunks` and `resume_at_bytes` do. The handler's pipe is shared by
// every request, so one that does not pause (or outruns the pause) cannot hold the others back:
// past `max_buffered_chunks` or `max_buffered_bytes` waiting, the request is cut off with
// RESOURCE_EXHAUSTED.
//
// Loop thread only, but for Submit (any thread: it reads only what never changes) and the
// inbox, which the handler's reader thread fills.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/work_pool.h"
#include "worker/event_loop.h"
#include "worker/handler_frames.h"
#include "worker/invocation.h"
#include "worker/persistent_handler.h"

namespace gantry::worker {

struct PersistentLimits {
  size_t max_buffered_chunks = 16384;
  size_t max_buffered_bytes = 8 << 20;
  // Well below the bounds: what the handler wrote before PAUSE reached it (a pipe's worth,
  // 64 KiB: some 3,000 tiny frames) still fits.
  size_t pause_at_chunks = 256;
  size_t pause_at_bytes = 1 << 20;
  size_t resume_at_chunks = 64;
  size_t resume_at_bytes = 256 << 10;
};

class PersistentInvocation final : public Invocation, public std::enable_shared_from_this<PersistentInvocation> {
 public:
  // `ended` as for ExecInvocation: once, on the loop's thread, after the last output.
  PersistentInvocation(EventLoop* loop, const Send* send, std::string id, std::string capability,
                       PersistentHandler* handler, WorkPool* writer, const PersistentLimits& limits,
                       ChunkCredit credit, std::function<void()> ended);
  ~PersistentInvocation() override;

  // Hands the request to the writer, from any thread; needs the invocation held by a
  // shared_ptr, and a task already posted that gives the loop the invocation (the handler's
  // answer is drained on the loop, in a task posted after it). A writer that has stopped
  // fails the request on the loop.
  void Submit(std::string payload);
  // On the loop: ends the request at `deadline`.
  void ArmDeadline(absl::Time deadline);
  void AddCredit(int64_t chunks, int64_t bytes) override;
  void Cancel() override;

  // The writer's jobs one request may have queued at once (request, pause, cancel).
  static constexpr size_t kWriterJobsPerRequest = 3;

 private:
  // Shared with the handler's reader thread (which fills it) and the writer (which tells the
  // handler to pause): frames waiting for credit, within the limits.
  struct Inbox {
    Inbox(std::string id, PersistentHandler* handler, WorkPool* writer, const PersistentLimits& limits)
        : id(std::move(id)), handler(handler), writer(writer), limits(limits) {}
    const std::string id;
    PersistentHandler* const handler;
    WorkPool* const writer;
    const PersistentLimits& limits;

    std::mutex mu;
    std::deque<HandlerFrame> frames ABSL_GUARDED_BY(mu);
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
    bool overflow ABSL_GUARDED_BY(mu) = false;
    bool nudged ABSL_GUARDED_BY(mu) = false;  // A Drain is posted and has not taken the batch yet.
    bool pause_wanted ABSL_GUARDED_BY(mu) = false;
    bool pause_sent ABSL_GUARDED_BY(mu) = false;   // Written by the writer's thread only.
    bool pause_queued ABSL_GUARDED_BY(mu) = false;  // A SyncPause job is queued.
  };

  // On the handler's reader thread.
  static void Receive(const std::shared_ptr<Inbox>& inbox, EventLoop* loop, std::weak_ptr<PersistentInvocation> self,
                      HandlerFrame frame);
  // Sets what the handler should be doing, and queues the writer job that tells it.
  static void WantPauseLocked(const std::shared_ptr<Inbox>& inbox, bool pause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(inbox->mu);
  // The writer's job: PAUSE or RESUME, if what is wanted is not what was last written.
  static void SyncPause(const std::shared_ptr<Inbox>& inbox);
  void Drain();
  void SubmitFailed(const absl::Status& status);
  // Tells the handler to drop the request (through the writer, after the request itself).
  void CancelOnHandler();
  void End();

  EventLoop* const loop_;
  OutputSender out_;
  const std::string capability_;
  PersistentHandler* const handler_;
  WorkPool* const writer_;
  const PersistentLimits& limits_;
  std::function<void()> ended_;
  const std::shared_ptr<Inbox> inbox_;

  ChunkCredit credit_;
  bool ended_called_ = false;
  EventLoop::TimerId deadline_timer_ = 0;
};

}  // namespace gantry::worker
