// The worker protocol's doors, knocked on by a hand-made client with real worker certificates:
// impersonation, double registration, impossible hardware and malformed stream messages are
// refused with clear statuses, and a real worker on the same controller is unaffected.
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/tls.h"
#include "gantry/v1/admin_service.grpc.pb.h"
#include "gantry/v1/invoke_service.grpc.pb.h"
#include "gantry/v1/worker_service.grpc.pb.h"
#include "tests/support/local_fleet.h"

namespace gantry::testing {
namespace {

std::unique_ptr<v1::WorkerService::Stub> WorkerStub(LocalFleet& fleet, const std::string& cert_name) {
  std::string prefix = fleet.pki().dir() + "/worker-" + cert_name;
  auto creds = MakeChannelCredentials({fleet.pki().ca(), prefix + ".crt", prefix + ".key"});
  REQUIRE(creds.ok());
  return v1::WorkerService::NewStub(grpc::CreateChannel(fleet.controller_address(), *creds));
}

grpc::Status Register(v1::WorkerService::Stub& stub, const std::string& name, v1::RegisterWorkerResponse* out,
                      const std::function<void(v1::RegisterWorkerRequest&)>& mutate = nullptr) {
  v1::RegisterWorkerRequest req;
  req.set_name(name);
  auto* gpu = req.mutable_hardware()->add_gpus();
  gpu->set_uuid("GPU-" + name);
  gpu->set_memory_total_bytes(8LL << 30);
  if (mutate) mutate(req);
  grpc::ClientContext ctx;
  return stub.RegisterWorker(&ctx, req, out);
}

}  // namespace

TEST_CASE("the worker protocol refuses impostors and garbage, and other workers carry on", "[e2e][faults]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  fleet.StartWorker("real", "1");  // The bystander.
  fleet.WaitUntilSchedulable();
  fleet.pki().Issue("worker", "mallory");
  auto mallory = WorkerStub(fleet, "mallory");
  v1::RegisterWorkerResponse registered;

  // A certificate for mallory cannot register as "real".
  grpc::Status st = Register(*mallory, "real", &registered);
  CHECK(st.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  // Impossible hardware.
  st = Register(*mallory, "mallory", &registered, [](v1::RegisterWorkerRequest& r) {
    r.mutable_hardware()->mutable_gpus(0)->set_memory_free_bytes(16LL << 30);  // More free than total.
  });
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  // A GPU another worker already announced.
  auto admin = v1::AdminService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  v1::ListWorkersResponse workers;
  grpc::ClientContext list_ctx;
  REQUIRE(admin->ListWorkers(&list_ctx, v1::ListWorkersRequest(), &workers).ok());
  REQUIRE(workers.workers_size() == 1);
  const std::string taken = workers.workers(0).gpus(0).uuid();
  st = Register(*mallory, "mallory", &registered, [&](v1::RegisterWorkerRequest& r) {
    r.mutable_hardware()->mutable_gpus(0)->set_uuid(taken);
  });
  CHECK(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(st.error_message().find(taken) != std::string::npos);

  REQUIRE(Register(*mallory, "mallory", &registered).ok());
  // Connect, then send a message with nothing in it: that stream is closed, INVALID_ARGUMENT.
  {
    grpc::ClientContext ctx;
    auto stream = mallory->Connect(&ctx);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(registered.worker_id());
    REQUIRE(stream->Write(hello));
    // While connected, a second registration under the same name is refused.
    v1::RegisterWorkerResponse again;
    CHECK(WaitFor([&] { return Register(*mallory, "mallory", &again).error_code() ==
                               grpc::StatusCode::ALREADY_EXISTS; }, absl::Seconds(5)));
    REQUIRE(stream->Write(v1::WorkerMessage()));
    stream->WritesDone();
    v1::ControllerMessage ignored;
    while (stream->Read(&ignored)) {
    }
    grpc::Status closed = stream->Finish();
    CHECK(closed.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A stream that reports on a session it does not hold is closed the same way.
  REQUIRE(WaitFor([&] { return Register(*mallory, "mallory", &registered).ok(); }, absl::Seconds(5)));
  {
    grpc::ClientContext ctx;
    auto stream = mallory->Connect(&ctx);
    v1::WorkerMessage hello;
    hello.mutable_hello()->set_worker_id(registered.worker_id());
    REQUIRE(stream->Write(hello));
    v1::WorkerMessage lie;
    lie.mutable_session_event()->set_session_id("someone-elses-session");
    lie.mutable_session_event()->set_kind(v1::WorkerSessionEvent::KIND_STARTED);
    REQUIRE(stream->Write(lie));
    stream->WritesDone();
    v1::ControllerMessage ignored;
    while (stream->Read(&ignored)) {
    }
    CHECK(stream->Finish().error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  }
  // The real worker never noticed: a session still lands on it.
  v1::CreateSessionRequest req;
  req.set_wait_for_running(true);
  *req.mutable_spec() = SleepSpec("3600.1212");
  v1::Session s;
  grpc::ClientContext ctx;
  REQUIRE(fleet.AdminSessions()->CreateSession(&ctx, req, &s).ok());
  CHECK(s.worker_id() == "node1/real");
  CHECK(s.phase() == v1::SESSION_PHASE_RUNNING);
}

// A worker may send its last chunk and the end as one message (data with `last`: the handler's
// CHUNK and END read at once); the caller still gets the data, then an empty last chunk.
TEST_CASE("a worker's last chunk that carries data reaches the caller as the data and then the end",
          "[e2e][invoke]") {
  LocalFleet fleet;
  fleet.StartApi();
  fleet.StartController();
  fleet.pki().Issue("worker", "merger");
  auto merger = WorkerStub(fleet, "merger");
  v1::RegisterWorkerResponse registered;
  REQUIRE(Register(*merger, "merger", &registered, [](v1::RegisterWorkerRequest& r) {
            v1::CapabilityInfo* capability = r.add_capabilities();
            capability->set_name("proto/merged");
            capability->set_version("1.0.0");
          }).ok());
  grpc::ClientContext stream_ctx;
  auto stream = merger->Connect(&stream_ctx);
  std::mutex write_mu;  // The reader answers while the main thread beats.
  auto write = [&](const v1::WorkerMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream->Write(m);
  };
  v1::WorkerMessage hello;
  hello.mutable_hello()->set_worker_id(registered.worker_id());
  REQUIRE(write(hello));
  // Every invoke answered with one message: its whole answer and its end.
  std::atomic<int> answered{0};
  std::thread answers([&] {
    v1::ControllerMessage command;
    while (stream->Read(&command)) {
      if (!command.has_invoke()) continue;
      v1::WorkerMessage out;
      out.mutable_invoke_output()->set_invoke_id(command.invoke().invoke_id());
      out.mutable_invoke_output()->mutable_chunk()->set_data("all at once");
      out.mutable_invoke_output()->mutable_chunk()->set_last(true);
      ++answered;  // Before the answer, which the test may see at once.
      write(out);
    }
  });
  auto invoker = v1::InvokeService::NewStub(fleet.ChannelWithCert(fleet.pki().dir() + "/admin-ops"));
  std::vector<v1::InvokeChunk> chunks;
  grpc::Status status;
  CHECK(WaitFor([&] {
    v1::WorkerMessage beat;  // Alive while the API server learns of the capability.
    beat.mutable_heartbeat();
    write(beat);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::InvokeRequest req;
    req.set_capability("proto/merged");
    auto reader = invoker->Invoke(&ctx, req);
    chunks.clear();
    v1::InvokeChunk chunk;
    while (reader->Read(&chunk)) chunks.push_back(chunk);
    status = reader->Finish();
    return status.error_code() != grpc::StatusCode::NOT_FOUND;  // Not routable yet.
  }, absl::Seconds(20)));
  INFO(status.error_message());
  CHECK(status.ok());
  CHECK(answered.load() == 1);
  REQUIRE(chunks.size() == 2);
  CHECK(chunks[0].data() == "all at once");
  CHECK_FALSE(chunks[0].last());
  CHECK(chunks[0].sequence() == 0);
  CHECK(chunks[0].worker_id() == registered.worker_id());
  CHECK(chunks[1].data().empty());
  CHECK(chunks[1].last());
  CHECK(chunks[1].sequence() == 1);
  stream_ctx.TryCancel();
  answers.join();
}

}  // namespace gantry::testing
