#include "controller/log_stream_reactor.h"

#include <utility>

#include "common/status.h"

namespace gantry::controller {

LogStreamReactor* LogStreamReactor::Start(Fleet* fleet, LogRelay* logs, const v1::ControllerStreamLogsRequest& request,
                                          const absl::Status& refused) {
  auto* stream = new LogStreamReactor(logs);
  std::lock_guard<std::mutex> lock(stream->mu_);
  auto source = refused.ok() ? fleet->LogSource(request.session_id(), request.worker_id())
                             : absl::StatusOr<std::pair<std::string, std::shared_ptr<WorkerChannel>>>(refused);
  if (!source.ok()) {
    stream->EndLocked(ToGrpcStatus(source.status()), /*now=*/true);
    return stream;
  }
  stream->worker_ = source->second;
  stream->stream_id_ = logs->OpenWithSink(source->first, SinkTo<v1::WorkerLogLines>(stream->mailbox_));
  v1::ControllerMessage start;
  auto* cmd = start.mutable_stream_logs();
  cmd->set_stream_id(stream->stream_id_);
  cmd->set_session_id(request.session_id());
  cmd->set_tail_lines(request.tail_lines());
  cmd->set_follow(request.follow());
  cmd->set_credit(logs->window());
  // Send only queues (WorkerStreamChannel): nothing waits for the worker here.
  if (!stream->worker_->Send(start)) {
    stream->LeaveWorkerLocked(/*tell_it_to_stop=*/false);
    stream->EndLocked(ToGrpcStatus(absl::UnavailableError("the session's worker disconnected")), /*now=*/true);
  }
  return stream;
}

LogStreamReactor::LogStreamReactor(LogRelay* logs) : logs_(logs), mailbox_(std::make_shared<RelayMailbox<LogStreamReactor>>()) {
  mailbox_->consumer = this;
}

void LogStreamReactor::OnRelayed(v1::WorkerLogLines batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || end_.has_value() || worker_ == nullptr) return;
  for (auto& entry : *batch.mutable_entries()) waiting_.push_back({std::move(entry), false});
  if (batch.end()) {
    LeaveWorkerLocked(/*tell_it_to_stop=*/false);
    EndLocked(batch.error_code() != 0
                  ? grpc::Status(static_cast<grpc::StatusCode>(batch.error_code()), batch.error_message())
                  : grpc::Status::OK,
              /*now=*/false);
    return;
  }
  if (waiting_.empty()) {
    // A batch with no lines still takes a credit: return it at once.
    logs_->Credit(stream_id_);
    v1::ControllerMessage credit;
    credit.mutable_log_credit()->set_stream_id(stream_id_);
    credit.mutable_log_credit()->set_credit(1);
    worker_->Send(credit);
    return;
  }
  waiting_.back().ends_batch = true;
  if (!writing_) WriteNextLocked();
}

void LogStreamReactor::OnRelayFailed(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || end_.has_value() || worker_ == nullptr) return;
  LeaveWorkerLocked(/*tell_it_to_stop=*/false);
  EndLocked(ToGrpcStatus(status), /*now=*/false);
}

void LogStreamReactor::WriteNextLocked() {
  in_flight_ = std::move(waiting_.front());
  waiting_.pop_front();
  writing_ = true;
  StartWrite(&in_flight_.entry, grpc::WriteOptions());  // No buffer hint: InvokeReactor's says why.
}

void LogStreamReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok) {
    LeaveWorkerLocked(/*tell_it_to_stop=*/true);
    EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the caller went away"), /*now=*/true);
    return;
  }
  if (in_flight_.ends_batch && worker_ != nullptr) {
    logs_->Credit(stream_id_);
    v1::ControllerMessage credit;
    credit.mutable_log_credit()->set_stream_id(stream_id_);
    credit.mutable_log_credit()->set_credit(1);
    worker_->Send(credit);
  }
  if (!waiting_.empty()) {
    WriteNextLocked();
  } else if (end_.has_value() && !finished_) {
    finished_ = true;
    Finish(*end_);
  }
}

void LogStreamReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  LeaveWorkerLocked(/*tell_it_to_stop=*/true);
  EndLocked(grpc::Status::CANCELLED, /*now=*/true);
}

void LogStreamReactor::EndLocked(const grpc::Status& status, bool now) {
  if (finished_) return;
  if (now) waiting_.clear();
  if (!end_.has_value()) end_ = status;
  if (writing_) return;  // OnWriteDone goes on.
  if (!waiting_.empty()) {
    WriteNextLocked();  // The last lines first; OnWriteDone finishes.
    return;
  }
  finished_ = true;
  Finish(*end_);
}

void LogStreamReactor::LeaveWorkerLocked(bool tell_it_to_stop) {
  if (worker_ == nullptr) return;
  if (tell_it_to_stop) {
    v1::ControllerMessage cancel;
    cancel.mutable_cancel_logs()->set_stream_id(stream_id_);
    worker_->Send(cancel);
  }
  logs_->Close(stream_id_);
  worker_.reset();
}

void LogStreamReactor::OnDone() {
  {
    // Waits out a delivery in progress; none comes after.
    std::lock_guard<std::mutex> lock(mailbox_->mu);
    mailbox_->consumer = nullptr;
  }
  delete this;
}

}  // namespace gantry::controller
