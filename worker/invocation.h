// What the InvokeRunner holds for each request in flight, whatever its handler's kind, and
// the outputs every kind sends. Invocations live on the runner's EventLoop: each is created,
// driven and destroyed on the loop's thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::worker {

// What a request may still send: chunks, and bytes of chunk data where the controller counts
// them (an older controller grants chunks only). A chunk goes while any of both is left, so
// the last one may overshoot the bytes; the controller's window allows for that.
class ChunkCredit {
 public:
  ChunkCredit() = default;
  ChunkCredit(int64_t chunks, int64_t bytes) : chunks_(std::max<int64_t>(0, chunks)), counts_bytes_(bytes > 0), bytes_(bytes) {}

  bool CanSend() const { return chunks_ > 0 && (!counts_bytes_ || bytes_ > 0); }
  // The most a chunk read now should hold, given `preferred`: an exec handler's output is read
  // no larger than the bytes left, so it never overshoots.
  size_t ReadSize(size_t preferred) const {
    return counts_bytes_ ? static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(preferred), bytes_)) : preferred;
  }
  void Spend(size_t chunk_bytes) {
    --chunks_;
    if (counts_bytes_) bytes_ -= static_cast<int64_t>(chunk_bytes);
  }
  void Add(int64_t chunks, int64_t bytes) {
    chunks_ += std::max<int64_t>(0, chunks);
    if (counts_bytes_) bytes_ += std::max<int64_t>(0, bytes);
  }

 private:
  int64_t chunks_ = 0;
  bool counts_bytes_ = false;
  int64_t bytes_ = 0;
};

class Invocation {
 public:
  // Sends one output up the stream to the controller; false if the stream is gone.
  using Send = std::function<bool(const v1::WorkerInvokeOutput&)>;

  virtual ~Invocation() = default;
  // The controller granted `chunks` more chunks and `bytes` more bytes of them.
  virtual void AddCredit(int64_t chunks, int64_t bytes) = 0;
  // The client is gone: stop the handler's work and send nothing more.
  virtual void Cancel() = 0;
};

// Numbers an invocation's chunks and sends them with its id.
class OutputSender {
 public:
  OutputSender(const Invocation::Send* send, std::string invoke_id) : send_(send), id_(std::move(invoke_id)) {}
  bool Chunk(std::string data, bool last);
  bool Error(absl::StatusCode code, const std::string& message);
  const std::string& id() const { return id_; }

 private:
  const Invocation::Send* send_;
  const std::string id_;
  int64_t sequence_ = 0;
};

}  // namespace gantry::worker
