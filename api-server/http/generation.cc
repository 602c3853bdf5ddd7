#include "api-server/http/generation.h"

#include <condition_variable>

#include "api-server/authenticator.h"
#include "common/metrics.h"
#include "common/status.h"

namespace gantry::api::http {
namespace {
constexpr char kOpenGauge[] = "gantry_http_generations_open";
constexpr char kOpenHelp[] = "HTTP gateway: generations (SSE, JSON or WebSocket answers) open now";
std::mutex live_mu;
std::condition_variable live_cv;
int64_t live ABSL_GUARDED_BY(live_mu) = 0;  // Generations started and not yet done.
}  // namespace

std::shared_ptr<Generation> Generation::Start(v1::InvokeService::Stub* stub, const GenerateRequest& request,
                                              const CallHeaders& headers,
                                              std::shared_ptr<GenerationListener> listener) {
  std::shared_ptr<Generation> g(new Generation(request, std::move(listener)));
  g->self_ = g;
  if (!headers.authorization.empty()) g->context_.AddMetadata("authorization", headers.authorization);
  g->context_.AddMetadata("x-request-id", headers.request_id);
  g->context_.AddMetadata(kForwardedPeerHeader, headers.peer);
  if (headers.deadline != absl::InfiniteFuture()) g->context_.set_deadline(absl::ToChronoTime(headers.deadline));
  stub->async()->Invoke(&g->context_, &g->request_, g.get());
  // Held until no read will be started again: reads start from Next, outside the call's
  // reactions, and gRPC ends (and frees) a call whose status is in and that has no operation
  // outstanding (the lifetime race RELIABILITY.md tells of, in the API server's relay).
  g->AddHold();
  {
    std::lock_guard<std::mutex> lock(g->mu_);
    g->reading_ = true;
  }
  g->StartRead(&g->chunk_);
  g->StartCall();
  return g;
}

Generation::Generation(const GenerateRequest& request, std::shared_ptr<GenerationListener> listener)
    : max_tokens_(request.max_tokens), listener_(std::move(listener)), request_(ToInvokeRequest(request)) {
  Metrics::Global().GaugeAdd(kOpenGauge, kOpenHelp, {}, 1);
  std::lock_guard<std::mutex> lock(live_mu);
  ++live;
}

bool Generation::WaitUntilNone(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(live_mu);
  return live_cv.wait_until(lock, absl::ToChronoTime(deadline), [] { return live == 0; });
}

void Generation::Next() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (reading_ || hold_released_) return;
    if (stopped_) {
      StopReadingLocked();
      return;
    }
    reading_ = true;
  }
  StartRead(&chunk_);
}

void Generation::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    if (!reading_) StopReadingLocked();
  }
  context_.TryCancel();
}

void Generation::OnReadDone(bool ok) {
  // The worker marks the end with a chunk of no data (`last`): nothing of the handler's.
  const bool empty = ok && chunk_.data().empty();
  absl::StatusOr<HandlerEvent> event = ok && !empty ? ParseHandlerChunk(chunk_.data())
                                                    : absl::StatusOr<HandlerEvent>(HandlerEvent{});
  std::optional<std::string> token;
  int64_t index = 0;
  bool cancel = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    if (!ok || stopped_) {
      StopReadingLocked();
      return;
    }
    if (empty) {
      // Read on.
    } else if (!event.ok()) {
      early_end_ = GenerationEnd{event.status(), "", {}};
    } else {
      if (event->prompt_tokens) prompt_tokens_ = *event->prompt_tokens;
      if (event->finish_reason) finish_reason_ = *event->finish_reason;
      if (event->token && max_tokens_ > 0 && tokens_ >= max_tokens_) {
        early_end_ = GenerationEnd{absl::OkStatus(), "length", {}};  // The handler ran past max_tokens.
      } else if (event->token) {
        token = std::move(event->token);
        index = tokens_++;
      }
    }
    if (early_end_) {
      stopped_ = cancel = true;
      StopReadingLocked();
    } else if (!token) {
      reading_ = true;  // Nothing to write out: read on.
    }
  }
  if (cancel) {
    context_.TryCancel();
  } else if (token) {
    listener_->OnToken(*std::move(token), index);
  } else {
    StartRead(&chunk_);
  }
}

void Generation::OnDone(const grpc::Status& status) {
  GenerationEnd end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (early_end_) {
      end = *early_end_;
    } else if (status.ok()) {
      end.finish_reason = finish_reason_.empty() ? "stop" : finish_reason_;
    } else {
      end.status = FromGrpcStatus(status);
    }
    end.usage = {prompt_tokens_, tokens_};
  }
  std::shared_ptr<Generation> keep = std::move(self_);  // May be the last reference.
  listener_->OnEnd(std::move(end));
  listener_.reset();
  Metrics::Global().GaugeAdd(kOpenGauge, kOpenHelp, {}, -1);
  std::lock_guard<std::mutex> lock(live_mu);
  if (--live == 0) live_cv.notify_all();
}

// Outside a reaction, RemoveHold runs OnDone on another thread, never inline under mu_.
void Generation::StopReadingLocked() {
  if (hold_released_) return;
  hold_released_ = true;
  RemoveHold();
}

}  // namespace gantry::api::http
