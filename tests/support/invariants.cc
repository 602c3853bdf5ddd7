#include "tests/support/invariants.h"

#include <catch2/catch.hpp>
#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/session_phase.h"

namespace gantry::testing {
namespace {

struct SessionProcess {
  pid_t pid;
  std::string session_id;
  bool under_live_worker;
};

pid_t ParentOf(pid_t pid) {
  // Not a stream: one that reads a process exiting meanwhile throws (ESRCH).
  const std::string stat = ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  int ppid = 0;
  // After ") ": the state, then the parent's pid.
  std::string rest = stat.substr(close + 2);
  size_t space = rest.find(' ');
  (void)absl::SimpleAtoi(rest.substr(space + 1, rest.find(' ', space + 1) - space - 1), &ppid);
  return ppid;
}

// Every process on the machine whose environment names a session (GANTRY_SESSION_ID), and
// whether one of `workers` is among its ancestors.
std::vector<SessionProcess> SessionProcesses(const std::set<pid_t>& workers) {
  std::vector<SessionProcess> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    const std::string environ = ReadProcFile(absl::StrCat("/proc/", pid, "/environ"));
    size_t at = environ.find("GANTRY_SESSION_ID=");
    if (at == std::string::npos || (at > 0 && environ[at - 1] != '\0')) continue;
    size_t start = at + sizeof("GANTRY_SESSION_ID=") - 1;
    std::string id = environ.substr(start, environ.find('\0', start) - start);
    bool under = false;
    for (pid_t p = pid; p > 1 && !under; p = ParentOf(p)) under = workers.count(p) > 0;
    out.push_back({pid, id, under});
  }
  closedir(proc);
  return out;
}

}  // namespace

