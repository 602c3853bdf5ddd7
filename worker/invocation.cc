#include "worker/invocation.h"

namespace gantry::worker {

bool OutputSender::Chunk(std::string data, bool last) {
  v1::WorkerInvokeOutput out;
  out.set_invoke_id(id_);
  out.mutable_chunk()->set_data(std::move(data));
  out.mutable_chunk()->set_sequence(sequence_++);
  out.mutable_chunk()->set_last(last);
  return (*send_)(out);
}

bool OutputSender::Error(absl::StatusCode code, const std::string& message) {
  v1::WorkerInvokeOutput out;
  out.set_invoke_id(id_);
  out.set_error_code(static_cast<int>(code));
  out.set_error_message(message);
  return (*send_)(out);
}

}  // namespace gantry::worker
