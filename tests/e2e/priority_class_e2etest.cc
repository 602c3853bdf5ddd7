// Priority classes: what a session names (or the default) is recorded with it, its value as of
// the create; bad requests and unknown classes are refused naming the field, writing nothing.
#include <grpcpp/client_context.h>

#include <catch2/catch.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "tests/support/gantryctl_runner.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

v1::CreatePriorityClassRequest Class(const std::string& name, int value, bool is_default = false) {
  v1::CreatePriorityClassRequest r;
  r.set_name(name);
  r.set_value(value);
  r.set_is_default(is_default);
  return r;
}

grpc::Status CreateClass(v1::AdminService::Stub* admin, const v1::CreatePriorityClassRequest& request) {
  grpc::ClientContext ctx;
  v1::PriorityClass created;
  return admin->CreatePriorityClass(&ctx, request, &created);
}

// A session of no GPUs naming `priority_class` ("" for none); the call's status.
grpc::Status Create(LocalFleet& fleet, const std::string& priority_class, v1::Session* session) {
  v1::CreateSessionRequest request;
  *request.mutable_spec() = SleepSpec("3600.8545", 0);
  request.mutable_spec()->set_priority_class(priority_class);
  grpc::ClientContext ctx;
  return fleet.AdminSessions()->CreateSession(&ctx, request, session);
}

}  // namespace

TEST_CASE("priority classes: a session keeps the value of the class it names, or of the default, as of its create, "
          "and bad requests write nothing",
          "[e2e][priority]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));

  auto batch = Class("batch", 100);
  batch.set_preemptible(true);
  batch.mutable_min_runtime()->set_seconds(600);
  REQUIRE(CreateClass(admin.get(), batch).ok());
  REQUIRE(CreateClass(admin.get(), Class("urgent", 1000)).ok());
  REQUIRE(CreateClass(admin.get(), Class("standard", 500, /*is_default=*/true)).ok());

  // Refused, naming why, and nothing written.
  auto refused = [&](const v1::CreatePriorityClassRequest& r, grpc::StatusCode code, const std::string& field) {
    grpc::Status s = CreateClass(admin.get(), r);
    INFO(r.ShortDebugString() << " -> " << s.error_message());
    CHECK(s.error_code() == code);
    CHECK(absl::StartsWith(s.error_message(), field + ": "));
  };
  refused(Class("Urgent!", 1), grpc::StatusCode::INVALID_ARGUMENT, "name");
  refused(Class("huge", 2000000000), grpc::StatusCode::INVALID_ARGUMENT, "value");
  auto negative = Class("negative", 1);
  negative.mutable_min_runtime()->set_seconds(-5);
  refused(negative, grpc::StatusCode::INVALID_ARGUMENT, "min_runtime");
  refused(Class("urgent", 7), grpc::StatusCode::ALREADY_EXISTS, "name");
  refused(Class("another-default", 7, true), grpc::StatusCode::FAILED_PRECONDITION, "is_default");
  fleet.pki().Issue("user", "alice");
  auto alice = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/user-alice"));
  CHECK(CreateClass(alice.get(), Class("mine", 999999)).error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(fleet.db().Scalar("SELECT string_agg(name, ',' ORDER BY value DESC) FROM priority_classes") ==
        "urgent,standard,batch");
  {
    grpc::ClientContext ctx;
    v1::ListPriorityClassesResponse classes;
    REQUIRE(admin->ListPriorityClasses(&ctx, v1::ListPriorityClassesRequest(), &classes).ok());
    REQUIRE(classes.priority_classes_size() == 3);
    CHECK(classes.priority_classes(2).name() == "batch");
    CHECK(classes.priority_classes(2).preemptible());
    CHECK(classes.priority_classes(2).min_runtime().seconds() == 600);
    CHECK(classes.priority_classes(1).is_default());
  }

  // A session naming a class that does not exist: refused, nothing written.
  v1::Session session;
  grpc::Status s = Create(fleet, "no-such-class", &session);
  CHECK(s.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(absl::StartsWith(s.error_message(), "spec.priority_class: no priority class \"no-such-class\""));
  CHECK(fleet.db().Scalar("SELECT count(*) FROM sessions") == "0");

  v1::Session urgent, unnamed;
  REQUIRE(Create(fleet, "urgent", &urgent).ok());
  CHECK(urgent.spec().priority_class() == "urgent");
  REQUIRE(Create(fleet, "", &unnamed).ok());
  CHECK(unnamed.spec().priority_class() == "standard");  // The default, written in.
  CHECK(fleet.db().Scalar("SELECT priority FROM sessions WHERE id = '" + urgent.id() + "'") == "1000");
  CHECK(fleet.db().Scalar("SELECT priority FROM sessions WHERE id = '" + unnamed.id() + "'") == "500");

  // Deleted, the default is gone: its session keeps its priority, the next gets none.
  {
    grpc::ClientContext ctx;
    v1::DeletePriorityClassRequest del;
    del.set_name("standard");
    v1::DeletePriorityClassResponse deleted;
    REQUIRE(admin->DeletePriorityClass(&ctx, del, &deleted).ok());
  }
  v1::Session after;
  REQUIRE(Create(fleet, "", &after).ok());
  CHECK(after.spec().priority_class().empty());
  CHECK(fleet.db().Scalar("SELECT priority FROM sessions WHERE id = '" + after.id() + "'") == "0");
  CHECK(fleet.db().Scalar("SELECT priority FROM sessions WHERE id = '" + unnamed.id() + "'") == "500");
}

TEST_CASE("gantryctl: priorityclasses create, list and delete, and create --priority and --queue",
          "[e2e][gantryctl][priority]") {
  LocalFleet fleet;
  fleet.StartSingleNode("2");
  Gantryctl ctl(fleet);
  Ran created = ctl({"priorityclasses", "create", "urgent", "--value", "1000", "--min-runtime", "10m", "--preemptible"});
  INFO(created.err);
  CHECK(created.code == 0);
  CHECK(created.out == "priority class urgent created (value 1000)\n");
  CHECK(ctl({"priorityclasses", "create", "cheap", "--value", "ten"}).code == 2);
  CHECK(absl::StrContains(ctl({"priorityclasses"}).out, "urgent   1000    yes           10m           -         "));
  Ran session = ctl({"create", "--priority", "urgent", "-o", "name", "sleep", "3600.8546"});
  REQUIRE(session.code == 0);
  CHECK(absl::StrContains(ctl({"list", "-o", "wide"}).out, "urgent"));
  CHECK(ctl({"create", "--priority", "nope", "sleep", "3600.8547"}).code != 0);
  // Three GPUs of a fleet of two: queued, not refused.
  Ran queued = ctl({"create", "--gpus", "3", "--queue", "--queue-timeout", "10m", "-o", "name", "sleep", "3600.8548"});
  INFO(queued.err);
  REQUIRE(queued.code == 0);
  const std::string id(absl::StripAsciiWhitespace(queued.out));
  CHECK(fleet.db().Scalar("SELECT phase || ' ' || (queued_until > now() + interval '9 minutes') FROM sessions "
                          "WHERE id = '" + id + "'") == "PENDING true");
  CHECK(ctl({"delete", id}).code == 0);
  CHECK(ctl({"priorityclasses", "delete", "urgent"}).code == 0);
  CHECK(fleet.db().Scalar("SELECT count(*) FROM priority_classes") == "0");
}

}  // namespace gantry::testing
