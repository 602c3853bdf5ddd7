#include "api-server/session_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "common/call_deadline.h"
#include "common/pg_pool.h"
#include "common/session_phase.h"
#include "common/request_ids.h"
#include "common/status.h"

namespace gantry::api {
namespace {

// Session ids are UUIDs, taken in any case and used as PostgreSQL prints them (lower case):
// the controller, the worker, log files and change notifications all know them so.
std::string CanonicalId(const std::string& id) { return absl::AsciiStrToLower(id); }

}  // namespace


absl::StatusOr<Caller> SessionServiceImpl::Admit(grpc::ServerContext* ctx) {
  RETURN_IF_ERROR(db_->CheckReady());
  return auth_->AuthenticateClient(*ctx);
}

grpc::Status SessionServiceImpl::CreateSession(grpc::ServerContext* ctx,
                                               const v1::CreateSessionRequest* request,
                                               v1::Session* response) {
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  // Every wait on the database ends in time for the answer to reach the caller (a connection
  // attempt may overrun its share by half a second: pg_pool.cc).
  const absl::Time deadline = CallDeadline(*ctx);
  DbDeadlineScope scope(deadline - absl::Seconds(1));
  return Reply(sessions_->Create(*caller, *request, deadline), response);
}

grpc::Status SessionServiceImpl::GetSession(grpc::ServerContext* ctx,
                                            const v1::GetSessionRequest* request,
                                            v1::Session* response) {
  NoteSession(CanonicalId(request->id()));
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->Describe(*caller, CanonicalId(request->id())), response);
}

grpc::Status SessionServiceImpl::ListSessions(grpc::ServerContext* ctx,
                                              const v1::ListSessionsRequest* request,
                                              v1::ListSessionsResponse* response) {
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->List(*caller, *request), response);
}

grpc::Status SessionServiceImpl::DeleteSession(grpc::ServerContext* ctx,
                                               const v1::DeleteSessionRequest* request,
                                               v1::Session* response) {
  NoteSession(CanonicalId(request->id()));
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->Delete(*caller, CanonicalId(request->id())), response);
}

grpc::Status SessionServiceImpl::HibernateSession(grpc::ServerContext* ctx,
                                                  const v1::HibernateSessionRequest* request,
                                                  v1::Session* response) {
  NoteSession(CanonicalId(request->id()));
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->SetHibernated(*caller, CanonicalId(request->id()), true), response);
}

grpc::Status SessionServiceImpl::WakeSession(grpc::ServerContext* ctx,
                                             const v1::WakeSessionRequest* request,
                                             v1::Session* response) {
  NoteSession(CanonicalId(request->id()));
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->SetHibernated(*caller, CanonicalId(request->id()), false), response);
}

grpc::ServerWriteReactor<v1::Session>* SessionServiceImpl::WatchSession(grpc::CallbackServerContext* ctx,
                                                                        const v1::WatchSessionRequest* request) {
  NoteSession(CanonicalId(request->id()));
  return WatchSessionReactor::Start(watch_deps_, ctx, CanonicalId(request->id()));
}

grpc::ServerWriteReactor<v1::LogEntry>* SessionServiceImpl::StreamLogs(grpc::CallbackServerContext* ctx,
                                                                       const v1::StreamLogsRequest* request) {
  NoteSession(CanonicalId(request->id()));
  v1::StreamLogsRequest canonical = *request;
  canonical.set_id(CanonicalId(request->id()));
  return LogFollowReactor::Start(log_deps_, ctx, canonical);
}

grpc::Status SessionServiceImpl::GetSessionMetrics(grpc::ServerContext* ctx,
                                                   const v1::GetSessionMetricsRequest* request,
                                                   v1::SessionMetrics* response) {
  NoteSession(CanonicalId(request->id()));
  auto caller = Admit(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(sessions_->Metrics(*caller, CanonicalId(request->id())), response);
}

}  // namespace gantry::api
