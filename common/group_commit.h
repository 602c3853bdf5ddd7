// Group commit: callers that each have a write to make on the same key (one controller's GPU
// reservations; every controller's heartbeats) have them made together, one transaction for as
// many as are waiting, instead of one transaction and one commit each. PostgreSQL's commit (a
// disk flush) and, for reservations, the per-controller lock taken in turns are what limit the
// rate; shared, they cost the same for a hundred writes as for one.
//
// No thread of its own: whoever submits while no write for its key is in progress writes
// everything queued under that key (its own item included, up to max_batch, oldest first) on
// its own thread; the others wait for the write that takes theirs. A caller still queued at its
// deadline leaves the queue unwritten; one already taken into a write waits for that write,
// which its writer bounds (PgPool's bounds).
//
// Thread-safe. Blocking: never call Submit from a gRPC callback-reactor thread.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace gantry {

template <typename Item>
class GroupCommit {
 public:
  // Writes a batch: fills in each item's outcome (the items are the callers', alive until
  // written). Runs on a submitting thread, with no lock of this class held.
  using Writer = std::function<void(const std::vector<Item*>& batch)>;

  explicit GroupCommit(Writer write, size_t max_batch = 0) : write_(std::move(write)), max_batch_(max_batch) {}

  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // True once `item` was written (by this thread or another); false if `deadline` passed while
  // it was still queued: it was not written and never will be.
  bool Submit(const std::string& key, Item* item, absl::Time deadline) {
    bool written = false;
    std::unique_lock<std::mutex> lock(mu_);
    Queue& queue = queues_[key];
    queue.waiting.push_back(Waiter{item, &written});
    ++queued_;
    while (!written) {
      if (queue.writing) {
        if (deadline == absl::InfiniteFuture()) {
          written_.wait(lock);
        } else if (written_.wait_until(lock, absl::ToChronoTime(deadline)) == std::cv_status::timeout && !written) {
          auto mine = std::find_if(queue.waiting.begin(), queue.waiting.end(),
                                   [&](const Waiter& w) { return w.written == &written; });
          if (mine != queue.waiting.end()) {
            queue.waiting.erase(mine);
            --queued_;
            return false;  // The writer in progress removes the queue if it is left empty.
          }
          // Taken into the write in progress: it answers this one too.
        }
        continue;
      }
      queue.writing = true;
      const size_t n = max_batch_ == 0 ? queue.waiting.size() : std::min(max_batch_, queue.waiting.size());
      std::vector<Waiter> batch(queue.waiting.begin(), queue.waiting.begin() + static_cast<std::ptrdiff_t>(n));
      queue.waiting.erase(queue.waiting.begin(), queue.waiting.begin() + static_cast<std::ptrdiff_t>(n));
      queued_ -= n;
      lock.unlock();
      std::vector<Item*> items;
      items.reserve(batch.size());
      for (const Waiter& w : batch) items.push_back(w.item);
      write_(items);
      lock.lock();
      for (const Waiter& w : batch) *w.written = true;
      queue.writing = false;
      written_.notify_all();
    }
    // The last one out removes the key's queue, so keys come and go without the map growing.
    // Looked up again: a writer on another thread may have removed it already.
    auto it = queues_.find(key);
    if (it != queues_.end() && !it->second.writing && it->second.waiting.empty()) queues_.erase(it);
    return true;
  }

  // Items waiting for a write, across keys (not those being written).
  size_t queued() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queued_;
  }

 private:
  struct Waiter {
    Item* item;
    bool* written;  // The submitter's: set, under mu_, once its item is written.
  };
  struct Queue {
    std::vector<Waiter> waiting;
    bool writing = false;
  };

  const Writer write_;
  const size_t max_batch_;
  mutable std::mutex mu_;
  std::condition_variable written_;
  std::map<std::string, Queue> queues_ ABSL_GUARDED_BY(mu_);
  size_t queued_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace gantry
