// Streams from workers to ControllerService callers — log batches, invoke output — with credit
// flow control. Each stream holds at most `window` items, and where the relay counts bytes
// (invoke output: chunks of 64 bytes and of megabytes both stream) at most `window_bytes` of
// them plus one item: the worker may only send while it has credit (plus one final item, e.g.
// an error), and the caller returns credit for what it has written to its client, so memory
// per stream is bounded however slow the reader is. A worker that sends beyond that has its
// stream closed with RESOURCE_EXHAUSTED.
//
// A stream's consumer must never wait (a reactor): it is handed each item as it arrives (a
// Sink) and returns credit for what it has passed on (Credit).
//
// Thread-safe: items arrive on the worker streams' threads. A sink is called on the delivering
// thread, never under the relay's lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tokens.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::controller {

inline const std::string& RelayKey(const v1::WorkerLogLines& batch) { return batch.stream_id(); }
inline const std::string& RelayKey(const v1::WorkerInvokeOutput& output) { return output.invoke_id(); }
// The bytes an item spends of a window counted in bytes.
inline int64_t RelayBytes(const v1::WorkerLogLines& /*batch*/) { return 0; }  // Batches are bounded (64 KiB).
inline int64_t RelayBytes(const v1::WorkerInvokeOutput& output) {
  return static_cast<int64_t>(output.chunk().data().size());
}

template <typename Item>
class CreditRelay {
 public:
  // `window_bytes` 0: bytes are not counted.
  CreditRelay(std::string kind, int window, int64_t window_bytes = 0)
      : kind_(std::move(kind)), window_(window), window_bytes_(window_bytes) {}

  int window() const { return window_; }
  int64_t window_bytes() const { return window_bytes_; }

  // Where a stream's items go: each item, in order, and once, if the stream fails (worker lost,
  // credit violated), why. Neither may block.
  struct Sink {
    std::function<void(Item)> on_item;
    std::function<void(const absl::Status&)> on_failure;
  };

  // A new stream from `worker_name`, its items told to `sink`; returns its id.
  std::string OpenWithSink(const std::string& worker_name, std::shared_ptr<const Sink> sink) {
    std::lock_guard<std::mutex> lock(mu_);
    // Unguessable, so one worker cannot inject items into another's stream by guessing ids.
    std::string id = absl::StrCat(kind_, "-", ++next_id_, "-", RandomToken(12));
    Stream& stream = streams_[id];
    stream.worker = worker_name;
    stream.sink = std::move(sink);
    return id;
  }

  // The consumer of a sink stream has passed `items` on, of `bytes`: the worker may send as
  // much more (the consumer grants it the same).
  void Credit(const std::string& stream_id, int items = 1, int64_t bytes = 0) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return;
    it->second.in_hand = std::max(0, it->second.in_hand - items);
    it->second.bytes_in_hand = std::max<int64_t>(0, it->second.bytes_in_hand - bytes);
  }

  void Close(const std::string& stream_id) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_.erase(stream_id);
  }

  // An item from a worker. Items for unknown (already closed) streams are dropped.
  void Deliver(const std::string& worker_name, Item item) {
    std::shared_ptr<const Sink> sink;
    absl::Status failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = streams_.find(RelayKey(item));
      if (it == streams_.end() || it->second.worker != worker_name || !it->second.failure.ok()) return;
      Stream& stream = it->second;
      const int64_t bytes = RelayBytes(item);
      // The worker sends while it has any credit, so with the bytes before this item already at
      // the window it had none (credit granted is only ever credit handed back here).
      const bool beyond_bytes = window_bytes_ > 0 && bytes > 0 && stream.bytes_in_hand >= window_bytes_;
      if (stream.in_hand > window_ || beyond_bytes) {
        stream.failure = absl::ResourceExhaustedError(
            absl::StrCat("the worker sent ", kind_, " beyond its credit; stream closed"));
        failed = stream.failure;
      } else {
        ++stream.in_hand;
        stream.bytes_in_hand += bytes;
      }
      sink = stream.sink;
    }
    if (!failed.ok()) {
      sink->on_failure(failed);
    } else {
      sink->on_item(std::move(item));
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
          sinks.push_back(s.sink);
        }
      }
    }
    for (const auto& sink : sinks) sink->on_failure(lost);
  }

  size_t open_streams() {
    std::lock_guard<std::mutex> lock(mu_);
    return streams_.size();
  }

 private:
  struct Stream {
    std::string worker;
    std::shared_ptr<const Sink> sink;
    int in_hand = 0;                      // Items given to the sink and not yet credited.
    int64_t bytes_in_hand = 0;            // Their bytes (RelayBytes).
    absl::Status failure;
  };

  const std::string kind_;
  const int window_;
  const int64_t window_bytes_;
  std::mutex mu_;
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
