#include "controller/api_link.h"

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/tls.h"
#include "common/tokens.h"

namespace gantry::controller {
namespace {
constexpr int kMaxEventsPerCall = 500;
constexpr absl::Duration kCallTimeout = absl::Seconds(5);
}  // namespace

ApiLink::ApiLink(ApiLinkConfig config, std::shared_ptr<grpc::ChannelCredentials> creds,
                 Fleet* fleet, StopFn stop_session)
    : config_(std::move(config)),
      api_(config_.api_url, std::move(creds), {absl::Milliseconds(200), absl::Seconds(10)}),
      fleet_(fleet),
      stop_session_(std::move(stop_session)),
      stream_id_(RandomToken(16)) {}

v1::RegistryService::Stub& ApiLink::Stub() {
  std::shared_ptr<grpc::Channel> channel = api_.Channel();
  if (channel != stub_channel_) {
    stub_channel_ = channel;
    stub_ = v1::RegistryService::NewStub(channel);
  }
  return *stub_;
}

ApiLink::~ApiLink() { Shutdown(absl::Now()); }

void ApiLink::Start() { thread_ = std::thread([this] { Loop(); }); }

bool ApiLink::registered() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !controller_id_.empty();
}

void ApiLink::Report(v1::SessionEvent event) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= config_.max_pending_events) {
      // Bounded: the oldest report is dropped. What it said is healed from the other side: the
      // heartbeats list the sessions held here (the API server fails the ones missing), and a
      // session left SCHEDULED is asked for again, which reports its state anew.
      spdlog::error("API server unreachable for too long: dropping event for session {}",
                    pending_.front().session_id());
      pending_.pop_front();
    }
    event.set_sequence(next_sequence_++);
    pending_.push_back(std::move(event));
  }
  cv_.notify_all();
}

size_t ApiLink::unacknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

void ApiLink::Redial(const grpc::Status& status) {
  const std::string was = api_.address();
  if (api_.Failed(status)) spdlog::info("API server at {} unavailable: dialing afresh", was);
}

bool ApiLink::Register() {
  FleetSnapshot snap = fleet_->Snapshot();
  v1::RegisterControllerRequest request;
  request.set_join_token(config_.join_token);
  request.set_name(config_.name);
  request.set_type(config_.type);
  request.set_endpoint(config_.endpoint);
  for (const auto& [k, v] : config_.labels) (*request.mutable_labels())[k] = v;
  *request.mutable_capacity() = snap.capacity;
  for (const auto& s : snap.skills) request.add_skills(s);
  for (const auto& c : snap.capabilities) *request.add_capabilities() = c;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::RegisterControllerResponse response;
  grpc::Status status = Stub().RegisterController(&ctx, request, &response);
  if (!status.ok()) {
    spdlog::warn("register with API server at {}: {} ({})", api_.address(),
                 status.error_message(), static_cast<int>(status.error_code()));
    Redial(status);
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  controller_id_ = response.controller_id();
  token_ = response.controller_token();
  if (response.heartbeat_interval_ms() > 0) {
    heartbeat_interval_ = absl::Milliseconds(response.heartbeat_interval_ms());
  }
  spdlog::info("registered with the API server as {}", controller_id_);
  return true;
}

std::string ApiLink::controller_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return controller_id_;
}

absl::Status ApiLink::AdoptToken(const std::string& controller_id, const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  if (controller_id_.empty()) return absl::UnavailableError("not registered with the API server yet");
  if (controller_id != controller_id_ || token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("controller_id: this controller is ", controller_id_, ", not ", controller_id.substr(0, 64)));
  }
  token_ = token;
  spdlog::info("controller token rotated: the new one is in use");
  return absl::OkStatus();
}

