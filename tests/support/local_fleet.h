// A real Gantry fleet on loopback for end-to-end tests: gantry-api on its own database,
// gantry-controller(s) and gantry-worker(s), all with certificates from gantry-pki, all on
// ports chosen by the kernel, all killed when the test ends.
#pragma once

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "gantry/v1/registry_service.grpc.pb.h"
#include "gantry/v1/session_service.grpc.pb.h"
#include "tests/support/test_env.h"

namespace gantry::testing {

inline constexpr char kJoinToken[] = "test-join-token-0123456789";
inline constexpr char kAdminKey[] = "test-admin-key-0123456789";
// The uids test workers give their sessions (when the suite runs as root).
inline constexpr char kSessionUids[] = "200000-200999";
// The uid capability handlers run as, where the suite can give them one (as root).
inline constexpr char kHandlerUser[] = "199999";

class LocalFleet {
 public:
  // Starts nothing yet; the Start* calls below do, in order.
  LocalFleet();
  ~LocalFleet();

  // The API server against `dsn` (default: this fleet's own fresh database).
  void StartApi(const std::string& dsn = "", bool wait_until_serving = true);
  // Another API server replica on this fleet's database, once SERVING; returns its port.
  int StartApiReplica(const std::string& dsn = "");
  // An API server replica elsewhere: run through `exec_prefix` (a network namespace), listening
  // on `listen_ip`, on database `dsn` (TCP, for a replica behind a veth). Not waited on: it may
  // not be reachable from here.
  Process& StartApiReplicaIn(const std::vector<std::string>& exec_prefix, const std::string& listen_ip,
                             const std::string& dsn);
  void StartController(const std::string& name = "node1");
  // Kills controller `index` with SIGKILL and starts it again on the same address, with the
  // same name and certificate (its workers dial that address).
  void RestartController(size_t index = 0);
  // Where the next controllers and workers run, for network-partition tests: a command prefix
  // (NetNamespace::Exec()), the address a controller listens on and is named by in its
  // certificate, and the address it dials the API server at. Default: all on loopback.
  struct NodeNetwork {
    std::vector<std::string> exec_prefix;
    std::string controller_ip = "127.0.0.1";
    std::string api_ip = "127.0.0.1";
  };
  NodeNetwork node_network;
  // Where the API server listens, and more addresses its certificate names (set before
  // StartApi; nodes behind a veth reach it at one of them).
  std::string api_listen_ip = "127.0.0.1";
  std::vector<std::string> api_cert_ips;
  // Extra environment for the API server (set before StartApi) and controllers.
  std::map<std::string, std::string> api_env;
  std::map<std::string, std::string> controller_env;
  std::map<std::string, std::string> worker_env;  // for every worker started after it is set
  // A worker with `gpus` simulated GPUs (spec for --simulated-gpus) on controller `index`. A
  // name started again (after its worker died) keeps its certificate and session directory.
  void StartWorker(const std::string& name, const std::string& gpus, size_t controller = 0,
                   const std::vector<std::string>& extra_args = {});
  // The same, serving the capabilities in `lines` (the --capabilities file format).
  void StartWorkerServing(const std::string& name, const std::string& gpus, const std::string& lines,
                          std::vector<std::string> extra_args = {});
  // Waits until the API server would place a session needing `gpus` GPUs (on an online worker).
  void WaitUntilSchedulable(int gpus = 1);
  // Waits until the controllers have told the API server of `n` online workers in all.
  void WaitUntilWorkersOnline(int n);
  // The common case: the API server, controller "node1" and worker "w1" with `gpus`
  // (--simulated-gpus), ready to place a session needing `schedulable` GPUs.
  void StartSingleNode(const std::string& gpus, int schedulable = 1);

  std::string api_address() const;
  // The first API server, then every replica started so far, at `ip`: what controllers are given.
  std::string ApiAddresses(const std::string& ip = "127.0.0.1") const;
  std::string controller_address(size_t index = 0) const;
  int controller_port(size_t index = 0) const { return controller_ports_.at(index); }

  // Channels as various clients. Safe from any thread: no Catch assertion inside (they are not
  // thread-safe); a failure throws.
  std::shared_ptr<grpc::Channel> ChannelWithCert(const std::string& cert_prefix,
                                                 const std::string& ca = "") const;
  std::shared_ptr<grpc::Channel> ChannelWithoutCert() const;
  // As the admin (client certificate), on the first API server or the replica on `port`.
  std::unique_ptr<v1::SessionService::Stub> AdminSessions(int port = 0) const;
  std::shared_ptr<grpc::Channel> ChannelTo(int port, const std::string& cert_prefix) const;
  // CreateSession as the admin, answered once placed (wait_for_running); the call's status
  // (`session` gets the reply).
  grpc::Status CreateAsAdmin(const v1::SessionSpec& spec, v1::Session* session) const;

  // Resident memory (KiB) of the API server, the first controller and the first worker.
  struct Rss {
    int64_t api, controller, worker;
  };
  Rss ResidentKib();
  // Threads of the same three.
  struct Threads {
    int api, controller, worker;
  };
  Threads ThreadCounts();
  // Checks that none of the three grew by `limit_kib` or more since `before`. Call
  // MeasureMemory before starting them.
  void CheckGrowthBelow(const Rss& before, int64_t limit_kib);
  // For a test that bounds memory: in the sanitized build, ASan's quarantine keeps freed memory
  // resident (up to 256 MiB), so the processes started after this run without it and their
  // resident memory is what they hold. Nothing changes in the plain build.
  void MeasureMemory();

  // A copy of the file at `path` in the fleet's directory, with `mode`, for the uids handlers
  // and sessions run as (a checkout under a 0700 directory is out of their reach).
  std::string ReadableCopy(const std::string& path, mode_t mode = 0644);
  // An empty file in the fleet's directory that handlers and sessions of other uids may write.
  std::string WritableFile(const std::string& name);

  Pki& pki() { return *pki_; }
  TestDatabase& db() { return *db_; }
  TempDir& dir() { return dir_; }
  Process& api() { return *api_; }
  Process& controller(size_t i = 0) { return *controllers_.at(i); }
  Process& worker(size_t i = 0) { return *workers_.at(i); }
  size_t worker_count() const { return workers_.size(); }
  void StopApi() { api_.reset(); }

 private:
  TempDir dir_;
  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Pki> pki_;
  int api_port_ = 0;
  std::vector<int> controller_ports_;
  std::vector<std::string> controller_names_;
  std::vector<NodeNetwork> controller_networks_;
  std::string api_cert_prefix_;
  std::unique_ptr<Process> LaunchController(const std::string& name, const NodeNetwork& network,
                                            int port, const std::string& port_file);
  std::unique_ptr<Process> LaunchApi(const std::string& name, const std::string& dsn,
                                     bool wait_until_serving, int* port,
                                     const std::vector<std::string>& exec_prefix = {}, const std::string& listen_ip = "");
  std::unique_ptr<Process> api_;
  std::vector<std::unique_ptr<Process>> api_replicas_;
  std::vector<int> api_replica_ports_;
  std::vector<std::unique_ptr<Process>> controllers_;
  std::vector<std::unique_ptr<Process>> workers_;
};

// A session spec that runs `sleep` with a unique argument, so the test can find its process.
v1::SessionSpec SleepSpec(const std::string& marker_seconds, int gpus = 1);
// A session spec that runs `/bin/sh -c script`.
v1::SessionSpec ShellSpec(const std::string& script, int gpus = 0);

}  // namespace gantry::testing
