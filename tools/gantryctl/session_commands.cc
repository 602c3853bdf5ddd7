// Session commands: create, get, list, logs, hibernate, wake, delete, metrics.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/strings/ascii.h"
#include "common/session_phase.h"
#include "common/tokens.h"
#include "gantry/v1/session_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"
#include "tools/gantryctl/spec.h"

namespace gantry::ctl {
namespace {

std::unique_ptr<v1::SessionService::Stub> Sessions(Cli& cli) { return v1::SessionService::NewStub(cli.channel()); }

// A queued session's place, "3 of 12" (its QueuePosition condition), or "".
std::string QueuePosition(const v1::Session& s) {
  for (const auto& c : s.conditions()) {
    if (c.type() == "QueuePosition") return c.message();
  }
  return "";
}

std::string CommandLine(const v1::SessionSpec& spec, size_t max) {
  std::string text = absl::StrJoin(spec.command(), " ");
  return text.size() > max ? text.substr(0, max - 3) + "..." : text;
}

int PrintSessions(Cli& cli, const std::vector<v1::Session>& sessions, bool as_list, bool header = true) {
  if (cli.format() == Format::kJson || cli.format() == Format::kYaml) {
    if (as_list) {
      v1::ListSessionsResponse list;
      for (const auto& s : sessions) *list.add_sessions() = s;
      PrintStructured(cli.format(), list);
    } else {
      for (const auto& s : sessions) PrintStructured(cli.format(), s);
    }
    return kExitOk;
  }
  if (cli.format() == Format::kName) {
    for (const auto& s : sessions) std::cout << s.id() << "\n";
    return kExitOk;
  }
  const bool wide = cli.format() == Format::kWide;
  std::vector<std::string> header_row = {"ID", "PHASE", "WORKER", "GPUS", "AGE", "COMMAND"};
  if (wide) header_row.insert(header_row.end(), {"OWNER", "PRIORITY", "QUEUE", "CONTROLLER", "GPU UUIDS", "MESSAGE"});
  Table table(header_row);
  for (const auto& s : sessions) {
    std::vector<std::string> row = {s.id(), std::string(PhaseName(s.phase())), OrDash(s.worker_id()),
                                    std::to_string(s.spec().resources().gpus().count()), Age(s.create_time()),
                                    CommandLine(s.spec(), wide ? 80 : 40)};
    if (wide) {
      row.insert(row.end(), {OrDash(s.owner()), OrDash(s.spec().priority_class()), OrDash(QueuePosition(s)),
                             OrDash(s.controller_id()),
                             OrDash(absl::StrJoin(s.gpu_uuids(), ",")), OrDash(s.message())});
    }
    table.AddRow(row);
  }
  std::cout << table.Render(header) << std::flush;
  return kExitOk;
}

// What --wait shows on stderr: a spinner line on a terminal, a line per phase otherwise.
class Progress {
 public:
  explicit Progress(std::string id) : id_(std::move(id)), tty_(isatty(STDERR_FILENO) == 1), start_(absl::Now()) {
    if (tty_) spinner_ = std::thread([this] { Spin(); });
  }
  ~Progress() { Finish(); }

  void Update(const std::string& phase) {
    std::lock_guard<std::mutex> lock(mu_);
    if (phase == phase_) return;
    phase_ = phase;
    if (!tty_) std::fprintf(stderr, "session %s: %s\n", id_.c_str(), phase.c_str());
  }
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) return;
      done_ = true;
    }
    wake_.notify_all();
    if (spinner_.joinable()) {
      spinner_.join();
      std::fprintf(stderr, "\r\033[K");
    }
  }

 private:
  void Spin() {
    static const char* const kFrames[] = {"|", "/", "-", "\\"};
    std::unique_lock<std::mutex> lock(mu_);
    for (int frame = 0; !done_; ++frame) {
      std::fprintf(stderr, "\r\033[K%s session %s: %s (%.1fs)", kFrames[frame % 4], id_.c_str(),
                   phase_.empty() ? "waiting" : phase_.c_str(), absl::ToDoubleSeconds(absl::Now() - start_));
      std::fflush(stderr);
      wake_.wait_for(lock, std::chrono::milliseconds(100));
    }
  }

  std::string id_;
  bool tty_;
  absl::Time start_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::string phase_;
  bool done_ = false;
  std::thread spinner_;
};

