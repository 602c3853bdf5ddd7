// grpcurl's view of the API server: a client in another language (Python's grpcio from
// Debian) lists the services through server reflection (v1alpha and v1), over TLS with a client
// certificate, and finds the .proto comments and JSON names in the descriptors.
#include <catch2/catch.hpp>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {

TEST_CASE("server reflection lists the gantry.v1 services, as grpcurl list does", "[e2e][reflection]") {
  LocalFleet fleet;
  fleet.StartApi();
  std::string admin = fleet.pki().dir() + "/admin-ops";
  std::string cmd = absl::StrCat("/usr/bin/python3 ", SourcePath("tests/e2e/reflection_list.py"), " ",
                                 fleet.api_address(), " ", fleet.pki().ca(), " ", admin, ".crt ",
                                 admin, ".key ", fleet.dir().Sub("py"), " 2>&1");
  std::string out = RunCommand(cmd);
  INFO(out);
  for (const char* service : {"gantry.v1.SessionService", "gantry.v1.InvokeService",
                              "gantry.v1.AdminService", "gantry.v1.RegistryService",
                              "grpc.health.v1.Health"}) {
    CHECK(out.find(service) != std::string::npos);
  }
  // And it can describe a method's request type, as grpcurl describe does.
  CHECK(out.find("CreateSessionRequest") != std::string::npos);
  // Both protocol versions; the .proto comments and JSON names, which the stock reflection
  // plugin dropped (grpcurl printed gpu_uuids and describe showed no comment); the health
  // service's descriptors too; and an unknown symbol as NOT_FOUND (5).
  CHECK(out.find("v1 services: gantry.v1.AdminService gantry.v1.InvokeService") != std::string::npos);
  CHECK(out.find("grpc.reflection.v1.ServerReflection grpc.reflection.v1alpha.ServerReflection") != std::string::npos);
  CHECK(out.find("comment on CreateSession: ") != std::string::npos);
  CHECK(out.find("json_name of Session.gpu_uuids: gpuUuids") != std::string::npos);
  CHECK(out.find("health descriptors: ['grpc/health/v1/health.proto']") != std::string::npos);
  CHECK(out.find("unknown symbol: 5 symbol gantry.v1.NoSuchService not found") != std::string::npos);
}

}  // namespace gantry::testing
