// Join tokens (AdminService, admin role): what a new controller or worker brings for its first
// certificate. See docs/security.md for who should hold one.
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tools/gantryctl/commands.h"
#include "tools/gantryctl/render.h"

namespace gantry::ctl {
namespace {

std::unique_ptr<v1::AdminService::Stub> Admin(Cli& cli) { return v1::AdminService::NewStub(cli.channel()); }

int JoinTokensCreate(Cli& cli) {
  v1::CreateJoinTokenRequest request;
  request.set_role(cli.args().Get("role"));
  request.set_node_name(cli.args().Get("name"));
  if (cli.args().Has("ttl")) {
    absl::Duration ttl;
    if (auto s = ParseDurationFlag(cli.args(), "ttl", &ttl); !s.ok()) return Complain(std::string(s.message()), kExitUsage);
    request.mutable_ttl()->set_seconds(absl::ToInt64Seconds(ttl));
  }
  if (cli.args().Has("max-uses")) {
    int uses = 0;
    if (!absl::SimpleAtoi(cli.args().Get("max-uses"), &uses) || uses < 1) {
      return Complain(absl::StrCat("--max-uses: \"", cli.args().Get("max-uses"), "\" is not a count of 1 or more"),
                      kExitUsage);
    }
    request.set_max_uses(uses);
  }
  v1::CreateJoinTokenResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->CreateJoinToken(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  const v1::JoinToken& t = response.join_token();
  std::cout << "id:      " << t.id() << "\n"
            << "for:     " << t.role() << " " << (t.node_name().empty() ? "(any name no node holds)" : t.node_name())
            << ", " << t.max_uses() << " certificate(s), until "
            << absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixSeconds(t.expire_time().seconds()),
                                absl::UTCTimeZone())
            << "\n"
            << "secret:  " << response.secret() << "\n"
            << "(shown once: only its hash is stored. Give it to the node as a file, --join-token-file; revoke "
               "with gantryctl jointokens revoke "
            << t.id() << ")\n";
  return kExitOk;
}

int JoinTokensList(Cli& cli) {
  v1::ListJoinTokensResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->ListJoinTokens(context.get(), v1::ListJoinTokensRequest(), &response);
  if (!s.ok()) return cli.Fail(s);
  if (PrintStructured(cli.format(), response)) return kExitOk;
  Table table({"ID", "ROLE", "NAME", "USES", "STATE", "EXPIRES", "CREATED BY", "AGE"});
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  for (const auto& t : response.join_tokens()) {
    std::string state = t.has_revoke_time()               ? "revoked"
                        : t.uses() >= t.max_uses()         ? "used up"
                        : t.expire_time().seconds() <= now ? "expired"
                                                           : "usable";
    const int64_t left = t.expire_time().seconds() - now;
    table.AddRow({t.id(), t.role(), OrDash(t.node_name()), absl::StrCat(t.uses(), "/", t.max_uses()), state,
                  left > 0 ? absl::StrCat("in ", absl::FormatDuration(absl::Seconds(left))) : "past",
                  t.created_by(), Age(t.create_time())});
  }
  std::cout << table.Render();
  return kExitOk;
}

int JoinTokensRevoke(Cli& cli) {
  v1::RevokeJoinTokenRequest request;
  request.set_id(cli.args().positional()[0]);
  v1::RevokeJoinTokenResponse response;
  auto context = cli.Call();
  grpc::Status s = Admin(cli)->RevokeJoinToken(context.get(), request, &response);
  if (!s.ok()) return cli.Fail(s);
  std::cout << "join token " << request.id() << " revoked\n";
  return kExitOk;
}

}  // namespace

std::vector<Command> JoinTokenCommands() {
  return {
      {"jointokens create", "", "create a join token for new controllers or workers (shown once)",
       "A token mints certificates for one role only, and never for a name a registered node holds, unless it is "
       "bound to that name (--name): that is how a lost node's name goes to its replacement.",
       {{"role", 0, true, "ROLE", "controller or worker (required)"},
        {"name", 0, true, "NAME", "the one node name it mints a certificate for"},
        {"ttl", 0, true, "DURATION", "usable for this long (default 24h, at most 720h)"},
        {"max-uses", 0, true, "N", "certificates it mints (default 1)"}},
       0, 0, 0, JoinTokensCreate},
      {"jointokens list", "", "list join tokens (usable ones, and those that ended in the last week)", "", {}, 0, 0, 0,
       JoinTokensList},
      {"jointokens revoke", "ID", "revoke a join token at once", "", {}, 1, 1, 0, JoinTokensRevoke},
  };
}

}  // namespace gantry::ctl
