// SessionService over gRPC: authenticate, translate, call SessionManager, convert the status.
#pragma once

#include "api-server/authenticator.h"
#include "api-server/database_monitor.h"
#include "api-server/session_manager.h"
#include "api-server/session_watch_hub.h"
#include "api-server/stream_quota.h"
#include "api-server/log_follow_reactor.h"
#include "api-server/watch_session_reactor.h"
#include "common/work_pool.h"
#include "gantry/v1/session_service.grpc.pb.h"

namespace gantry::api {

// WatchSession and StreamLogs are on gRPC's callback API (WatchSessionReactor,
// LogFollowReactor: no thread per open stream); the rest are synchronous.
class SessionServiceImpl final
    : public v1::SessionService::WithCallbackMethod_StreamLogs<
          v1::SessionService::WithCallbackMethod_WatchSession<v1::SessionService::Service>> {
 public:
  // `stream_jobs`: the pool on which watches and log streams are admitted and watches read
  // (see WatchSessionDeps); `client`: the controllers, for the logs.
  SessionServiceImpl(const DatabaseMonitor* db, Authenticator* auth, StreamQuota* streams,
                     SessionManager* sessions, SessionWatchHub* watches, ControllerClient* client,
                     WorkPool* stream_jobs)
      : db_(db),
        auth_(auth),
        streams_(streams),
        sessions_(sessions),
        watches_(watches),
        watch_deps_{db, auth, streams, sessions, watches, stream_jobs},
        log_deps_{db, auth, streams, sessions, client, stream_jobs} {}

  grpc::Status CreateSession(grpc::ServerContext* ctx, const v1::CreateSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status GetSession(grpc::ServerContext* ctx, const v1::GetSessionRequest* request,
                          v1::Session* response) override;
  grpc::Status ListSessions(grpc::ServerContext* ctx, const v1::ListSessionsRequest* request,
                            v1::ListSessionsResponse* response) override;
  grpc::Status DeleteSession(grpc::ServerContext* ctx, const v1::DeleteSessionRequest* request,
                             v1::Session* response) override;
  grpc::Status HibernateSession(grpc::ServerContext* ctx, const v1::HibernateSessionRequest* request,
                                v1::Session* response) override;
  grpc::Status WakeSession(grpc::ServerContext* ctx, const v1::WakeSessionRequest* request,
                           v1::Session* response) override;
  grpc::ServerWriteReactor<v1::Session>* WatchSession(grpc::CallbackServerContext* ctx,
                                                      const v1::WatchSessionRequest* request) override;
  grpc::ServerWriteReactor<v1::LogEntry>* StreamLogs(grpc::CallbackServerContext* ctx,
                                                     const v1::StreamLogsRequest* request) override;
  grpc::Status GetSessionMetrics(grpc::ServerContext* ctx,
                                 const v1::GetSessionMetricsRequest* request,
                                 v1::SessionMetrics* response) override;

 private:
  // Ready database and an authenticated client, or the status to answer with.
  absl::StatusOr<Caller> Admit(grpc::ServerContext* ctx);

  const DatabaseMonitor* db_;
  Authenticator* auth_;
  StreamQuota* streams_;
  SessionManager* sessions_;
  SessionWatchHub* watches_;
  const WatchSessionDeps watch_deps_;
  const LogFollowDeps log_deps_;
};

}  // namespace gantry::api
