// Certificates replaced in place (as cert-manager and kubelet do with a mounted Secret) are
// served by the next handshake, on the gRPC port, the metrics port and the front door's, with no
// restart and no dropped node.
#include <catch2/catch.hpp>

#include "tests/support/local_fleet.h"

namespace gantry::testing {

namespace {

// A directory laid out as kubelet mounts a Secret: tls.crt and tls.key are links through
// ..data, a link to the current version's directory, swapped in one rename on update (so the
// pair changes at once; gRPC's watcher does not check that a key matches its certificate).
class SecretVolume {
 public:
  explicit SecretVolume(std::string dir) : dir_(std::move(dir)) {
    RunCommand("mkdir -p '" + dir_ + "' && ln -s ..data/tls.crt '" + dir_ + "/tls.crt' && ln -s ..data/tls.key '" +
               dir_ + "/tls.key'");
  }
  // Moves PREFIX.crt/.key in as the next version.
  void Publish(const std::string& prefix) {
    std::string version = "..v" + std::to_string(++version_);
    RunCommand("cd '" + dir_ + "' && mkdir " + version + " && mv '" + prefix + ".crt' " + version + "/tls.crt && mv '" +
               prefix + ".key' " + version + "/tls.key && ln -s " + version + " ..data_tmp && mv -T ..data_tmp ..data");
  }
  std::string cert() const { return dir_ + "/tls.crt"; }
  std::string key() const { return dir_ + "/tls.key"; }

 private:
  std::string dir_;
  int version_ = 0;
};

}  // namespace

TEST_CASE("tls: a rotated API server certificate is served without a restart, and the fleet carries on",
          "[e2e][tls]") {
  LocalFleet fleet;
  SecretVolume secret(fleet.dir().Sub("api-tls"));
  secret.Publish(fleet.pki().Issue("api-server", "", fleet.dir().Sub("api-v1")));
  fleet.api_env["GANTRY_TLS_CERT"] = secret.cert();
  fleet.api_env["GANTRY_TLS_KEY"] = secret.key();
  fleet.api_env["GANTRY_TLS_REFRESH_INTERVAL"] = "1s";
  fleet.api_env["GANTRY_METRICS_LISTEN"] = "127.0.0.1:0";
  fleet.api_env["GANTRY_METRICS_PORT_FILE"] = fleet.dir().Sub("api-metrics.port");
  fleet.api_env["GANTRY_HTTP_LISTEN"] = "127.0.0.1:0";
  fleet.api_env["GANTRY_HTTP_PORT_FILE"] = fleet.dir().Sub("api-http.port");
  fleet.StartSingleNode("1");
  int grpc_port = std::stoi(fleet.api_address().substr(fleet.api_address().rfind(':') + 1));
  int metrics_port = WaitForPortFile(fleet.dir().Sub("api-metrics.port"), absl::Seconds(10));
  REQUIRE(metrics_port != 0);
  int http_port = WaitForPortFile(fleet.dir().Sub("api-http.port"), absl::Seconds(10));
  REQUIRE(http_port != 0);
  const std::string ca = fleet.pki().ca();
  const std::string old_serial = PresentedSerial(ca, grpc_port);
  REQUIRE(!old_serial.empty());
  CHECK(PresentedSerial(ca, metrics_port) == old_serial);
  CHECK(PresentedSerial(ca, http_port) == old_serial);
  pid_t pid = fleet.api().pid();

  secret.Publish(fleet.pki().Issue("api-server", "", fleet.dir().Sub("api-v2")));
  std::string grpc_serial, metrics_serial, http_serial;
  CHECK(WaitFor([&] {
    grpc_serial = PresentedSerial(ca, grpc_port);
    metrics_serial = PresentedSerial(ca, metrics_port);
    http_serial = PresentedSerial(ca, http_port);
    return !grpc_serial.empty() && grpc_serial != old_serial && metrics_serial == grpc_serial &&
           http_serial == grpc_serial;
  }, absl::Seconds(10)));
  INFO("gRPC port serves " << grpc_serial << ", metrics port " << metrics_serial << ", front door " << http_serial
                           << ", was " << old_serial);
  CHECK(fleet.api().pid() == pid);
  CHECK(fleet.api().Alive());

  // The controller (heartbeats, placement) and a client carry on over the new certificate.
  v1::Session session;
  grpc::Status status = fleet.CreateAsAdmin(SleepSpec("611"), &session);
  REQUIRE(status.error_message() == "");
  CHECK(session.phase() == v1::SESSION_PHASE_RUNNING);
}

}  // namespace gantry::testing
