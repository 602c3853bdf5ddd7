// A client's server-streaming call answered by relaying a controller's, on gRPC's callback API
// both ways: the client's call is this server reactor, each call to a controller an Upstream
// client reactor, and nothing parks a thread. What Invoke and StreamLogs share; a subclass
// admits the call and starts each upstream call (jobs on a pool, for what asks PostgreSQL),
// may retouch each item, and may try another controller when one refuses.
//
// Items flow with credit: the relay reads ahead of the client by at most kReadAhead items and
// reads no more until the client has taken some, so a slow client slows the controller (and
// whatever feeds it) while holding bounded memory here. Each item is its own write, with no
// buffer hint (WriteNextLocked says why). An item the subclass knows to be the last
// (IsLastItem) waits for the upstream's status and goes out with it, in one write and flush
// with no reaction between. The client's cancellation cancels the upstream call at once.
//
// Lifetime: the reactor deletes itself once gRPC is done with the client's call (OnDone), the
// upstream call is done, and no job of its own is queued or running; shutdown waits for the
// last one (LiveRelays).
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "api-server/controller_client.h"
#include "api-server/controller_store.h"
#include "api-server/live_relays.h"
#include "common/request_ids.h"
#include "common/work_pool.h"
#include "gantry/v1/controller_service.grpc.pb.h"

namespace gantry::api {

template <typename Item>
class RelayedStream : public grpc::ServerWriteReactor<Item> {
 public:
  // Items read from the controller and not yet written to the client, at most.
  static constexpr size_t kReadAhead = 32;

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    // (Nothing is being written now: this finishes at once, unless an end was already waiting.)
    if (!ok) EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
    if (end_.has_value() && !finished_) {
      finished_ = true;
      this->Finish(*end_);
    }
    if (finished_) return;  // Never a write after Finish.
    if (!waiting_.empty()) {
      WriteNextLocked();
    } else if (relay_status_.has_value()) {
      EndLocked(*relay_status_);
    }
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"));
  }