bool Up(v1::SessionPhase phase) {
  return phase == v1::SESSION_PHASE_RUNNING || phase == v1::SESSION_PHASE_HIBERNATED;
}

// Follows WatchSession until the session has been up (RUNNING, or HIBERNATED) for
// `stable_for` with no change, or has ended, re-watching if the API server replica goes away.
// A process that exits at once is RUNNING for a moment and then FAILED: the wait reports the
// FAILED, never the moment. Returns the exit code; `session` holds the last state seen.
int WaitUntilSettled(Cli& cli, absl::Duration timeout, absl::Duration stable_for, v1::Session* session) {
  Progress progress(session->id());
  progress.Update(std::string(PhaseName(session->phase())));
  const absl::Time deadline = absl::Now() + timeout;
  std::optional<absl::Time> up_since;
  if (Up(session->phase())) up_since = absl::Now();
  auto stable = [&] { return up_since.has_value() && absl::Now() >= *up_since + stable_for; };
  auto stub = Sessions(cli);
  grpc::Status status;
  while (!IsTerminal(session->phase()) && !stable()) {
    auto context = cli.Stream();
    context->set_deadline(absl::ToChronoTime(deadline));
    CancelOnInterrupt cancel(context.get());
    CancelAt settle(context.get());  // ends the watch once the session has been up long enough
    if (up_since) settle.Set(*up_since + stable_for);
    v1::WatchSessionRequest request;
    request.set_id(session->id());
    auto stream = stub->WatchSession(context.get(), request);
    v1::Session update;
    while (stream->Read(&update)) {
      *session = update;
      progress.Update(std::string(PhaseName(update.phase())));
      if (IsTerminal(update.phase())) {
        context->TryCancel();
        break;
      }
      if (!Up(update.phase())) {
        up_since.reset();
        settle.Clear();
      } else if (!up_since) {
        up_since = absl::Now();
        settle.Set(*up_since + stable_for);
      }
    }
    status = stream->Finish();
    if (IsTerminal(session->phase()) || stable()) break;
    // A stream that ends early (the replica went away) is watched again.
    const bool again = status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (!again || absl::Now() >= deadline) {
      progress.Finish();
      if (status.ok() || status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, absl::StrCat("session ", session->id(), " still ",
                                                                PhaseName(session->phase()), " after ",
                                                                absl::FormatDuration(timeout)));
      }
      return cli.Fail(status);
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
  progress.Finish();
  if (session->phase() == v1::SESSION_PHASE_FAILED) return kExitSessionFailed;
  return IsTerminal(session->phase()) ? kExitSessionEnded : kExitOk;
}

absl::Status BuildCreateRequest(const Args& args, v1::CreateSessionRequest* request) {
  if (args.Has("file")) {
    auto text = ReadInput(args.Get("file"));
    if (!text.ok()) return text.status();
    // A whole CreateSessionRequest (with "spec:"), or just a SessionSpec.
    if (!ParseMessage(*text, args.Get("file"), request).ok()) {
      request->Clear();
      auto status = ParseMessage(*text, args.Get("file"), request->mutable_spec());
      if (!status.ok()) return status;
    }
  }
  if (auto status = ApplySpecFlags(args, args.positional(), request->mutable_spec()); !status.ok()) return status;
  if (args.Has("template")) request->set_template_id(args.Get("template"));
  if (args.Has("controller")) request->set_controller_id(args.Get("controller"));
  if (args.Has("controller-type")) request->set_controller_type(args.Get("controller-type"));
  if (auto status = AddPairs(args, "selector", request->mutable_controller_selector()); !status.ok()) return status;
  if (args.Has("request-id")) request->set_request_id(args.Get("request-id"));
  if (args.Has("queue")) request->set_queue(true);
  if (args.Has("queue-timeout")) {
    absl::Duration timeout;
    if (auto status = ParseDurationFlag(args, "queue-timeout", &timeout); !status.ok()) return status;
    request->mutable_queue_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
  }
  // A fresh request id, so that a create the CLI retries is still placed once.
  if (request->request_id().empty()) request->set_request_id("gantryctl-" + RandomToken(16));
  return absl::OkStatus();
}

int Create(Cli& cli) {
  v1::CreateSessionRequest request;
  if (auto status = BuildCreateRequest(cli.args(), &request); !status.ok()) {
    return Complain(std::string(status.message()), status.code() == absl::StatusCode::kNotFound ? kExitFailure : kExitUsage);
  }
  absl::Duration wait_timeout = absl::Minutes(5), stable_for = absl::Seconds(2);
  for (auto [flag, value] : {std::make_pair("wait-timeout", &wait_timeout), std::make_pair("stable-for", &stable_for)}) {
    if (auto s = ParseDurationFlag(cli.args(), flag, value); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
  }
  auto stub = Sessions(cli);
  v1::Session session;
  // UNAVAILABLE (no healthy controller yet, database restarting) is retried with the same
  // request_id, so a create that did land is not placed twice.
  for (int attempt = 0;; ++attempt) {
    auto context = cli.Call();
    CancelOnInterrupt cancel(context.get());
    grpc::Status status = stub->CreateSession(context.get(), request, &session);
    if (status.ok()) break;
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE || attempt >= 5) return cli.Fail(status);
    absl::SleepFor(absl::Milliseconds(200 << attempt));
  }
  int rc = kExitOk;
  if (cli.args().Has("wait")) rc = WaitUntilSettled(cli, wait_timeout, stable_for, &session);
  if (rc != kExitOk && rc != kExitSessionFailed && rc != kExitSessionEnded) return rc;  // said why already
  PrintSessions(cli, {session}, false);
  if (rc != kExitOk) {
    Complain(absl::StrCat("session ", session.id(), " ", PhaseName(session.phase()),
                          rc == kExitSessionEnded ? absl::StrCat(" before it had been up for ", absl::FormatDuration(stable_for))
                                                  : std::string(),
                          ": ", session.message()));
  }
  return rc;
}

int Get(Cli& cli) {
  auto stub = Sessions(cli);
  std::vector<v1::Session> found;
  for (const std::string& id : cli.args().positional()) {
    v1::GetSessionRequest request;
    request.set_id(id);
    v1::Session session;
    auto context = cli.Call();
    grpc::Status status = stub->GetSession(context.get(), request, &session);
    if (!status.ok()) return cli.Fail(status);
    found.push_back(session);
  }
  return PrintSessions(cli, found, false);
}

// The filters of `list`, from its flags: INVALID_ARGUMENT naming a bad flag (a usage error,
// found before any call).
absl::Status ListFilters(const Args& args, v1::ListSessionsRequest* request, int64_t* limit) {
  if (args.Has("phase")) {
    auto phase = ParsePhase(absl::AsciiStrToUpper(args.Get("phase")));
    if (!phase.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--phase: \"", args.Get("phase"),
                                                     "\" is not one of pending, scheduled, starting, running, ",
                                                     "hibernated, terminating, terminated, failed"));
    }
    request->set_phase(*phase);
  }
  if (auto status = AddPairs(args, "label", request->mutable_label_selector()); !status.ok()) return status;
  *limit = 0;
  if (args.Has("limit") && (!absl::SimpleAtoi(args.Get("limit"), limit) || *limit <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--limit: \"", args.Get("limit"), "\" is not a positive count"));
  }
  return absl::OkStatus();
}

