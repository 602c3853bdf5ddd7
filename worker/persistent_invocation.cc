#include "worker/persistent_invocation.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace gantry::worker {

PersistentInvocation::PersistentInvocation(EventLoop* loop, const Send* send, std::string id, std::string capability,
                                           PersistentHandler* handler, WorkPool* writer,
                                           const PersistentLimits& limits, ChunkCredit credit,
                                           std::function<void()> ended)
    : loop_(loop),
      out_(send, std::move(id)),
      capability_(std::move(capability)),
      handler_(handler),
      writer_(writer),
      limits_(limits),
      ended_(std::move(ended)),
      inbox_(std::make_shared<Inbox>(out_.id(), handler, writer, limits)),
      credit_(credit) {}

PersistentInvocation::~PersistentInvocation() { loop_->CancelTimer(deadline_timer_); }

void PersistentInvocation::Submit(std::string payload) {
  std::weak_ptr<PersistentInvocation> self = weak_from_this();
  auto sink = [inbox = inbox_, loop = loop_, self](HandlerFrame frame) { Receive(inbox, loop, self, std::move(frame)); };
  // The writer's queue holds a request and a cancel for each request the capability admits.
  const bool queued = writer_->TrySubmit([handler = handler_, loop = loop_, self, id = out_.id(),
                                          payload = std::move(payload), sink = std::move(sink)]() mutable {
    absl::Status submitted = handler->Submit(id, payload, std::move(sink));
    if (!submitted.ok()) {
      loop->Post([self, submitted] {
        if (auto invocation = self.lock()) invocation->SubmitFailed(submitted);
      });
    }
  });
  if (!queued) {
    loop_->Post([self] {
      if (auto invocation = self.lock()) invocation->SubmitFailed(absl::UnavailableError("the worker is stopping"));
    });
  }
}

void PersistentInvocation::ArmDeadline(absl::Time deadline) {
  if (deadline != absl::InfiniteFuture()) {
    deadline_timer_ = loop_->After(deadline - absl::Now(), [this] {
      deadline_timer_ = 0;
      if (ended_called_) return;
      CancelOnHandler();
      out_.Error(absl::StatusCode::kDeadlineExceeded,
                 absl::StrCat("capability ", capability_, " ran past the request's deadline; the handler was told to cancel"));
      End();
    });
  }
}

void PersistentInvocation::Receive(const std::shared_ptr<Inbox>& inbox, EventLoop* loop,
                                   std::weak_ptr<PersistentInvocation> self, HandlerFrame frame) {
  std::lock_guard<std::mutex> lock(inbox->mu);
  const PersistentLimits& limits = inbox->limits;
  if (frame.kind == HandlerFrame::Kind::kChunk &&
      (inbox->frames.size() >= limits.max_buffered_chunks ||
       inbox->bytes + frame.data.size() > limits.max_buffered_bytes)) {
    inbox->overflow = true;
  } else {
    inbox->bytes += frame.data.size();
    inbox->frames.push_back(std::move(frame));
    if (inbox->frames.size() >= limits.pause_at_chunks || inbox->bytes >= limits.pause_at_bytes) {
      WantPauseLocked(inbox, true);
    }
  }
  if (inbox->nudged) return;  // The Drain on its way takes this frame too.
  inbox->nudged = true;
  loop->Post([self = std::move(self)] {
    if (auto invocation = self.lock()) invocation->Drain();
  });
}

void PersistentInvocation::WantPauseLocked(const std::shared_ptr<Inbox>& inbox, bool pause) {
  if (inbox->pause_wanted == pause) return;
  inbox->pause_wanted = pause;
  if (inbox->pause_queued) return;  // The job queued reads what is wanted when it runs.
  // The writer's queue has room for it (kWriterJobsPerRequest); if it has stopped, so has all.
  inbox->pause_queued = inbox->writer->TrySubmit([inbox] { SyncPause(inbox); });
}

void PersistentInvocation::SyncPause(const std::shared_ptr<Inbox>& inbox) {
  bool pause;
  {
    std::lock_guard<std::mutex> lock(inbox->mu);
    inbox->pause_queued = false;
    if (inbox->pause_wanted == inbox->pause_sent) return;
    pause = inbox->pause_wanted;
  }
  // Not written when the handler does not pause, or the request has ended there: nothing to
  // undo later either.
  if (inbox->handler->Pause(inbox->id, pause)) {
    std::lock_guard<std::mutex> lock(inbox->mu);
    inbox->pause_sent = pause;
  }
}

void PersistentInvocation::Drain() {
  if (ended_called_) return;
  std::vector<HandlerFrame> batch;
  bool overflow = false;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    inbox_->nudged = false;
    overflow = inbox_->overflow;
    while (!overflow && !inbox_->frames.empty()) {
      HandlerFrame& front = inbox_->frames.front();
      if (front.kind == HandlerFrame::Kind::kChunk) {
        if (!credit_.CanSend()) break;
        credit_.Spend(front.data.size());
      }
      inbox_->bytes -= front.data.size();
      batch.push_back(std::move(front));
      inbox_->frames.pop_front();
    }
    if (inbox_->frames.size() <= limits_.resume_at_chunks && inbox_->bytes <= limits_.resume_at_bytes) {
      WantPauseLocked(inbox_, false);
    }
  }
  if (overflow) {
    CancelOnHandler();
    out_.Error(absl::StatusCode::kResourceExhausted,
               absl::StrCat("capability ", capability_, ": the client read too slowly (more than ",
                            limits_.max_buffered_chunks, " chunks or ", limits_.max_buffered_bytes,
                            " bytes waiting); the request was cut off"));
    End();
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    HandlerFrame& frame = batch[i];
    switch (frame.kind) {
      case HandlerFrame::Kind::kChunk:
        if (i + 1 < batch.size() && batch[i + 1].kind == HandlerFrame::Kind::kEnd) {
          // The last chunk and the end in one message, one write: the controller gives its
          // client the two chunks it always gets (the data, then an empty last one).
          out_.Chunk(std::move(frame.data), true);
          End();
          return;
        }
        if (!out_.Chunk(std::move(frame.data), false)) {  // The stream is gone.
          CancelOnHandler();
          End();
          return;
        }
        break;
      case HandlerFrame::Kind::kEnd:
        out_.Chunk("", true);
        End();
        return;
      case HandlerFrame::Kind::kError:
        out_.Error(frame.code, absl::StrCat("capability ", capability_, ": ", frame.data));
        End();
        return;
      case HandlerFrame::Kind::kHello:
        break;  // The handler's, never a request's (PersistentHandler keeps it).
    }
  }
}

void PersistentInvocation::AddCredit(int64_t chunks, int64_t bytes) {
  if (ended_called_) return;
  credit_.Add(chunks, bytes);
  Drain();
}

void PersistentInvocation::Cancel() {
  if (ended_called_) return;
  CancelOnHandler();
  End();
}

void PersistentInvocation::SubmitFailed(const absl::Status& status) {
  if (ended_called_) return;
  out_.Error(status.code(), absl::StrCat("capability ", capability_, ": ", status.message()));
  End();
}

void PersistentInvocation::CancelOnHandler() {
  writer_->TrySubmit([handler = handler_, id = out_.id()] { handler->Cancel(id); });
}

void PersistentInvocation::End() {
  ended_called_ = true;
  loop_->CancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  ended_();
}

}  // namespace gantry::worker
