// Streams from workers to ControllerService callers — log batches, invoke output — with credit
// flow control. Each stream holds at most `window` items: the worker may only send as many as
// it has credits (plus one final item, e.g. an error), and the caller returns one credit per
// item it has written to its client, so memory per stream is bounded however slow the reader
// is. A worker that sends beyond that has its stream closed with RESOURCE_EXHAUSTED.
//
// A stream is read one of two ways: a caller waits for each item (Next), or a consumer that
// must never wait (a reactor) is handed each item as it arrives (OpenWithSink) and returns a
// credit per item it has passed on (Credit); the window is the same.
//
// Thread-safe: items arrive on Connect handler threads, callers wait on theirs. A sink is
// called on the delivering thread, never under the relay's lock.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/tokens.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

inline const std::string& RelayKey(const v1::WorkerLogLines& batch) { return batch.stream_id(); }
inline const std::string& RelayKey(const v1::WorkerInvokeOutput& output) { return output.invoke_id(); }

template <typename Item>
class CreditRelay {
 public:
  CreditRelay(std::string kind, int window) : kind_(std::move(kind)), window_(window) {}

  int window() const { return window_; }

  // Where a stream opened with OpenWithSink goes: each item, in order, and once, if the stream
  // fails (worker lost, credit violated), why. Neither may block.
  struct Sink {
    std::function<void(Item)> on_item;
    std::function<void(const absl::Status&)> on_failure;
  };

  // A new stream from `worker_name`; returns its id.
  std::string Open(const std::string& worker_name) {
    std::lock_guard<std::mutex> lock(mu_);
    // Unguessable, so one worker cannot inject items into another's stream by guessing ids.
    std::string id = absl::StrCat(kind_, "-", ++next_id_, "-", RandomToken(12));
    streams_[id].worker = worker_name;
    return id;
  }

  // As Open, for a consumer told of each item by `sink`.
  std::string OpenWithSink(const std::string& worker_name, std::shared_ptr<const Sink> sink) {
    std::string id = Open(worker_name);
    std::lock_guard<std::mutex> lock(mu_);
    streams_[id].sink = std::move(sink);
    return id;
  }

  // The consumer of a sink stream has passed one item on: the worker may send one more.
  void Credit(const std::string& stream_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream_id);
    if (it != streams_.end() && it->second.in_hand > 0) --it->second.in_hand;
  }

  void Close(const std::string& stream_id) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(stream_id);
  }

  // An item from a worker. Items for unknown (already closed) streams are dropped.
  void Deliver(const std::string& worker_name, const Item& item) {
    std::shared_ptr<const Sink> sink;
    absl::Status failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(RelayKey(item));
      if (it == streams_.end() || it->second.worker != worker_name || !it->second.failure.ok()) return;
      Stream& stream = it->second;
      const int held = stream.sink != nullptr ? stream.in_hand : static_cast<int>(stream.items.size());
      if (held > window_) {
        stream.failure = absl::ResourceExhaustedError(
            absl::StrCat("the worker sent ", kind_, " beyond its credit; stream closed"));
        stream.items.clear();
        failed = stream.failure;
      } else if (stream.sink != nullptr) {
        ++stream.in_hand;
      } else {
        stream.items.push_back(item);
      }
      sink = stream.sink;
    }
    if (sink == nullptr) {
      cv_.notify_all();
    } else if (!failed.ok()) {
      sink->on_failure(failed);
    } else {
      sink->on_item(item);
    }
  }

  // The worker's connection broke: its streams end with UNAVAILABLE.
  void WorkerLost(const std::string& worker_name) {
    std::vector<std::shared_ptr<const Sink>> sinks;
    const absl::Status lost = absl::UnavailableError(absl::StrCat("worker ", worker_name, " disconnected"));
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, s] : streams_) {
        if (s.worker == worker_name && s.failure.ok()) {
          s.failure = lost;
          if (s.sink != nullptr) sinks.push_back(s.sink);
        }
      }
    }
    cv_.notify_all();
    for (const auto& sink : sinks) sink->on_failure(lost);
  }

  // The next item, or nullopt after `timeout`. Once the stream failed (worker lost, credit
  // violated), returns that status instead.
  absl::StatusOr<std::optional<Item>> Next(const std::string& stream_id, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    auto ready = [&] {
      auto it = streams_.find(stream_id);
      return it == streams_.end() || !it->second.items.empty() || !it->second.failure.ok();
    };
    cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), ready);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return absl::CancelledError(absl::StrCat(kind_, " stream closed"));
    if (!it->second.items.empty()) {
      Item item = std::move(it->second.items.front());
      it->second.items.pop_front();
      return std::optional<Item>(std::move(item));
    }
    if (!it->second.failure.ok()) return it->second.failure;
    return std::optional<Item>();
  }

  size_t open_streams() {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_.size();
  }

 private:
  struct Stream {
    std::string worker;
    std::deque<Item> items;               // Waiting for Next.
    std::shared_ptr<const Sink> sink;     // Set: items go here instead.
    int in_hand = 0;                      // Items given to the sink and not yet credited.
    absl::Status failure;
  };

  const std::string kind_;
  const int window_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, Stream> streams_ ABSL_GUARDED_BY(mu_);
};

// What a sink holds of a consumer that must never wait (a reactor): the consumer while it lives.
// A delivery holds `mu` while it calls in, so the consumer's end, which clears `consumer` under
// `mu`, waits out a delivery in progress, and none comes after.
template <typename Consumer>
struct RelayMailbox {
  std::mutex mu;
  Consumer* consumer = nullptr;
};

// A sink handing each item to the mailbox's consumer (OnRelayed) and a failure to
// OnRelayFailed, while it has one.
template <typename Item, typename Consumer>
std::shared_ptr<const typename CreditRelay<Item>::Sink> SinkTo(std::shared_ptr<RelayMailbox<Consumer>> mailbox) {
  auto sink = std::make_shared<typename CreditRelay<Item>::Sink>();
  sink->on_item = [mailbox](Item item) {
    std::lock_guard<std::mutex> lock(mailbox->mu);
    if (mailbox->consumer != nullptr) mailbox->consumer->OnRelayed(std::move(item));
  };
  sink->on_failure = [mailbox](const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mailbox->mu);
    if (mailbox->consumer != nullptr) mailbox->consumer->OnRelayFailed(status);
  };
  return sink;
}

using LogRelay = CreditRelay<v1::WorkerLogLines>;
using InvokeRelay = CreditRelay<v1::WorkerInvokeOutput>;

}  // namespace gantry::controller
