// One model generation through InvokeService, as the HTTP gateway drives it: a gRPC client
// reactor on the API server's in-process channel (so authentication, routing, retries before
// the first chunk, cancellation, flow control and metrics are the gRPC path's own), reading the
// handler's chunks one at a time and turning each into a token (openai_translation.h).
//
// Flow control: one chunk is read at a time, and the next only once the listener has written
// the last one out (Next). A slow HTTP reader therefore leaves chunks waiting upstream, where
// the credit windows of every hop bound them.
//
// Threads: listener calls come on gRPC's threads, one at a time; Next and Cancel may be called
// from any thread, at any time, also after the end.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "api-server/http/openai_request.h"
#include "api-server/http/openai_response.h"
#include "gantry/v1/invoke_service.grpc.pb.h"

namespace gantry::api::http {

struct GenerationEnd {
  absl::Status status;        // OK, or why it failed (the gRPC status, or a broken handler).
  std::string finish_reason;  // "stop" or "length" when OK.
  Usage usage;                // completion_tokens: the tokens this generation delivered.
};

class GenerationListener {
 public:
  virtual ~GenerationListener() = default;
  // The next token (index from 0). No other token comes until Next is called.
  virtual void OnToken(std::string token, int64_t index) = 0;
  // The last call, once. Never while a token awaits its Next, unless the generation was
  // cancelled.
  virtual void OnEnd(GenerationEnd end) = 0;
};

// What every generation's call carries besides the request.
struct CallHeaders {
  std::string authorization;  // The client's "Authorization" header, as sent (may be empty).
  std::string request_id;
  std::string peer;  // The HTTP client's address (Authenticator's kForwardedPeerHeader).
  absl::Time deadline = absl::InfiniteFuture();
};

class Generation : public grpc::ClientReadReactor<v1::InvokeChunk>,
                   public std::enable_shared_from_this<Generation> {
 public:
  // Starts the invoke; `listener` is held until its OnEnd has returned.
  static std::shared_ptr<Generation> Start(v1::InvokeService::Stub* stub, const GenerateRequest& request,
                                           const CallHeaders& headers, std::shared_ptr<GenerationListener> listener);

  // The listener has written the last token out: read the next.
  void Next();
  // The client went away: cancel the invoke (the handler gets CANCEL). OnEnd still comes.
  void Cancel();

  // At shutdown, once the gRPC server has ended every call: waits for the generations' last
  // reactions (they post to the gateway's threads, which must outlive them).
  static bool WaitUntilNone(absl::Time deadline);

 private:
  Generation(const GenerateRequest& request, std::shared_ptr<GenerationListener> listener);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  // The reads are over (their stream ended, or the generation was stopped): lets the call end.
  void StopReadingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_tokens_;
  std::shared_ptr<GenerationListener> listener_;
  std::shared_ptr<Generation> self_;  // Until OnDone: the call's reactions use this.
  grpc::ClientContext context_;
  v1::InvokeRequest request_;
  v1::InvokeChunk chunk_;

  std::mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // Cancelled, or ended early (below).
  // Set once the answer is known before the call's status: the handler finished, ran past
  // max_tokens, or broke the protocol (the call is then cancelled, and its status ignored).
  std::optional<GenerationEnd> early_end_ ABSL_GUARDED_BY(mu_);
  int64_t tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t prompt_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::string finish_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry::api::http