// Every session matching `request`'s filters, all pages (or the first `limit`); --controller,
// a name or an id, is resolved here (naming one is an admin call).
grpc::Status ListAll(Cli& cli, v1::ListSessionsRequest request, int64_t limit, std::vector<v1::Session>* out) {
  const Args& args = cli.args();
  if (args.Has("controller")) {
    std::string id = args.Get("controller");
    if (id.size() != 36) {
      if (grpc::Status s = ResolveController(cli, args.Get("controller"), &id); !s.ok()) return s;
    }
    request.set_controller_id(id);
  }
  auto stub = Sessions(cli);
  out->clear();
  do {
    request.set_page_size(limit > 0 ? static_cast<int>(std::min<int64_t>(limit - out->size(), 500)) : 500);
    v1::ListSessionsResponse page;
    auto context = cli.Call();
    grpc::Status status = stub->ListSessions(context.get(), request, &page);
    if (!status.ok()) return status;
    out->insert(out->end(), page.sessions().begin(), page.sessions().end());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (limit == 0 || static_cast<int64_t>(out->size()) < limit));
  return grpc::Status::OK;
}

int List(Cli& cli) {
  v1::ListSessionsRequest filters;
  int64_t limit = 0;
  if (auto s = ListFilters(cli.args(), &filters, &limit); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
  absl::Duration interval = absl::Seconds(1);
  if (auto s = ParseDurationFlag(cli.args(), "interval", &interval); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
  std::vector<v1::Session> sessions;
  grpc::Status status = ListAll(cli, filters, limit, &sessions);
  if (!status.ok()) return cli.Fail(status);
  if (!cli.args().Has("watch")) return PrintSessions(cli, sessions, true);
  // Polls and prints each session again whenever its version changes (Ctrl-C ends it).
  std::map<std::string, int64_t> seen;
  for (bool first = true;; first = false) {
    std::vector<v1::Session> changed;
    for (const auto& s : sessions) {
      auto [it, added] = seen.emplace(s.id(), s.version());
      if (added || it->second != s.version()) changed.push_back(s);
      it->second = s.version();
    }
    if (first || !changed.empty()) PrintSessions(cli, changed, true, first);
    absl::SleepFor(interval);
    status = ListAll(cli, filters, limit, &sessions);
    if (!status.ok()) return cli.Fail(status);
  }
}

int Logs(Cli& cli) {
  v1::StreamLogsRequest request;
  request.set_id(cli.args().positional()[0]);
  request.set_follow(cli.args().Has("follow"));
  if (cli.args().Has("tail")) {
    int tail;
    if (!absl::SimpleAtoi(cli.args().Get("tail"), &tail) || tail < 0) return Complain("--tail: not a line count", kExitUsage);
    request.set_tail_lines(tail);
  }
  auto stub = Sessions(cli);
  auto context = cli.Stream();
  CancelOnInterrupt cancel(context.get());
  auto stream = stub->StreamLogs(context.get(), request);
  v1::LogEntry entry;
  while (stream->Read(&entry)) {
    std::cout << entry.message() << "\n" << std::flush;
  }
  grpc::Status status = stream->Finish();
  return status.ok() ? kExitOk : cli.Fail(status);
}

// hibernate, wake, delete: one call per ID, the session printed after each.
template <typename Request, typename Method>
std::function<int(Cli&)> PerSession(Method method) {
  return [method](Cli& cli) {
    auto stub = Sessions(cli);
    std::vector<v1::Session> done;
    for (const std::string& id : cli.args().positional()) {
      Request request;
      request.set_id(id);
      v1::Session session;
      auto context = cli.Call();
      grpc::Status status = ((*stub).*method)(context.get(), request, &session);
      if (!status.ok()) {
        if (!done.empty()) PrintSessions(cli, done, false);  // what was done before the failure
        return cli.Fail(status);
      }
      done.push_back(session);
    }
    return PrintSessions(cli, done, false);
  };
}

int Metrics(Cli& cli) {
  v1::GetSessionMetricsRequest request;
  request.set_id(cli.args().positional()[0]);
  v1::SessionMetrics metrics;
  auto stub = Sessions(cli);
  auto context = cli.Call();
  grpc::Status status = stub->GetSessionMetrics(context.get(), request, &metrics);
  if (!status.ok()) return cli.Fail(status);
  if (PrintStructured(cli.format(), metrics)) return kExitOk;
  const auto& u = metrics.usage();
  char cpu[32];
  std::snprintf(cpu, sizeof cpu, "%.1f%%", u.cpu_percent());
  Table table({"SESSION", "CPU", "MEMORY", "GPU MEMORY"});
  table.AddRow({metrics.session_id(), cpu, Bytes(u.memory_bytes()), Bytes(u.gpu_memory_bytes())});
  std::cout << table.Render();
  if (metrics.gpus_size() > 0) {
    Table gpus({"GPU", "UUID", "UTIL", "MEMORY USED", "TEMP", "POWER"});
    for (const auto& g : metrics.gpus()) {
      gpus.AddRow({OrDash(g.name()) + (g.simulated() ? " (simulated)" : ""), g.uuid(),
                   absl::StrCat(g.utilization_percent(), "%"),
                   Bytes(g.memory_total_bytes() - g.memory_free_bytes()) + "/" + Bytes(g.memory_total_bytes()),
                   absl::StrCat(g.temperature_celsius(), "C"), absl::StrCat(g.power_milliwatts() / 1000, "W")});
    }
    std::cout << "\n" << gpus.Render();
  }
  for (const auto& [k, v] : metrics.custom_metrics()) std::cout << k << ": " << v << "\n";
  return kExitOk;
}

}  // namespace

std::vector<Command> SessionCommands() {
  std::vector<FlagSpec> create_flags = {
      {"file", 'f', true, "FILE", "YAML or JSON: a SessionSpec, or a CreateSessionRequest (\"-\": stdin); flags override it"},
      {"template", 't', true, "ID", "start from this template"},
      {"controller", 0, true, "ID", "place on this controller"},
      {"controller-type", 0, true, "TYPE", "place on a controller of this type"},
      {"selector", 0, true, "KEY=VALUE", "place on a controller with this label (repeatable)"},
      {"request-id", 0, true, "ID", "idempotency key (default: a fresh one; retries reuse it)"},
      {"queue", 0, false, "", "if it does not fit now (room, or the team's quota), wait PENDING for room"},
      {"queue-timeout", 0, true, "DURATION", "with --queue: FAILED if still waiting after this long (default 1h)"},
      {"wait", 'w', false, "", "wait until the session has been RUNNING for --stable-for, or has ended (exit 3 if FAILED)"},
      {"stable-for", 0, true, "DURATION", "how long --wait wants it RUNNING with no change (default 2s)"},
      {"wait-timeout", 0, true, "DURATION", "give up waiting after this long (default 5m)"},
  };
  const auto& spec_flags = SpecFlags();
  create_flags.insert(create_flags.end(), spec_flags.begin(), spec_flags.end());
  return {
      {"create", "[--] [COMMAND [ARG...]]", "create a session",
       "The command comes last; everything after it is its own (gantryctl create --gpus 1 python3 -u serve.py).",
       create_flags, 0, -1, 1, Create},
      {"get", "ID...", "show sessions", "", {}, 1, -1, 0, Get},
      {"list", "", "list sessions",
       "--watch polls every --interval and prints a session again whenever it changes; Ctrl-C ends it.",
       {{"phase", 0, true, "PHASE", "only sessions in this phase (running, failed, ...)"},
        {"controller", 0, true, "ID|NAME", "only sessions on this controller"},
        {"label", 'l', true, "KEY=VALUE", "only sessions with this label (repeatable)"},
        {"limit", 0, true, "N", "at most N sessions"},
        {"watch", 'w', false, "", "keep printing changes"},
        {"interval", 0, true, "DURATION", "how often --watch polls (default 1s)"}},
       0, 0, 0, List},
      {"logs", "ID", "print a session's output",
       "", {{"follow", 'f', false, "", "keep printing new output until the session ends (Ctrl-C stops)"},
            {"tail", 0, true, "N", "start with the last N lines"}},
       1, 1, 0, Logs},
      {"hibernate", "ID...", "suspend sessions (processes stopped, GPUs kept)", "", {}, 1, -1, false,
       PerSession<v1::HibernateSessionRequest>(&v1::SessionService::Stub::HibernateSession)},
      {"wake", "ID...", "resume hibernated sessions", "", {}, 1, -1, false,
       PerSession<v1::WakeSessionRequest>(&v1::SessionService::Stub::WakeSession)},
      {"delete", "ID...", "stop sessions and release their GPUs", "", {}, 1, -1, false,
       PerSession<v1::DeleteSessionRequest>(&v1::SessionService::Stub::DeleteSession)},
      {"metrics", "ID", "CPU, memory and GPU use of a running session", "", {}, 1, 1, 0, Metrics},
  };
}

}  // namespace gantry::ctl
