#include "api-server/session_watch_hub.h"

#include <pqxx/connection>
#include <pqxx/notification>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/pg_pool.h"

namespace gantry::api {
namespace {

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, SessionWatchHub* hub)
      : pqxx::notification_receiver(c, "gantry_sessions"), hub_(hub) {}
  void operator()(const std::string& payload, int) override {
    hub_->Notify(payload.substr(0, payload.find(':')));
  }

 private:
  SessionWatchHub* hub_;
};

}  // namespace

SessionWatchHub::Subscription::~Subscription() {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  auto it = hub_->by_session_.find(id_);
  if (it != hub_->by_session_.end()) {
    it->second.erase(this);
    if (it->second.empty()) hub_->by_session_.erase(it);
  }
  --hub_->count_;
}

bool SessionWatchHub::Subscription::Wait(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(hub_->mu_);
  changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] { return signalled_; });
  bool was = signalled_;
  signalled_ = false;
  return was;
}

void SessionWatchHub::Subscription::Signal() {
  signalled_ = true;
  if (on_change_) {
    on_change_();
  } else {
    changed_.notify_one();
  }
}

SessionWatchHub::SessionWatchHub(std::string dsn, size_t max_watchers, absl::Duration recheck)
    : dsn_(std::move(dsn)), max_watchers_(max_watchers), recheck_(recheck) {}

SessionWatchHub::~SessionWatchHub() { Stop(); }

void SessionWatchHub::Start() { thread_ = std::thread([this] { Loop(); }); }

void SessionWatchHub::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<SessionWatchHub::Subscription>> SessionWatchHub::Subscribe(
    const std::string& session_id) {
  return SubscribeCalls(session_id, nullptr);
}

absl::StatusOr<std::unique_ptr<SessionWatchHub::Subscription>> SessionWatchHub::SubscribeCalls(
    const std::string& session_id, std::function<void()> on_change) {
  std::lock_guard<std::mutex> lock(mu_);
  if (count_ >= max_watchers_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this API server already serves ", count_, " watches; retry on another replica or later"));
  }
  // Keyed as PostgreSQL prints ids (lower case), which is what NOTIFY carries: a watch by an
  // upper-case id is told of each change at once too, not at its next periodic re-read.
  const std::string key = absl::AsciiStrToLower(session_id);
  std::unique_ptr<Subscription> sub(new Subscription(this, key, std::move(on_change)));
  by_session_[key].insert(sub.get());
  ++count_;
  return sub;
}

void SessionWatchHub::Notify(const std::string& session_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_session_.find(absl::AsciiStrToLower(session_id));
    if (it == by_session_.end()) return;
    for (Subscription* s : it->second) s->Signal();
  }
}

void SessionWatchHub::NotifyAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, subs] : by_session_) {
      for (Subscription* s : subs) s->Signal();
    }
  }
}

void SessionWatchHub::Loop() {
  bool warned = false;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    try {
      // Never silently reconnected: LISTEN would be gone, and nothing would say so.
      auto owned = OpenConnection(dsn_);
      pqxx::connection& conn = *owned;
      Receiver receiver(conn, this);
      NotifyAll();  // Anything may have changed while we were not listening.
      if (warned) spdlog::info("listening for session changes again");
      warned = false;
      absl::Time next_recheck = absl::Now() + recheck_;
      while (true) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) return;
        }
        conn.await_notification(0, 300000);
        if (absl::Now() >= next_recheck) {
          NotifyAll();
          next_recheck = absl::Now() + recheck_;
        }
      }
    } catch (const std::exception& e) {
      if (!warned) spdlog::warn("session change listener: {}; retrying", e.what());
      warned = true;
      NotifyAll();
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
    }
  }
}

}  // namespace gantry::api
