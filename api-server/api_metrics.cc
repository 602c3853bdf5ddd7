#include "api-server/api_metrics.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "common/metrics.h"
#include "common/proto_time.h"
#include "common/session_phase.h"

namespace gantry::api {
namespace {

using Series = std::vector<std::pair<MetricLabels, double>>;

std::string Unprefixed(const std::string& name, const std::string& prefix) {
  return absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name;
}

void Collect(AdminStore* admin, const std::map<std::string, PgPool*>& pools) {
  Metrics& m = Metrics::Global();
  Series in_use, max;
  for (const auto& [name, pool] : pools) {
    in_use.push_back({{{"pool", name}}, static_cast<double>(pool->in_use())});
    max.push_back({{{"pool", name}}, static_cast<double>(pool->size())});
  }
  m.GaugeReplace("gantry_db_pool_connections_in_use", "PostgreSQL connections busy with a query, by pool", in_use);
  m.GaugeReplace("gantry_db_pool_connections_max", "PostgreSQL connections the pool may open, by pool", max);
  auto status = admin->ClusterStatus();
  m.GaugeReplace("gantry_database_up", "1 when the last scrape could read PostgreSQL", {{{}, status.ok() ? 1.0 : 0.0}});
  if (!status.ok()) return;  // The figures below keep their last values.

  // Every phase and status, zero when none: a series that vanishes reads as "no data".
  // PostgreSQL keys them as RUNNING and healthy.
  auto count = [](const google::protobuf::Map<std::string, int32_t>& counts, const std::string& key) {
    auto it = counts.find(key);
    return it == counts.end() ? 0.0 : static_cast<double>(it->second);
  };
  Series phases;
  for (int p = v1::SESSION_PHASE_PENDING; p <= v1::SESSION_PHASE_FAILED; ++p) {
    const std::string name(PhaseName(static_cast<v1::SessionPhase>(p)));
    phases.push_back({{{"phase", name}}, count(status->sessions_by_phase(), name)});
  }
  m.GaugeReplace("gantry_sessions", "Sessions in PostgreSQL, by phase", phases);

  Series controllers;
  for (int c = v1::CONTROLLER_STATUS_HEALTHY; c <= v1::CONTROLLER_STATUS_OFFLINE; ++c) {
    const std::string name =
        Unprefixed(v1::ControllerStatus_Name(static_cast<v1::ControllerStatus>(c)), "CONTROLLER_STATUS_");
    controllers.push_back({{{"status", name}}, count(status->controllers_by_status(), absl::AsciiStrToLower(name))});
  }
  m.GaugeReplace("gantry_controllers", "Registered controllers, by status", controllers);
  m.GaugeReplace("gantry_gpus", "GPUs of healthy controllers", {{{}, static_cast<double>(status->gpus_total())}});
  m.GaugeReplace("gantry_gpus_used", "GPUs held by live sessions", {{{}, static_cast<double>(status->gpus_used())}});

  // Each team's quota: every limit it sets, and what the team holds against it.
  Series limits, held;
  for (const v1::Quota& q : status->quotas()) {
    auto add = [&](const std::string& resource, const std::string& model, double max, double used) {
      if (max <= 0) return;
      MetricLabels labels = {{"team", q.team()}, {"resource", resource}};
      if (!model.empty()) labels.emplace_back("model", model);
      limits.push_back({labels, max});
      held.push_back({labels, used});
    };
    add("gpus", "", q.max_gpus(), q.gpus_used());
    add("sessions", "", q.max_sessions(), q.sessions_used());
    add("gpu_memory_bytes", "", static_cast<double>(q.max_gpu_memory_bytes()),
        static_cast<double>(q.gpu_memory_bytes_used()));
    for (const auto& [model, max] : q.max_gpus_by_model()) {
      auto used = q.gpus_used_by_model().find(model);
      add("gpus", model, max, used == q.gpus_used_by_model().end() ? 0 : used->second);
    }
  }
  m.GaugeReplace("gantry_team_quota_limit", "Each team's quota limits, by resource (and GPU model)", limits);
  m.GaugeReplace("gantry_team_quota_used", "What each team's live sessions hold against its quota's limits", held);

  // Per priority class: the queue, its oldest wait, and the preempted sessions PostgreSQL keeps
  // (gantry_preemptions_total counts this replica's preemptions as they happen).
  Series queued, oldest, preempted;
  for (const v1::PriorityClassStatus& c : status->priority_classes()) {
    const MetricLabels labels = {{"priority_class", c.priority_class()}};
    queued.push_back({labels, static_cast<double>(c.queued())});
    oldest.push_back({labels, static_cast<double>(c.oldest_wait().seconds()) + c.oldest_wait().nanos() / 1e9});
    preempted.push_back({labels, static_cast<double>(c.preempted())});
  }
  m.GaugeReplace("gantry_queue_length", "Sessions waiting in the queue, by priority class", queued);
  m.GaugeReplace("gantry_queue_oldest_wait_seconds", "How long the oldest queued session has waited, by priority class",
                 oldest);
  m.GaugeReplace("gantry_preempted_sessions", "Preempted sessions PostgreSQL keeps, by priority class", preempted);

  auto listed = admin->ListControllers("", "", 10000);
  if (!listed.ok()) return;
  double workers = 0;
  Series ages;
  const absl::Time now = absl::Now();
  for (const v1::Controller& c : *listed) {
    if (c.status() == v1::CONTROLLER_STATUS_HEALTHY) workers += c.capacity().workers_online();
    if (c.has_last_heartbeat()) {
      ages.push_back({{{"controller", c.name()}}, absl::ToDoubleSeconds(now - FromProto(c.last_heartbeat()))});
    }
  }
  m.GaugeReplace("gantry_workers_online", "Workers online on healthy controllers, as their heartbeats say", {{{}, workers}});
  m.GaugeReplace("gantry_controller_heartbeat_age_seconds", "Time since each controller's last heartbeat", ages);
}

}  // namespace

void RegisterApiMetrics(AdminStore* admin, std::map<std::string, PgPool*> pools) {
  Metrics::Global().OnScrape([admin, pools = std::move(pools)] { Collect(admin, pools); });
}

}  // namespace gantry::api
