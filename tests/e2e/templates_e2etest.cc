// Session templates: stored by an admin, used by CreateSession (merged, preferred controller
// type honoured), listed and deleted; bad ones refused.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("a session made from a template gets the template's spec under the request's", "[e2e][templates]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2", 2);
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  auto sessions = fleet.AdminSessions();

  v1::CreateTemplateRequest create;
  auto* t = create.mutable_session_template();
  t->set_id("sleeper");
  t->set_description("sleeps on one GPU");
  t->set_preferred_controller_type("gpu-node");
  *t->mutable_spec() = SleepSpec("3600.8787", 1);
  (*t->mutable_spec()->mutable_env())["FROM_TEMPLATE"] = "yes";
  v1::SessionTemplate stored;
  {
    grpc::ClientContext ctx;
    REQUIRE(admin->CreateTemplate(&ctx, create, &stored).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::SessionTemplate dup;
    CHECK(admin->CreateTemplate(&ctx, create, &dup).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  }

  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  req.set_template_id("sleeper");
  (*req.mutable_spec()->mutable_env())["FROM_REQUEST"] = "yes";
  req.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(2);
  v1::Session s;
  {
    grpc::ClientContext ctx;
    grpc::Status st = sessions->CreateSession(&ctx, req, &s);
    INFO(st.error_message());
    REQUIRE(st.ok());
  }
  CHECK(s.phase() == v1::SESSION_PHASE_RUNNING);
  CHECK(s.template_id() == "sleeper");
  CHECK(s.spec().command(1) == "3600.8787");
  CHECK(s.spec().env().at("FROM_TEMPLATE") == "yes");
  CHECK(s.spec().env().at("FROM_REQUEST") == "yes");
  CHECK(s.gpu_uuids_size() == 2);
  CHECK(PidsWithCmdline("sleep 3600.8787").size() == 1);
  const std::string made_from_template = s.id();

  // The preferred controller type is used for placement: a template preferring a type nobody
  // has cannot be placed.
  v1::CreateTemplateRequest elsewhere = create;
  elsewhere.mutable_session_template()->set_id("elsewhere");
  elsewhere.mutable_session_template()->set_preferred_controller_type("tpu-node");
  {
    grpc::ClientContext ctx;
    REQUIRE(admin->CreateTemplate(&ctx, elsewhere, &stored).ok());
    v1::CreateSessionRequest r2;
    r2.set_wait_for_running(true);
    r2.set_template_id("elsewhere");
    grpc::ClientContext ctx2;
    grpc::Status st = sessions->CreateSession(&ctx2, r2, &s);
    CHECK(st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(st.error_message().find("tpu-node") != std::string::npos);
  }

  {
    v1::CreateSessionRequest unknown;
    unknown.set_wait_for_running(true);
    unknown.set_template_id("nope");
    grpc::ClientContext ctx;
    grpc::Status st = sessions->CreateSession(&ctx, unknown, &s);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().rfind("template_id", 0) == 0);
  }
  {
    v1::CreateTemplateRequest bad = create;
    bad.mutable_session_template()->set_id("no-command");
    bad.mutable_session_template()->mutable_spec()->clear_command();
    grpc::ClientContext ctx;
    grpc::Status st = admin->CreateTemplate(&ctx, bad, &stored);
    CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
    CHECK(st.error_message().find("spec.command") != std::string::npos);
  }

  v1::ListTemplatesResponse listed;
  {
    grpc::ClientContext ctx;
    REQUIRE(admin->ListTemplates(&ctx, v1::ListTemplatesRequest(), &listed).ok());
  }
  REQUIRE(listed.templates_size() == 2);
  CHECK(listed.templates(1).id() == "sleeper");
  CHECK(listed.templates(1).spec().env().at("FROM_TEMPLATE") == "yes");

  v1::DeleteTemplateRequest del;
  del.set_id("sleeper");
  v1::DeleteTemplateResponse deleted;
  {
    grpc::ClientContext ctx;
    REQUIRE(admin->DeleteTemplate(&ctx, del, &deleted).ok());
  }
  {
    grpc::ClientContext ctx;
    CHECK(admin->DeleteTemplate(&ctx, del, &deleted).error_code() == grpc::StatusCode::NOT_FOUND);
  }
  // The session made from it runs on, with its merged spec; only the link to the template goes.
  CHECK(fleet.db().Scalar("SELECT phase FROM sessions WHERE id = '" + made_from_template + "'") == "RUNNING");
  CHECK(fleet.db().Scalar("SELECT coalesce(template_id, 'none') FROM sessions WHERE id = '" +
                          made_from_template + "'") == "none");
  CHECK(PidsWithCmdline("sleep 3600.8787").size() == 1);

  // Users cannot manage templates.
  auto user = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().Issue("user", "u1")));
  grpc::ClientContext ctx;
  CHECK(user->ListTemplates(&ctx, v1::ListTemplatesRequest(), &listed).error_code() ==
        grpc::StatusCode::PERMISSION_DENIED);
}

}  // namespace gantry::testing
