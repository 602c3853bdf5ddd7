#include "api-server/database_monitor.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <spdlog/spdlog.h>

#include "api-server/migration_runner.h"
#include "common/pg_pool.h"

namespace gantry::api {

DatabaseMonitor::DatabaseMonitor(PgPool* pool, absl::Duration interval,
                                 std::function<absl::Status()> on_first_ready)
    : pool_(pool), interval_(interval), on_first_ready_(std::move(on_first_ready)) {}

DatabaseMonitor::~DatabaseMonitor() { Stop(); }

void DatabaseMonitor::Start(grpc::Server* server) {
  server_ = server;
  SetServing(false);
  thread_ = std::thread([this] { Loop(); });
}

void DatabaseMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status DatabaseMonitor::CheckReady() const {
  if (!migrated_.load()) {
    return absl::UnavailableError("database not reachable yet (or migrating); retry shortly");
  }
  if (!reachable_.load()) {
    return absl::UnavailableError(
        "the database is unreachable or not answering; the server reconnects by itself, retry shortly");
  }
  return absl::OkStatus();
}

void DatabaseMonitor::SetServing(bool serving) {
  if (server_ == nullptr || server_->GetHealthCheckService() == nullptr) return;
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

void DatabaseMonitor::Loop() {
  bool was_serving = false;
  while (true) {
    bool serving = false;
    if (!migrated_.load()) {
      absl::Status s = pool_->Run([&](pqxx::connection& c) {
        auto applied = ApplyMigrations(c, EmbeddedMigrations());
        if (!applied.ok()) return applied.status();
        for (const auto& name : *applied) spdlog::info("applied migration {}", name);
        return absl::OkStatus();
      }, kMigrationTimeout);
      if (s.ok()) s = on_first_ready_ ? on_first_ready_() : absl::OkStatus();
      if (s.ok()) {
        migrated_ = true;
        spdlog::info("database ready");
      } else {
        spdlog::warn("database not ready: {}", s.ToString());
      }
    }
    if (migrated_.load()) {
      reachable_ = pool_->Ping();
      serving = reachable_.load();
    }
    if (serving != was_serving) {
      SetServing(serving);
      spdlog::info("health: {}", serving ? "SERVING" : "NOT_SERVING (database unreachable)");
      was_serving = serving;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [&] { return stopping_; })) return;
  }
}

}  // namespace gantry::api
