// Ids a log line carries while a request is served: its request id and, once known, the
// session, controller and worker it concerns. Every Gantry server is synchronous, so a call
// runs on one thread: an interceptor (RequestIdInterceptorFactory, installed by
// StartGrpcServer) opens the ids for that thread when the call arrives and closes them when its
// status is sent; handlers add ids as they learn them. The request id is the caller's
// `x-request-id` metadata when it sends a sane one, else a fresh one, and is returned to the
// caller in the same header and passed on to the next hop (AddRequestId).
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/server_interceptor.h>

#include <optional>
#include <string>

namespace gantry {

struct RequestIds {
  std::string request;
  std::string session;
  std::string controller;
  std::string worker;
};

// Whether a caller's request id is used as it is (1..64 of [A-Za-z0-9._-]); else it gets a
// fresh one. For doors other than gRPC (the HTTP gateway) that keep the same rule.
bool IsSaneRequestId(const std::string& id);
std::string NewRequestId();

// The current thread's ids; null outside a call.
const RequestIds* CurrentRequestIds();
// No-ops outside a call.
void NoteSession(const std::string& id);
void NoteController(const std::string& id);
void NoteWorker(const std::string& id);
// Sends the current request id on an outgoing call.
void AddRequestId(grpc::ClientContext* context);

// Carries a call's ids onto another thread that goes on with its work (e.g. starting an
// acknowledged session), so that thread's log lines and outgoing calls name the same request.
// Restores what the thread had before on destruction.
class RequestIdScope {
 public:
  explicit RequestIdScope(const RequestIds& ids);
  ~RequestIdScope();
  RequestIdScope(const RequestIdScope&) = delete;
  RequestIdScope& operator=(const RequestIdScope&) = delete;

 private:
  std::optional<RequestIds> previous_;
};

// A call's ids to carry to a job that runs after its handler returned (a reactor's work on a
// pool): a copy of the current thread's, if it has any.
std::optional<RequestIds> CopyCurrentRequestIds();

// As RequestIdScope, for ids that may be absent (nothing changes then).
class MaybeRequestIdScope {
 public:
  explicit MaybeRequestIdScope(const std::optional<RequestIds>& ids) {
    if (ids.has_value()) scope_.emplace(*ids);
  }

 private:
  std::optional<RequestIdScope> scope_;
};

class RequestIdInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace gantry
