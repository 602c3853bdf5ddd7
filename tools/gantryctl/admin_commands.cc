// Admin commands (AdminService, admin role): controllers, workers, cluster status, API keys,
// templates.
#include <google/protobuf/util/time_util.h>

#include <iostream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"
#include "tools/gantryctl/spec.h"

namespace gantry::ctl {
namespace {

std::unique_ptr<v1::AdminService::Stub> Admin(Cli& cli) { return v1::AdminService::NewStub(cli.channel()); }

std::string Unprefixed(const std::string& name, const std::string& prefix) {
  return absl::StartsWith(name, prefix) ? name.substr(prefix.size()) : name;
}

grpc::Status ListControllers(Cli& cli, v1::ControllerStatus status, std::vector<v1::Controller>* out) {
  auto stub = Admin(cli);
  v1::ListControllersRequest request;
  request.set_status(status);
  request.set_page_size(500);
  do {
    v1::ListControllersResponse page;
    auto context = cli.Call();
    grpc::Status s = stub->ListControllers(context.get(), request, &page);
    if (!s.ok()) return s;
    out->insert(out->end(), page.controllers().begin(), page.controllers().end());
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ResolveController(Cli& cli, const std::string& id_or_name, std::string* id) {
  std::vector<v1::Controller> all;
  grpc::Status s = ListControllers(cli, v1::CONTROLLER_STATUS_UNSPECIFIED, &all);
  if (!s.ok()) return s;
  for (const auto& c : all) {
    if (c.id() == id_or_name || c.name() == id_or_name) {
      *id = c.id();
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("no controller with id or name \"", id_or_name, "\" (gantryctl controllers list)"));
}

namespace {

// The conditions that fail, each with how long: "unreachable 40s, no heartbeat 12s", or "-".
std::string FailingConditions(const v1::Controller& c, bool with_reasons) {
  std::vector<std::string> failing;
  for (const auto& condition : c.conditions()) {
    if (condition.ok()) continue;
    std::string what = condition.type() == "Reachable"      ? "unreachable"
                       : condition.type() == "Heartbeating" ? "no heartbeat"
                                                            : absl::AsciiStrToLower(condition.type()) + " failing";
    if (condition.has_since()) absl::StrAppend(&what, " ", Age(condition.since()));
    if (with_reasons && !condition.message().empty()) absl::StrAppend(&what, " (", condition.message(), ")");
    failing.push_back(what);
  }
  return OrDash(absl::StrJoin(failing, ", "));
}

int PrintControllers(Cli& cli, const std::vector<v1::Controller>& controllers, bool as_list) {
  if (cli.format() == Format::kJson || cli.format() == Format::kYaml) {
    if (!as_list && controllers.size() == 1) return PrintStructured(cli.format(), controllers[0]), kExitOk;
    v1::ListControllersResponse list;
    for (const auto& c : controllers) *list.add_controllers() = c;
    PrintStructured(cli.format(), list);
    return kExitOk;
  }
  if (cli.format() == Format::kName) {
    for (const auto& c : controllers) std::cout << c.name() << "\n";
    return kExitOk;
  }
  const bool wide = cli.format() == Format::kWide;
  std::vector<std::string> header = {"NAME",    "STATUS",   "FAILING", "GPUS FREE", "WORKERS",
                                     "SESSIONS", "INVOKES", "HEARTBEAT", "ID"};
  if (wide) header.insert(header.end(), {"TYPE", "ENDPOINT", "LABELS", "GPU MODELS", "CAPABILITIES"});
  Table table(header);
  for (const auto& c : controllers) {
    std::string status = Unprefixed(v1::ControllerStatus_Name(c.status()), "CONTROLLER_STATUS_");
    if (c.cordoned()) status += ",CORDONED";
    std::vector<std::string> row = {
        c.name(), status, FailingConditions(c, wide), absl::StrCat(c.capacity().gpus_free(), "/", c.capacity().gpus_total()),
        std::to_string(c.capacity().workers_online()), std::to_string(c.load().active_sessions()),
        std::to_string(c.load().active_invokes()), Age(c.last_heartbeat()) + (c.has_last_heartbeat() ? " ago" : ""),
        c.id()};
    if (wide) {
      std::vector<std::string> labels, capabilities;
      for (const auto& [k, v] : c.labels()) labels.push_back(k + "=" + v);
      for (const auto& cap : c.capabilities()) capabilities.push_back(cap.name() + "@" + cap.version());
      row.insert(row.end(), {OrDash(c.type()), OrDash(c.endpoint()), OrDash(absl::StrJoin(labels, ",")),
                             OrDash(absl::StrJoin(c.capacity().gpu_models(), ",")),
                             OrDash(absl::StrJoin(capabilities, ","))});
    }
    table.AddRow(row);
  }
  std::cout << table.Render();
  return kExitOk;
}

int ControllersList(Cli& cli) {
  v1::ControllerStatus status = v1::CONTROLLER_STATUS_UNSPECIFIED;
  if (cli.args().Has("status") &&
      !v1::ControllerStatus_Parse("CONTROLLER_STATUS_" + absl::AsciiStrToUpper(cli.args().Get("status")), &status)) {
    return Complain("--status: not healthy, unhealthy or offline", kExitUsage);
  }
  std::vector<v1::Controller> controllers;
  grpc::Status s = ListControllers(cli, status, &controllers);
  return s.ok() ? PrintControllers(cli, controllers, true) : cli.Fail(s);
}

// Calls `method` with the id of the controller the first argument names.
template <typename Request, typename Response, typename Method>
grpc::Status CallOnController(Cli& cli, Method method, Response* response) {
  Request request;
  std::string id;
  grpc::Status s = ResolveController(cli, cli.args().positional()[0], &id);
  if (!s.ok()) return s;
  request.set_id(id);
  auto stub = Admin(cli);
  auto context = cli.Call();
  return ((*stub).*method)(context.get(), request, response);
}

// get, cordon, uncordon: the answer is the controller.
template <typename Request, typename Method>
std::function<int(Cli&)> OnController(Method method) {
  return [method](Cli& cli) {
    v1::Controller controller;
    grpc::Status s = CallOnController<Request>(cli, method, &controller);
    return s.ok() ? PrintControllers(cli, {controller}, false) : cli.Fail(s);
  };
}

// Each call stops what it can within its deadline; --wait calls again until none is left.
int ControllersDrain(Cli& cli) {
  absl::Duration wait_timeout = absl::Minutes(10);
  if (auto s = ParseDurationFlag(cli.args(), "wait-timeout", &wait_timeout); !s.ok()) {
    return Complain(std::string(s.message()), kExitUsage);
  }
  const bool wait = cli.args().Has("wait");
  const absl::Time give_up = absl::Now() + wait_timeout;
  int stopped = 0;
  while (true) {
    v1::DrainControllerResponse response;
    grpc::Status s =
        CallOnController<v1::DrainControllerRequest>(cli, &v1::AdminService::Stub::DrainController, &response);
    if (!s.ok()) return cli.Fail(s);
    stopped += response.stopped_sessions();
    const bool done = response.remaining_sessions() == 0;
    if (!wait || done) {
      response.set_stopped_sessions(stopped);
      if (PrintStructured(cli.format(), response)) return kExitOk;
      std::cout << "controller " << response.controller().name() << " cordoned; " << stopped
                << " session(s) stopped, " << response.remaining_sessions() << " still live"
                << (done ? "" : " (drain again, or --wait)") << "\n";
      return kExitOk;
    }
    std::cerr << "controller " << response.controller().name() << ": " << stopped << " session(s) stopped, "
              << response.remaining_sessions() << " still live\n";
    if (absl::Now() >= give_up) {
      return Complain(absl::StrCat("controller ", response.controller().name(), " still has ",
                                   response.remaining_sessions(), " live session(s) after ",
                                   absl::FormatDuration(wait_timeout)),
                      kExitRpcBase + static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
    }
    absl::SleepFor(absl::Seconds(1));  // Sessions slow to stop: asked again in a moment.
  }
}

int ControllersDelete(Cli& cli) {
  v1::DeleteControllerResponse response;
  grpc::Status s =
      CallOnController<v1::DeleteControllerRequest>(cli, &v1::AdminService::Stub::DeleteController, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "controller " << cli.args().positional()[0] << " deleted\n";
  return kExitOk;
}

int ControllersRotateToken(Cli& cli) {
  v1::RotateControllerTokenResponse response;
  grpc::Status s = CallOnController<v1::RotateControllerTokenRequest>(
      cli, &v1::AdminService::Stub::RotateControllerToken, &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  std::cout << "new token (shown once): " << response.controller_token() << "\n"
            << "expires: " << google::protobuf::util::TimeUtil::ToString(response.expire_time()) << "\n"
            << (response.delivered() ? "the running controller uses it already"
                                     : "the controller could not be reached: it registers again with the join token")
            << "; the old one works until "
            << google::protobuf::util::TimeUtil::ToString(response.previous_expire_time()) << "\n";
  return kExitOk;
}

grpc::Status ListWorkers(Cli& cli, const std::string& controller, v1::ListWorkersResponse* response) {
  v1::ListWorkersRequest request;
  if (!controller.empty()) {
    std::string id;
    grpc::Status s = ResolveController(cli, controller, &id);
    if (!s.ok()) return s;
    request.set_controller_id(id);
  }
  auto context = cli.Call();
  return Admin(cli)->ListWorkers(context.get(), request, response);
}

void WarnUnreachable(const v1::ListWorkersResponse& response) {
  if (response.unreachable_controllers_size() > 0) {
    Complain("controllers not answering (their workers are missing here): " +
             absl::StrJoin(response.unreachable_controllers(), ", "));
  }
}

int WorkersList(Cli& cli) {
  v1::ListWorkersResponse response;
  grpc::Status s = ListWorkers(cli, cli.args().Get("controller"), &response);
  if (!s.ok()) return cli.Fail(s);
  WarnUnreachable(response);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  if (cli.format() == Format::kName) {
    for (const auto& w : response.workers()) std::cout << w.id() << "\n";
    return kExitOk;
  }
  const bool wide = cli.format() == Format::kWide;
  std::vector<std::string> header = {"WORKER", "STATUS", "GPUS USED", "GPU MODEL", "SESSIONS", "HEARTBEAT"};
  if (wide) header.insert(header.end(), {"SKILLS", "CAPABILITIES", "GPU UUIDS"});
  Table table(header);
  for (const auto& w : response.workers()) {
    int used = 0;
    std::vector<std::string> models, uuids;
    for (const auto& g : w.gpus()) {
      used += g.session_id().empty() ? 0 : 1;
      std::string model = g.name() + (g.simulated() ? " (simulated)" : "");
      if (std::find(models.begin(), models.end(), model) == models.end()) models.push_back(model);
      uuids.push_back(g.uuid());
    }
    std::vector<std::string> row = {w.id(), Unprefixed(v1::WorkerStatus_Name(w.status()), "WORKER_STATUS_"),
                                    absl::StrCat(used, "/", w.gpus_size()), OrDash(absl::StrJoin(models, ",")),
                                    std::to_string(w.active_sessions()),
                                    Age(w.last_heartbeat()) + (w.has_last_heartbeat() ? " ago" : "")};
    if (wide) {
      std::vector<std::string> capabilities;
      for (const auto& cap : w.capabilities()) capabilities.push_back(cap.name() + "@" + cap.version());
      row.insert(row.end(), {OrDash(absl::StrJoin(w.skills(), ",")), OrDash(absl::StrJoin(capabilities, ",")),
                             OrDash(absl::StrJoin(uuids, ","))});
    }
    table.AddRow(row);
  }
  std::cout << table.Render();
  return kExitOk;
}

std::string Counts(const google::protobuf::Map<std::string, int32_t>& by_name, const std::string& prefix) {
  std::map<std::string, int32_t> sorted(by_name.begin(), by_name.end());
  std::vector<std::string> parts;
  for (const auto& [name, n] : sorted) {
    if (n > 0) parts.push_back(absl::StrCat(n, " ", absl::AsciiStrToLower(Unprefixed(name, prefix))));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, ", ");
}

int ClusterStatus(Cli& cli) {
  v1::ClusterStatus status;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->GetClusterStatus(context.get(), v1::GetClusterStatusRequest(), &status);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), status)) return kExitOk;
  // GPUs by model and workers by status come from the controllers themselves.
  v1::ListWorkersResponse workers;
  s = ListWorkers(cli, "", &workers);
  if (!s.ok()) return cli.Fail(s);
  std::map<std::string, std::pair<int, int>> by_model;  // model -> used, total
  std::map<std::string, int> workers_by_status;
  for (const auto& w : workers.workers()) {
    ++workers_by_status[absl::AsciiStrToLower(Unprefixed(v1::WorkerStatus_Name(w.status()), "WORKER_STATUS_"))];
    for (const auto& g : w.gpus()) {
      auto& [used, total] = by_model[g.name() + (g.simulated() ? " (simulated)" : "")];
      used += g.session_id().empty() ? 0 : 1;
      ++total;
    }
  }
  std::vector<std::string> worker_parts;
  for (const auto& [name, n] : workers_by_status) worker_parts.push_back(absl::StrCat(n, " ", name));
  std::string failing;
  if (status.controllers_unreachable() > 0 || status.controllers_not_heartbeating() > 0) {
    failing = absl::StrCat(" (", status.controllers_unreachable(), " unreachable, ",
                           status.controllers_not_heartbeating(), " not heartbeating)");
  }
  std::cout << "Controllers:  " << Counts(status.controllers_by_status(), "CONTROLLER_STATUS_") << failing << "\n"
            << "Workers:      " << (worker_parts.empty() ? "none" : absl::StrJoin(worker_parts, ", ")) << "\n"
            << "GPUs:         " << status.gpus_used() << "/" << status.gpus_total() << " used\n";
  for (const auto& [model, counts] : by_model) {
    std::cout << "  " << model << ": " << counts.first << "/" << counts.second << " used\n";
  }
  std::cout << "Sessions:     " << Counts(status.sessions_by_phase(), "SESSION_PHASE_") << "\n";
  // Per priority class: its queue and its preempted sessions; only classes with either.
  std::vector<std::string> classes;
  for (const auto& c : status.priority_classes()) {
    std::string line = absl::StrCat(c.priority_class().empty() ? "(no class)" : c.priority_class(), ": ", c.queued(),
                                    " queued");
    if (c.queued() > 0) {
      const absl::Duration oldest = absl::Seconds(c.oldest_wait().seconds());  // Whole seconds are enough.
      absl::StrAppend(&line, " (oldest ", absl::FormatDuration(oldest), ")");
    }
    absl::StrAppend(&line, ", ", c.preempted(), " preempted");
    classes.push_back(std::move(line));
  }
  if (!classes.empty()) std::cout << "Queues:       " << absl::StrJoin(classes, "; ") << "\n";
  WarnUnreachable(workers);
  return kExitOk;
}

int ApiKeysCreate(Cli& cli) {
  v1::CreateApiKeyRequest request;
  request.set_principal(cli.args().Get("principal"));
  request.set_role(cli.args().Get("role", "user"));
  request.set_team(cli.args().Get("team"));
  if (cli.args().Has("expires")) {
    absl::Duration ttl;
    if (auto s = ParseDurationFlag(cli.args(), "expires", &ttl); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
    ToProto(absl::Now() + ttl, request.mutable_expire_time());
  }
  v1::CreateApiKeyResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->CreateApiKey(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  std::cout << "key id:  " << response.key_id() << "\n"
            << "api key: " << response.api_key() << "\n"
            << "(shown once: only its hash is stored; revoke with gantryctl apikeys revoke " << response.key_id() << ")\n";
  return kExitOk;
}

int ApiKeysRevoke(Cli& cli) {
  v1::RevokeApiKeyRequest request;
  request.set_key_id(cli.args().positional()[0]);
  v1::RevokeApiKeyResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->RevokeApiKey(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "api key " << request.key_id() << " revoked\n";
  return kExitOk;
}

int PrintTemplates(Cli& cli, const std::vector<v1::SessionTemplate>& templates) {
  if (cli.format() == Format::kJson || cli.format() == Format::kYaml) {
    v1::ListTemplatesResponse list;
    for (const auto& t : templates) *list.add_templates() = t;
    PrintStructured(cli.format(), list);
    return kExitOk;
  }
  if (cli.format() == Format::kName) {
    for (const auto& t : templates) std::cout << t.id() << "\n";
    return kExitOk;
  }
  Table table({"ID", "GPUS", "CONTROLLER TYPE", "AGE", "COMMAND", "DESCRIPTION"});
  for (const auto& t : templates) {
    table.AddRow({t.id(), std::to_string(t.spec().resources().gpus().count()), OrDash(t.preferred_controller_type()),
                  Age(t.create_time()), OrDash(absl::StrJoin(t.spec().command(), " ")), OrDash(t.description())});
  }
  std::cout << table.Render();
  return kExitOk;
}

int TemplatesCreate(Cli& cli) {
  const Args& args = cli.args();
  v1::CreateTemplateRequest request;
  auto* t = request.mutable_session_template();
  if (args.Has("file")) {
    auto text = ReadInput(args.Get("file"));
    if (!text.ok()) return Complain(std::string(text.status().message()));
    // A whole SessionTemplate (with "spec:"), or just a SessionSpec.
    if (!ParseMessage(*text, args.Get("file"), t).ok()) {
      t->Clear();
      auto status = ParseMessage(*text, args.Get("file"), t->mutable_spec());
      if (!status.ok()) return Complain(std::string(status.message()), kExitUsage);
    }
  }
  t->set_id(args.positional()[0]);
  std::vector<std::string> command(args.positional().begin() + 1, args.positional().end());
  if (auto status = ApplySpecFlags(args, command, t->mutable_spec()); !status.ok()) {
    return Complain(std::string(status.message()), kExitUsage);
  }
  if (args.Has("description")) t->set_description(args.Get("description"));
  if (args.Has("controller-type")) t->set_preferred_controller_type(args.Get("controller-type"));
  v1::SessionTemplate created;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->CreateTemplate(context.get(), request, &created);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), created)) return kExitOk;
  return PrintTemplates(cli, {created});
}

int TemplatesList(Cli& cli) {
  v1::ListTemplatesResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->ListTemplates(context.get(), v1::ListTemplatesRequest(), &response);
  if (!s.ok()) return cli.Fail(s);
  return PrintTemplates(cli, {response.templates().begin(), response.templates().end()});
}

int TemplatesDelete(Cli& cli) {
  v1::DeleteTemplateRequest request;
  request.set_id(cli.args().positional()[0]);
  v1::DeleteTemplateResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->DeleteTemplate(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "template " << request.id() << " deleted\n";
  return kExitOk;
}

}  // namespace

std::vector<Command> AdminCommands() {
  std::vector<FlagSpec> template_flags = {
      {"file", 'f', true, "FILE", "YAML or JSON: a SessionTemplate or a SessionSpec; flags override it"},
      {"description", 0, true, "TEXT", "what the template is for"},
      {"controller-type", 0, true, "TYPE", "preferred controller type for its sessions"},
  };
  const auto& spec_flags = SpecFlags();
  template_flags.insert(template_flags.end(), spec_flags.begin(), spec_flags.end());
  const std::string by = "A controller is named by its name or its id.";
  return {
      {"controllers list", "", "list controllers", "",
       {{"status", 0, true, "STATUS", "only healthy, unhealthy or offline ones"}}, 0, 0, 0, ControllersList},
      {"controllers get", "CONTROLLER", "show a controller", by, {}, 1, 1, false,
       OnController<v1::GetControllerRequest>(&v1::AdminService::Stub::GetController)},
      {"controllers cordon", "CONTROLLER", "place no new sessions on a controller", by, {}, 1, 1, false,
       OnController<v1::CordonControllerRequest>(&v1::AdminService::Stub::CordonController)},
      {"controllers uncordon", "CONTROLLER", "let a controller take new sessions again", by, {}, 1, 1, false,
       OnController<v1::UncordonControllerRequest>(&v1::AdminService::Stub::UncordonController)},
      {"controllers drain", "CONTROLLER", "cordon a controller and stop its sessions",
       by + " Sessions are stopped as DeleteSession stops them; uncordon to end the drain.",
       {{"wait", 'w', false, "", "drain until no live session is left"},
        {"wait-timeout", 0, true, "DURATION", "give up waiting after this long (default 10m)"}},
       1, 1, false, ControllersDrain},
      {"controllers delete", "CONTROLLER", "forget a controller that has no live sessions", by, {}, 1, 1, false,
       ControllersDelete},
      {"controllers rotate-token", "CONTROLLER", "issue a new controller token and hand it to the controller", by, {},
       1, 1, 0, ControllersRotateToken},
      {"workers list", "", "list the workers of every controller (or one)", "",
       {{"controller", 0, true, "CONTROLLER", "only this controller's workers"}}, 0, 0, 0, WorkersList},
      {"cluster status", "", "controllers, workers, GPUs used by model, sessions by phase", "", {}, 0, 0, false,
       ClusterStatus},
      {"apikeys create", "", "create an API key (shown once)", "",
       {{"principal", 0, true, "NAME", "who the key belongs to (required)"},
        {"role", 0, true, "ROLE", "user (default) or admin"},
        {"expires", 0, true, "DURATION", "expire after this long (720h); default never"},
        {"team", 0, true, "TEAM", "put the principal in this team (its sessions share the team's quota)"}},
       0, 0, 0, ApiKeysCreate},
      {"apikeys revoke", "KEY_ID", "revoke an API key at once", "", {}, 1, 1, 0, ApiKeysRevoke},
      {"templates create", "ID [--] [COMMAND [ARG...]]", "create a session template", "", template_flags, 1, -1,
       2, TemplatesCreate},
      {"templates list", "", "list session templates", "", {}, 0, 0, 0, TemplatesList},
      {"templates delete", "ID", "delete a session template", "", {}, 1, 1, 0, TemplatesDelete},
  };
}

}  // namespace gantry::ctl