  void OnDone() override {
    bool unreferenced = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
      unreferenced = UnreferencedLocked();
    }
    if (unreferenced) delete this;
  }

 protected:
  // Starts one upstream call on `stub` with `context` for `reactor` (e.g. the stub's
  // async()->Invoke with the request); the relay then reads and starts it.
  using StartCall = std::function<void(v1::ControllerService::StubInterface* stub, grpc::ClientContext* context,
                                       grpc::ClientReadReactor<Item>* reactor)>;

  RelayedStream(WorkPool* jobs, ControllerClient* client, std::optional<RequestIds> ids,
                std::chrono::system_clock::time_point deadline)
      : jobs_(jobs), client_(client), ids_(std::move(ids)), deadline_(deadline) {
    LiveRelays::Add();
  }
  ~RelayedStream() override { LiveRelays::Remove(); }

  // Queues `job` (the reactor's own; it ends with JobDone). The call ends UNAVAILABLE naming
  // `what` if the pool is full.
  void QueueJobLocked(std::function<void()> job, const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    job_ = true;
    if (!jobs_->TrySubmit(std::move(job))) {
      job_ = false;
      EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             std::string("this API server has too many ") + what +
                                 " waiting; retry, here or on another replica"));
    }
  }

  // What would be a job runs now, on the calling thread (a reaction that has found nothing it
  // must wait for): it ends as a job does, with JobDone or Relay.
  void BeginJobHereLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { job_ = true; }

  // A job's first step: false, and the job over (the reactor may be gone: return at once), if
  // the call ended before the job's turn came.
  bool StillWanted() {
    bool wanted = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      wanted = !ended();
    }
    if (!wanted) JobDone();
    return wanted;
  }

  // The end of a job: deletes the reactor if nothing else refers to it.
  void JobDone() {
    bool unreferenced = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = false;
      unreferenced = UnreferencedLocked();
    }
    if (unreferenced) delete this;
  }

  // From a job: relays the controller `target`'s stream, started by `start`. Ends the job.
  void Relay(const ControllerTarget& target, const StartCall& start) {
    auto upstream = std::make_unique<Upstream>(this, target);
    upstream->stub = client_->AsyncStub(target.endpoint);
    upstream->context.set_deadline(deadline_);
    {
      MaybeRequestIdScope scope(ids_);
      AddRequestId(&upstream->context);
    }
    bool unreferenced = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = false;
      if (finished_ || end_.has_value()) {
        unreferenced = UnreferencedLocked();  // The client went meanwhile.
      } else if (upstream->stub == nullptr) {
        RefusedLocked(target, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                           "controller at " + target.endpoint + ": no connection to it"));
      } else {
        Upstream* relay = upstream.get();
        upstreams_.push_back(std::move(upstream));
        relaying_ = true;
        read_all_ = false;
        reading_ = true;
        start(relay->stub.get(), &relay->context, relay);
        // Reads are also started from outside the upstream's reactions (a client's write done
        // makes room): without a hold, gRPC may end the upstream call between two reads (its
        // status in, no read outstanding) and a read started then reaches a call already
        // destroyed. Held until no read will be started again (ReleaseHoldLocked).
        relay->AddHold();
        held_ = true;
        relay->StartRead(&relay->incoming);
        relay->StartCall();
      }
    }
    if (unreferenced) delete this;
  }

  // Finishes the call with `status` now, or once the write in flight completes; cancels the
  // upstream call if one is running.
  void EndLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || end_.has_value()) return;
    // Whatever the controller still sends is nobody's now.
    if (relaying_) {
      upstreams_.back()->context.TryCancel();
      ReleaseHoldLocked();  // No read is started after the end.
    }
    if (writing_) {
      end_ = status;  // OnWriteDone finishes.
      return;
    }
    finished_ = true;
    this->Finish(status);
  }

  // Hooks, called under mu_. Each item from `target` before it is queued (`index`: its place
  // among this upstream's items, from 0).
  virtual void OnItemLocked(const ControllerTarget& target, int64_t index, Item& item) = 0;
  // `target` ended its stream with `status` before sending anything, and `status` says it did
  // not take the call (UNAVAILABLE, RESOURCE_EXHAUSTED; the status is already annotated with
  // the controller's address): queue another attempt, or EndLocked. Default: EndLocked.
  virtual void RefusedLocked(const ControllerTarget& target, const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    (void)target;
    EndLocked(status);
  }

  // Whether `item` is the stream's last (the status comes next). Default: never known.
  virtual bool IsLastItem(const Item& item) const {
    (void)item;
    return false;
  }

  const std::optional<RequestIds>& ids() const { return ids_; }
  bool ended() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return finished_ || end_.has_value(); }

  std::mutex mu_;

 private:
  class Upstream final : public grpc::ClientReadReactor<Item> {
   public:
    Upstream(RelayedStream* owner, ControllerTarget target) : owner_(owner), target(std::move(target)) {}
    void OnReadDone(bool ok) override { owner_->OnRelayed(ok); }
    void OnDone(const grpc::Status& status) override { owner_->OnRelayDone(status); }

    RelayedStream* const owner_;
    const ControllerTarget target;
    grpc::ClientContext context;
    std::shared_ptr<v1::ControllerService::StubInterface> stub;  // Kept for the call's life.
    Item incoming;
    int64_t items = 0;
  };

  void OnRelayed(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (!ok) {
      read_all_ = true;  // The controller's stream ended: OnRelayDone says how.
      ReleaseHoldLocked();
      return;
    }
    Upstream& relay = *upstreams_.back();
    OnItemLocked(relay.target, relay.items++, relay.incoming);
    if (finished_ || end_.has_value()) return;  // Nobody to write to: the upstream is being cancelled.
    last_waiting_ = IsLastItem(relay.incoming);
    waiting_.push_back(std::move(relay.incoming));
    relay.incoming.Clear();
    if (waiting_.size() < kReadAhead) {
      reading_ = true;
      relay.StartRead(&relay.incoming);
    }
    if (!writing_) WriteNextLocked();
  }

  void OnRelayDone(const grpc::Status& status) {
    bool unreferenced = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      relaying_ = false;
      Upstream& relay = *upstreams_.back();
      const bool refused = relay.items == 0 && (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                                                status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
      if (status.error_code() == grpc::StatusCode::UNAVAILABLE && relay.items == 0) {
        client_->Unavailable(relay.target.endpoint);
      }
      if (finished_ || end_.has_value()) {
        unreferenced = UnreferencedLocked();
      } else if (refused) {
        RefusedLocked(relay.target, status.error_code() == grpc::StatusCode::UNAVAILABLE
                                        ? grpc::Status(status.error_code(), "controller at " + relay.target.endpoint +
                                                                                ": " + status.error_message())
                                        : status);
      } else {
        relay_status_ = status;
        if (!writing_ && waiting_.empty()) {
          EndLocked(status);
        } else if (!writing_) {
          WriteNextLocked();  // The last item, which waited for this.
        }
      }
    }
    if (unreferenced) delete this;
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (last_waiting_ && waiting_.size() == 1) {
      if (!relay_status_.has_value()) return;  // OnRelayDone writes it.
      in_flight_ = std::move(waiting_.front());
      waiting_.pop_front();
      finished_ = true;
      this->StartWriteAndFinish(&in_flight_, grpc::WriteOptions(), *relay_status_);
      return;
    }
    in_flight_ = std::move(waiting_.front());
    waiting_.pop_front();
    writing_ = true;
    // No buffer hint: a hinted write completes only once something else flushes the transport,
    // and the next write waits for that completion (one write at a time), so a burst's last
    // chunks would wait for unrelated traffic (RELIABILITY.md).
    this->StartWrite(&in_flight_, grpc::WriteOptions());
    // Room again: the relay may read on.
    if (relaying_ && !reading_ && !read_all_ && waiting_.size() < kReadAhead) {
      reading_ = true;
      upstreams_.back()->StartRead(&upstreams_.back()->incoming);
    }
  }

  // Lets gRPC end the current upstream call once its last read is done (see Relay). Outside a
  // reaction, RemoveHold runs OnDone on another thread, never inline under mu_.
  void ReleaseHoldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!held_) return;
    held_ = false;
    upstreams_.back()->RemoveHold();
  }

  bool UnreferencedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_ && !relaying_ && !job_; }

  WorkPool* const jobs_;
  ControllerClient* const client_;
  const std::optional<RequestIds> ids_;
  const std::chrono::system_clock::time_point deadline_;

  std::vector<std::unique_ptr<Upstream>> upstreams_ ABSL_GUARDED_BY(mu_);  // The last is current.
  bool relaying_ ABSL_GUARDED_BY(mu_) = false;  // The current upstream call is not done.
  bool reading_ ABSL_GUARDED_BY(mu_) = false;   // A read of it is outstanding.
  bool read_all_ ABSL_GUARDED_BY(mu_) = false;  // Its stream has ended.
  bool held_ ABSL_GUARDED_BY(mu_) = false;      // It holds a hold (see Relay).
  std::deque<Item> waiting_ ABSL_GUARDED_BY(mu_);  // Read, not yet written.
  Item in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool last_waiting_ ABSL_GUARDED_BY(mu_) = false;  // waiting_'s back is the last item (IsLastItem).
  std::optional<grpc::Status> relay_status_ ABSL_GUARDED_BY(mu_);  // The client's, once waiting_ is written.
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool job_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace gantry::api
