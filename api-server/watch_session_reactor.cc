#include "api-server/watch_session_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/session_phase.h"
#include "common/status.h"

namespace gantry::api {
namespace {

const grpc::Status kBusy(grpc::StatusCode::UNAVAILABLE,
                         "this API server has too many watch reads queued; watch again, here or on another replica");

}  // namespace

WatchSessionReactor* WatchSessionReactor::Start(const WatchSessionDeps& deps, grpc::CallbackServerContext* context,
                                                std::string session_id) {
  auto* watch = new WatchSessionReactor(deps, context, std::move(session_id));
  std::lock_guard<std::mutex> lock(watch->mu_);
  watch->job_ = true;
  if (!deps.reads->TrySubmit([watch] { watch->Admit(); })) {
    watch->job_ = false;
    watch->EndLocked(kBusy);
  }
  return watch;
}

WatchSessionReactor::WatchSessionReactor(const WatchSessionDeps& deps, grpc::CallbackServerContext* context,
                                         std::string session_id)
    : deps_(deps),
      session_id_(std::move(session_id)),
      credentials_(CallCredentials::Of(*context)),
      ids_(CopyCurrentRequestIds()) {}

void WatchSessionReactor::Admit() {
  MaybeRequestIdScope scope(ids_);
  bool cancelled = false;  // Before its turn came.
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled = finished_ || end_.has_value();
  }
  if (cancelled) {
    JobDone();
    return;
  }
  absl::StatusOr<StreamAdmission> admission = AdmitStream(deps_.db, deps_.auth, deps_.streams, credentials_);
  absl::Status admitted = admission.status();
  std::unique_ptr<SessionWatchHub::Subscription> subscription;
  if (admitted.ok()) {
    // Subscribed before the first read, so no change can slip between the two.
    auto subscribed = deps_.watches->SubscribeCalls(session_id_, [this] { Changed(); });
    admitted = subscribed.status();
    if (subscribed.ok()) subscription = std::move(*subscribed);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    subscription_ = std::move(subscription);
    if (!admitted.ok()) {
      EndLocked(ToGrpcStatus(admitted));
    } else {
      caller_ = admission->caller;
      lease_.emplace(std::move(admission->lease));
    }
  }
  if (admitted.ok()) ReadUntilCurrent();
  JobDone();
}

void WatchSessionReactor::Read() {
  MaybeRequestIdScope scope(ids_);
  ReadUntilCurrent();
  JobDone();
}

void WatchSessionReactor::ReadUntilCurrent() {
  while (true) {
    Caller caller;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || end_.has_value()) return;
      caller = *caller_;
      read_again_ = false;
    }
    absl::StatusOr<v1::Session> session = deps_.sessions->Get(caller, session_id_);
    std::lock_guard<std::mutex> lock(mu_);
    TakeLocked(session);
    // A change that came during the read may not be in it.
    if (!read_again_ || terminal_seen_) return;
  }
}

void WatchSessionReactor::Changed() {
  std::lock_guard<std::mutex> lock(mu_);
  if (done_ || finished_ || end_.has_value() || terminal_seen_) return;
  if (job_) {
    read_again_ = true;
    return;
  }
  job_ = true;
  if (!deps_.reads->TrySubmit([this] { Read(); })) {
    job_ = false;
    EndLocked(kBusy);
  }
}

void WatchSessionReactor::TakeLocked(const absl::StatusOr<v1::Session>& session) {
  if (!session.ok()) {
    EndLocked(ToGrpcStatus(session.status()));
    return;
  }
  if (IsTerminal(session->phase())) terminal_seen_ = true;
  if (session->version() == latest_version_) return;
  latest_version_ = session->version();
  next_ = *session;
  if (!writing_) WriteNextLocked();
}

void WatchSessionReactor::WriteNextLocked() {
  in_flight_ = *std::move(next_);
  next_.reset();
  writing_ = true;
  StartWrite(&in_flight_);
}

void WatchSessionReactor::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  writing_ = false;
  if (!ok && !end_.has_value()) end_ = grpc::Status(grpc::StatusCode::CANCELLED, "the watcher went away");
  if (end_.has_value()) {
    finished_ = true;
    Finish(*end_);
    return;
  }
  if (next_.has_value()) {
    WriteNextLocked();
  } else if (IsTerminal(in_flight_.phase())) {
    EndLocked(grpc::Status::OK);
  }
}

void WatchSessionReactor::EndLocked(const grpc::Status& status) {
  if (finished_ || end_.has_value()) return;
  if (writing_) {
    end_ = status;  // OnWriteDone finishes.
    return;
  }
  finished_ = true;
  Finish(status);
}

void WatchSessionReactor::OnCancel() {
  std::lock_guard<std::mutex> lock(mu_);
  EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the watch was cancelled"));
}

void WatchSessionReactor::OnDone() {
  bool idle = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    idle = !job_;
  }
  if (idle) Delete();
}

void WatchSessionReactor::JobDone() {
  bool done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A change that came after the job's last read began, and too late for the job to see it
    // (Changed found the job still running), is read by the next job: clearing job_ here
    // without looking would lose it.
    if (read_again_ && !terminal_seen_ && !done_ && !finished_ && !end_.has_value()) {
      if (deps_.reads->TrySubmit([this] { Read(); })) return;  // job_ stays set.
      EndLocked(kBusy);
    }
    job_ = false;
    done = done_;
  }
  // Not done: OnDone, on another thread, may delete the watch from here on; nothing of it is
  // touched again.
  if (done) Delete();
}

void WatchSessionReactor::Delete() {
  std::unique_ptr<SessionWatchHub::Subscription> subscription;
  {
    std::lock_guard<std::mutex> lock(mu_);
    subscription = std::move(subscription_);
  }
  // Outside mu_: the hub calls Changed under its own lock, and Changed takes mu_. Once this
  // returns no Changed is running or will run.
  subscription.reset();
  delete this;
}

}  // namespace gantry::api