std::vector<std::string> InvariantViolations(LocalFleet& fleet, const InvariantOptions& options) {
  std::vector<std::string> bad;
  std::set<pid_t> workers;
  for (size_t i = 0; i < fleet.worker_count(); ++i) {
    if (fleet.worker(i).Alive()) workers.insert(fleet.worker(i).pid());
  }
  pqxx::connection c(options.dsn.empty() ? fleet.db().dsn() : options.dsn);
  pqxx::read_transaction tx(c);
  std::map<std::string, std::string> phase;  // every session of this fleet
  std::map<std::string, std::string> worker_of;
  std::set<std::string> queued;  // PENDING in the queue: waiting, not half-placed.
  for (const auto& row : tx.exec("SELECT id::text, phase, worker_id, queued_until IS NOT NULL FROM sessions")) {
    phase[row[0].as<std::string>()] = row[1].as<std::string>();
    worker_of[row[0].as<std::string>()] = row[2].as<std::string>();
    if (row[1].as<std::string>() == "PENDING" && row[3].as<bool>()) queued.insert(row[0].as<std::string>());
  }

  for (const auto& id : options.acknowledged) {
    // A create that was refused has no id: nobody was told of a session, so none must exist.
    if (id.empty()) continue;
    if (phase.count(id) == 0) bad.push_back(absl::StrCat("acknowledged session ", id, " is not in PostgreSQL"));
  }

  std::set<std::string> with_process;
  for (const SessionProcess& p : SessionProcesses(workers)) {
    auto it = phase.find(p.session_id);
    if (it == phase.end()) continue;  // another test's fleet
    with_process.insert(p.session_id);
    bool live = it->second == "RUNNING" || it->second == "HIBERNATED" || it->second == "TERMINATING";
    if (!live) bad.push_back(absl::StrCat("ghost: pid ", p.pid, " runs for session ", p.session_id, " which is ", it->second));
    if (!p.under_live_worker) bad.push_back(absl::StrCat("orphan: pid ", p.pid, " of session ", p.session_id, " is under no live worker"));
  }
  for (const auto& [id, ph] : phase) {
    if ((ph == "RUNNING" || ph == "HIBERNATED") && with_process.count(id) == 0) {
      bad.push_back(absl::StrCat("lost: session ", id, " is ", ph, " on ", worker_of[id], " but no process runs for it"));
    }
    if ((ph == "PENDING" && queued.count(id) == 0) || ph == "SCHEDULED" || ph == "STARTING") {
      bad.push_back(absl::StrCat("half-placed: session ", id, " is still ", ph));
    }
  }

  for (const auto& row : tx.exec(
           "SELECT s.worker_id, g.uuid, count(*) FROM sessions s, jsonb_array_elements_text(s.gpu_uuids) g(uuid) "
           "WHERE s.phase NOT IN ('TERMINATED', 'FAILED') GROUP BY 1, 2 HAVING count(*) > 1")) {
    bad.push_back(absl::StrCat("GPU ", row[1].as<std::string>(), " on ", row[0].as<std::string>(), " is held by ",
                               row[2].as<std::string>(), " live sessions"));
  }
  for (const auto& row : tx.exec(
           "SELECT c.name, c.gpus_total, COALESCE(sum(s.gpu_count), 0) FROM controllers c "
           "LEFT JOIN sessions s ON s.controller_id = c.id AND s.phase NOT IN ('TERMINATED', 'FAILED') "
           "GROUP BY c.name, c.gpus_total HAVING COALESCE(sum(s.gpu_count), 0) > c.gpus_total AND c.gpus_total > 0")) {
    bad.push_back(absl::StrCat("controller ", row[0].as<std::string>(), " has ", row[2].as<std::string>(),
                               " GPUs reserved of ", row[1].as<std::string>()));
  }
  // The queue: a queued session holds nothing and runs nowhere; none is placed twice.
  for (const auto& row : tx.exec(
           "SELECT id::text FROM sessions WHERE phase = 'PENDING' AND queued_until IS NOT NULL "
           "AND (controller_id IS NOT NULL OR gpu_uuids <> '[]' OR worker_id <> '')")) {
    bad.push_back(absl::StrCat("queued session ", row[0].as<std::string>(), " holds a placement"));
  }
  for (const auto& row : tx.exec("SELECT session_id::text, count(*) FROM session_events WHERE from_phase = 'PENDING' "
                                 "AND to_phase = 'SCHEDULED' GROUP BY 1 HAVING count(*) > 1")) {
    bad.push_back(absl::StrCat("session ", row[0].as<std::string>(), " was placed ", row[1].as<std::string>(),
                               " times from PENDING"));
  }
  // Quotas: no team holds more than its quota allows (a test that lowers a quota below what a
  // team holds makes this one expected).
  for (const auto& row : tx.exec(
           "SELECT q.team, q.max_gpus, q.max_sessions, coalesce(sum(s.gpu_count), 0), count(s.id) FROM quotas q "
           "LEFT JOIN sessions s ON s.team = q.team AND s.phase NOT IN ('PENDING', 'TERMINATED', 'FAILED') "
           "GROUP BY 1, 2, 3 HAVING (q.max_gpus > 0 AND coalesce(sum(s.gpu_count), 0) > q.max_gpus) "
           "OR (q.max_sessions > 0 AND count(s.id) > q.max_sessions)")) {
    bad.push_back(absl::StrCat("team ", row[0].as<std::string>(), " holds ", row[3].as<std::string>(), " GPUs in ",
                               row[4].as<std::string>(), " sessions, over its quota (", row[1].as<std::string>(),
                               " GPUs, ", row[2].as<std::string>(), " sessions)"));
  }

  std::map<std::string, std::vector<std::pair<std::string, std::string>>> events;
  for (const auto& row : tx.exec("SELECT session_id::text, COALESCE(from_phase, ''), to_phase FROM session_events ORDER BY id")) {
    events[row[0].as<std::string>()].emplace_back(row[1].as<std::string>(), row[2].as<std::string>());
  }
  for (const auto& [id, ph] : phase) {
    const auto& path = events[id];
    std::string at;
    for (const auto& [from, to] : path) {
      if (from != at) {
        bad.push_back(absl::StrCat("session ", id, ": an event from ", from.empty() ? "(none)" : from, " follows ",
                                   at.empty() ? "(none)" : at));
        break;
      }
      auto f = ParsePhase(from.empty() ? "PENDING" : from);
      auto t = ParsePhase(to);
      if (!from.empty() && (!f.ok() || !t.ok() || !IsLegalTransition(*f, *t))) {
        bad.push_back(absl::StrCat("session ", id, ": ", from, " -> ", to, " is not a legal transition"));
        break;
      }
      at = to;
    }
    if (path.empty() || at != ph) {
      bad.push_back(absl::StrCat("session ", id, ": its events end at ", at.empty() ? "(none)" : at, ", it is ", ph));
    }
  }
  return bad;
}

void RequireInvariants(LocalFleet& fleet, const InvariantOptions& options) {
  std::vector<std::string> bad;
  bool held = WaitFor([&] {
    bad = InvariantViolations(fleet, options);
    return bad.empty();
  }, options.settle);
  INFO("invariants violated:\n  " << absl::StrJoin(bad, "\n  "));
  REQUIRE(held);
}

void RequireInvariants(LocalFleet& fleet, std::vector<std::string> acknowledged) {
  InvariantOptions options;
  options.acknowledged = std::move(acknowledged);
  RequireInvariants(fleet, options);
}

}  // namespace gantry::testing