bool ApiLink::SendHeartbeat() {
  FleetSnapshot snap = fleet_->Snapshot();
  v1::HeartbeatRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_controller_id(controller_id_);
    request.set_controller_token(token_);
  }
  *request.mutable_capacity() = snap.capacity;
  *request.mutable_load() = snap.load;
  for (const auto& s : snap.skills) request.add_skills(s);
  for (const auto& c : snap.capabilities) *request.add_capabilities() = c;
  for (auto& id : snap.session_ids) request.add_session_ids(std::move(id));
  request.set_session_ids_complete(true);
  grpc::ClientContext ctx;
  const absl::Time sent_at = absl::Now();
  ctx.set_deadline(absl::ToChronoTime(sent_at + kCallTimeout));
  v1::HeartbeatResponse response;
  grpc::Status status = Stub().Heartbeat(&ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      status.error_code() == grpc::StatusCode::NOT_FOUND) {
    spdlog::warn("heartbeat refused ({}); registering again", status.error_message());
    std::lock_guard<std::mutex> lock(mu_);
    controller_id_.clear();
    return false;
  }
  if (!status.ok()) {
    spdlog::warn("heartbeat: {}", status.error_message());
    Redial(status);
    return false;
  }
  fleet_->SetDraining(response.cordoned(), sent_at);
  StopUnwanted(response.sessions_to_stop());
  return true;
}

bool ApiLink::FlushEvents() {
  v1::ReportSessionEventsRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return true;
    request.set_controller_id(controller_id_);
    request.set_controller_token(token_);
    request.set_stream_id(stream_id_);
    for (size_t i = 0; i < pending_.size() && i < kMaxEventsPerCall; ++i) {
      *request.add_events() = pending_[i];
    }
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kCallTimeout));
  v1::ReportSessionEventsResponse response;
  grpc::Status status = Stub().ReportSessionEvents(&ctx, request, &response);
  if (!status.ok()) {
    spdlog::warn("report {} session event(s): {}", request.events_size(), status.error_message());
    Redial(status);
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
      std::lock_guard<std::mutex> lock(mu_);
      controller_id_.clear();
    }
    return false;
  }
  {
    // Forget what is acknowledged: everything through applied_through (a sequence numbers one
    // event, so nothing queued after this part can be among them).
    // An API server from before numbered streams answers 0 having applied the whole part.
    const uint64_t through = response.applied_through() != 0 ? response.applied_through()
                                                              : request.events(request.events_size() - 1).sequence();
    std::lock_guard<std::mutex> lock(mu_);
    while (!pending_.empty() && pending_.front().sequence() <= through) pending_.pop_front();
  }
  StopUnwanted(response.sessions_to_stop());
  return true;
}

void ApiLink::StopUnwanted(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  for (const auto& id : ids) {
    spdlog::info("API server no longer wants session {}; stopping it", id);
    stop_session_(id);
  }
}

void ApiLink::Loop() {
  absl::Time next_heartbeat = absl::InfinitePast();
  uint64_t reported_generation = fleet_->generation();
  // Capacity changes are reported early, but at most this often.
  constexpr absl::Duration kEarlyHeartbeatSpacing = absl::Milliseconds(200);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (!registered() && !Register()) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoMilliseconds(api_.Backoff()), [&] { return stopping_; });
      continue;
    }
    bool ok = FlushEvents();
    if (ok && fleet_->generation() != reported_generation) {
      next_heartbeat = std::min(next_heartbeat, last_heartbeat_ + kEarlyHeartbeatSpacing);
    }
    if (ok && absl::Now() >= next_heartbeat) {
      reported_generation = fleet_->generation();
      last_heartbeat_ = absl::Now();
      ok = SendHeartbeat();
      std::lock_guard<std::mutex> lock(mu_);
      next_heartbeat = absl::Now() + heartbeat_interval_;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(api_.Backoff()), [&] { return stopping_; });
      continue;
    }
    api_.Recovered();
    // Wake for the next heartbeat, a pending event, or to look for a capacity change.
    absl::Time wake = std::min(next_heartbeat, absl::Now() + kEarlyHeartbeatSpacing);
    cv_.wait_until(lock, absl::ToChronoTime(wake), [&] { return stopping_ || !pending_.empty(); });
  }
}

void ApiLink::Shutdown(absl::Time deadline) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!registered()) return;
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_.empty()) break;
    }
    if (!FlushEvents()) break;
  }
  v1::DeregisterRequest request;
  {
    std::lock_guard<std::mutex> lock(mu_);
    request.set_controller_id(controller_id_);
    request.set_controller_token(token_);
    controller_id_.clear();
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(std::max(deadline, absl::Now() + absl::Seconds(1))));
  v1::DeregisterResponse response;
  grpc::Status status = Stub().Deregister(&ctx, request, &response);
  if (status.ok()) {
    spdlog::info("deregistered from the API server");
  } else {
    spdlog::warn("deregister: {}", status.error_message());
  }
}

}  // namespace gantry::controller
