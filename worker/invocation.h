// What the InvokeRunner holds for each request in flight, whatever its handler's kind, and
// the outputs every kind sends. Invocations live on the runner's EventLoop: each is created,
// driven and destroyed on the loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "gantry/v1/worker_service.pb.h"

namespace gantry::worker {

class Invocation {
 public:
  // Sends one output up the stream to the controller; false if the stream is gone.
  using Send = std::function<bool(const v1::WorkerInvokeOutput&)>;

  virtual ~Invocation() = default;
  // The controller granted `credit` more chunks.
  virtual void AddCredit(int credit) = 0;
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
