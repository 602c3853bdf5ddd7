// Teams, quotas and priority classes (AdminService, admin role): who shares a quota, what the
// team's live sessions may hold together, and what goes first. See docs/multi-tenancy.md.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"

namespace gantry::ctl {
namespace {

std::unique_ptr<v1::AdminService::Stub> Admin(Cli& cli) { return v1::AdminService::NewStub(cli.channel()); }

// "4/8": used of the limit, or "4/-" where there is none.
std::string UsedOf(int64_t used, int64_t max) { return absl::StrCat(used, "/", max > 0 ? absl::StrCat(max) : "-"); }

std::string ByModel(const v1::Quota& q) {
  std::vector<std::string> parts;
  for (const auto& [model, max] : q.max_gpus_by_model()) {
    auto used = q.gpus_used_by_model().find(model);
    parts.push_back(absl::StrCat(model, " ", UsedOf(used == q.gpus_used_by_model().end() ? 0 : used->second, max)));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

void AddQuotaRow(Table& table, const v1::Quota& q) {
  table.AddRow({q.team(), UsedOf(q.gpus_used(), q.max_gpus()), UsedOf(q.sessions_used(), q.max_sessions()),
                UsedOf(q.gpu_memory_bytes_used(), q.max_gpu_memory_bytes()), ByModel(q), std::to_string(q.weight())});
}

int PrintQuotas(Cli& cli, const google::protobuf::Message& response, const std::vector<v1::Quota>& quotas) {
  if (PrintStructured(cli.format(), response)) return kExitOk;
  Table table({"TEAM", "GPUS", "SESSIONS", "GPU MEMORY (BYTES)", "GPUS BY MODEL", "WEIGHT"});
  for (const auto& q : quotas) AddQuotaRow(table, q);
  std::cout << table.Render();
  return kExitOk;
}

int Teams(Cli& cli) {
  v1::ListTeamsResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->ListTeams(context.get(), v1::ListTeamsRequest(), &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  Table table({"TEAM", "PRINCIPALS", "GPUS", "SESSIONS"});
  for (const auto& t : response.teams()) {
    table.AddRow({t.name(), t.principals().empty() ? "-" : absl::StrJoin(t.principals(), ", "),
                  t.has_quota() ? UsedOf(t.quota().gpus_used(), t.quota().max_gpus()) : "-",
                  t.has_quota() ? UsedOf(t.quota().sessions_used(), t.quota().max_sessions()) : "-"});
  }
  std::cout << table.Render();
  return kExitOk;
}

int TeamsSet(Cli& cli, const std::string& team) {
  v1::SetPrincipalTeamRequest request;
  request.set_principal(cli.args().positional()[0]);
  request.set_team(team);
  v1::SetPrincipalTeamResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->SetPrincipalTeam(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << request.principal() << " is in "
            << (team.empty() ? "its team of one" : absl::StrCat("team ", team)) << "\n";
  return kExitOk;
}

// A count flag: 0 or more.
bool CountFlag(Cli& cli, const char* flag, int64_t* out) {
  if (!cli.args().Has(flag)) return true;
  if (!absl::SimpleAtoi(cli.args().Get(flag), out) || *out < 0) {
    Complain(absl::StrCat("--", flag, ": \"", cli.args().Get(flag), "\" is not a count of 0 (no limit) or more"),
             kExitUsage);
    return false;
  }
  return true;
}

int QuotaSet(Cli& cli) {
  v1::SetQuotaRequest request;
  request.set_team(cli.args().positional()[0]);
  int64_t gpus = 0, sessions = 0, memory = 0, weight = 0;
  if (!CountFlag(cli, "gpus", &gpus) || !CountFlag(cli, "sessions", &sessions) ||
      !CountFlag(cli, "gpu-memory", &memory) || !CountFlag(cli, "weight", &weight)) {
    return kExitUsage;
  }
  request.set_weight(static_cast<int32_t>(weight));
  request.set_max_gpus(static_cast<int32_t>(gpus));
  request.set_max_sessions(static_cast<int32_t>(sessions));
  request.set_max_gpu_memory_bytes(memory);
  for (const std::string& pair : cli.args().All("model")) {
    std::vector<std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    int max = 0;
    if (kv.size() != 2 || kv[0].empty() || !absl::SimpleAtoi(kv[1], &max)) {
      return Complain(absl::StrCat("--model: \"", pair, "\" is not MODEL=N (e.g. a100=8)"), kExitUsage);
    }
    (*request.mutable_max_gpus_by_model())[kv[0]] = max;
  }
  v1::Quota response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->SetQuota(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  return PrintQuotas(cli, response, {response});
}

int QuotaGet(Cli& cli) {
  v1::GetQuotaRequest request;
  request.set_team(cli.args().positional()[0]);
  v1::Quota response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->GetQuota(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  return PrintQuotas(cli, response, {response});
}

int QuotaList(Cli& cli) {
  v1::ListQuotasResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->ListQuotas(context.get(), v1::ListQuotasRequest(), &response);
  if (!s.ok()) return cli.Fail(s);
  return PrintQuotas(cli, response, {response.quotas().begin(), response.quotas().end()});
}

int QuotaDelete(Cli& cli) {
  v1::DeleteQuotaRequest request;
  request.set_team(cli.args().positional()[0]);
  v1::DeleteQuotaResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->DeleteQuota(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "quota of team " << request.team() << " deleted: no limit\n";
  return kExitOk;
}

int PriorityClasses(Cli& cli) {
  v1::ListPriorityClassesResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->ListPriorityClasses(context.get(), v1::ListPriorityClassesRequest(), &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  Table table({"NAME", "VALUE", "PREEMPTIBLE", "MIN RUNTIME", "DEFAULT", "AGE"});
  for (const auto& c : response.priority_classes()) {
    table.AddRow({c.name(), absl::StrCat(c.value()), c.preemptible() ? "yes" : "no",
                  c.min_runtime().seconds() > 0 ? absl::FormatDuration(absl::Seconds(c.min_runtime().seconds())) : "-",
                  c.is_default() ? "yes" : "-", Age(c.create_time())});
  }
  std::cout << table.Render();
  return kExitOk;
}

int PriorityClassesCreate(Cli& cli) {
  v1::CreatePriorityClassRequest request;
  request.set_name(cli.args().positional()[0]);
  int value = 0;
  if (!absl::SimpleAtoi(cli.args().Get("value"), &value)) {
    return Complain(absl::StrCat("--value: \"", cli.args().Get("value"), "\" is not a whole number (higher goes first)"),
                    kExitUsage);
  }
  request.set_value(value);
  request.set_preemptible(cli.args().Has("preemptible"));
  request.set_is_default(cli.args().Has("default"));
  if (cli.args().Has("min-runtime")) {
    absl::Duration d;
    if (auto s = ParseDurationFlag(cli.args(), "min-runtime", &d); !s.ok()) {
      return Complain(std::string(s.message()), kExitUsage);
    }
    request.mutable_min_runtime()->set_seconds(absl::ToInt64Seconds(d));
  }
  v1::PriorityClass response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->CreatePriorityClass(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  std::cout << "priority class " << response.name() << " created (value " << response.value()
            << (response.is_default() ? ", the default" : "") << ")\n";
  return kExitOk;
}

int PriorityClassesDelete(Cli& cli) {
  v1::DeletePriorityClassRequest request;
  request.set_name(cli.args().positional()[0]);
  v1::DeletePriorityClassResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->DeletePriorityClass(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "priority class " << request.name() << " deleted (its sessions keep their priority)\n";
  return kExitOk;
}

}  // namespace

std::vector<Command> TeamCommands() {
  const std::string team_help =
      "TEAM is a team's name, or a principal (user/alice) for its team of one. 0 means no limit.";
  return {
      {"teams", "", "list teams: their principals, and their quotas' use", "", {}, 0, 0, 0, Teams},
      {"teams set", "PRINCIPAL TEAM", "put a principal (user/alice, admin/ops) in a team",
       "Sessions it creates from now on are charged to that team's quota; those it has keep their team.", {}, 2, 2,
       0, [](Cli& cli) { return TeamsSet(cli, cli.args().positional()[1]); }},
      {"teams unset", "PRINCIPAL", "put a principal back in its team of one", "", {}, 1, 1, 0,
       [](Cli& cli) { return TeamsSet(cli, ""); }},
      {"quota set", "TEAM", "set a team's quota (replaces every limit)", team_help,
       {{"gpus", 0, true, "N", "GPUs its live sessions hold at most"},
        {"sessions", 0, true, "N", "live sessions at most"},
        {"gpu-memory", 0, true, "BYTES", "GPU memory at most (each GPU counts its controller's largest)"},
        {"model", 0, true, "MODEL=N", "GPUs of a model at most, matched as placement does (repeatable: a100=8)"},
        {"weight", 0, true, "N", "its weight in the queue's fair share, 1..1000 (default 1)"}},
       1, 1, 0, QuotaSet},
      {"quota get", "TEAM", "show a team's quota and its use", team_help, {}, 1, 1, 0, QuotaGet},
      {"quota list", "", "list quotas and their use", "", {}, 0, 0, 0, QuotaList},
      {"quota delete", "TEAM", "remove a team's quota (no limit)", team_help, {}, 1, 1, 0, QuotaDelete},
      {"priorityclasses", "", "list priority classes, highest first", "", {}, 0, 0, 0, PriorityClasses},
      {"priorityclasses create", "NAME", "create a priority class (create --priority NAME uses it)",
       "A session keeps its class's value from its create.",
       {{"value", 0, true, "N", "higher goes first (required)"},
        {"preemptible", 0, false, "", "its sessions may be stopped for a higher class"},
        {"min-runtime", 0, true, "DURATION", "never preempted before running this long"},
        {"default", 0, false, "", "the class of sessions that name none (at most one class)"}},
       1, 1, 0, PriorityClassesCreate},
      {"priorityclasses delete", "NAME", "delete a priority class", "", {}, 1, 1, 0, PriorityClassesDelete},
  };
}

}  // namespace gantry::ctl
