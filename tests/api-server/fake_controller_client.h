// A ControllerClient for tests of the API server's decisions: CreateSession answers from a
// script, one entry per call (the last repeats), and every call is recorded. A scripted answer
// that took the session with an outcome (RUNNING, FAILED) is also reported, before the answer,
// to the sink given to ReportTo, as a real controller reports it on its event route. The other
// calls answer as a controller that holds nothing would. Thread-safe.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "api-server/controller_client.h"

namespace gantry::api::testing {

class FakeControllerClient : public ControllerClient {
 public:
  // The answers the next CreateSession calls get, in order.
  void ScriptCreate(std::vector<absl::StatusOr<v1::ControllerSessionResponse>> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    create_answers_.assign(answers.begin(), answers.end());
  }
  // Where taken sessions' outcomes are reported (the test's stand-in for the event route).
  using ReportSink = std::function<void(const std::string& session_id, const v1::ControllerSessionResponse&)>;
  void ReportTo(ReportSink sink) {
    std::lock_guard<std::mutex> lock(mu_);
    report_ = std::move(sink);
  }
  // A controller that took the session: RUNNING on worker w1 with `gpus`.
  static v1::ControllerSessionResponse Running(const std::vector<std::string>& gpus = {"GPU-0"}) {
    v1::ControllerSessionResponse r;
    r.set_phase(v1::SESSION_PHASE_RUNNING);
    r.set_worker_id("node1/w1");
    r.set_node_id("node1");
    for (const auto& g : gpus) r.add_gpu_uuids(g);
    return r;
  }
  // A controller that took the session and has not heard from its worker yet: nothing to report.
  static v1::ControllerSessionResponse Starting() {
    v1::ControllerSessionResponse r = Running();
    r.set_phase(v1::SESSION_PHASE_STARTING);
    return r;
  }
  // While held, CreateSession calls are recorded and then wait, unanswered, until released: a
  // controller still deciding.
  void HoldCreates() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void ReleaseCreates() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    released_.notify_all();
  }
  // What a SetCordoned call is answered (unreachable unless scripted).
  void ScriptCordon(absl::StatusOr<v1::SetCordonedResponse> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    cordon_answer_ = std::move(answer);
  }
  std::vector<std::string> created_ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return created_ids_;
  }
  std::vector<std::string> deleted_ids() const {
    std::lock_guard<std::mutex> lock(mu_);
    return deleted_ids_;
  }

  absl::StatusOr<v1::ControllerSessionResponse> CreateSession(const std::string&,
                                                              const v1::ControllerCreateSessionRequest& request,
                                                              absl::Duration) override {
    std::unique_lock<std::mutex> lock(mu_);
    created_ids_.push_back(request.session_id());
    released_.wait(lock, [this] { return !hold_; });
    if (create_answers_.empty()) return absl::InternalError("FakeControllerClient: no CreateSession answer scripted");
    auto answer = create_answers_.front();
    if (create_answers_.size() > 1) create_answers_.pop_front();
    ReportSink report = report_;
    lock.unlock();
    if (answer.ok() && report && answer->phase() != v1::SESSION_PHASE_STARTING &&
        answer->phase() != v1::SESSION_PHASE_UNSPECIFIED) {
      report(request.session_id(), *answer);
    }
    return answer;
  }
  absl::StatusOr<v1::ControllerSessionResponse> DeleteSession(const std::string&, const std::string& session_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    deleted_ids_.push_back(session_id);
    v1::ControllerSessionResponse r;
    r.set_phase(v1::SESSION_PHASE_TERMINATED);
    return r;
  }
  absl::StatusOr<v1::ControllerSessionResponse> SetHibernated(const std::string&, const std::string& session_id,
                                                              bool) override {
    return absl::NotFoundError("session " + session_id + " not held");
  }
  absl::StatusOr<v1::SetCordonedResponse> TellCordoned(const std::string&, const std::string&, bool) override {
    std::lock_guard<std::mutex> lock(mu_);
    return cordon_answer_;
  }
  absl::Status HandOverToken(const std::string&, const std::string&, const std::string&) override {
    return absl::UnavailableError("scripted: no controller to hand a token to");
  }
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(const std::string&, absl::Duration) override {
    return v1::ListWorkersResponse();
  }
  // Health checks of `endpoint` fail with UNAVAILABLE from now on (all answer until then).
  void FailHealthChecksOf(const std::string& endpoint) {
    std::lock_guard<std::mutex> lock(mu_);
    unreachable_.push_back(endpoint);
  }
  // The endpoints each HealthCheckAll call was asked for, one entry per call (a round).
  std::vector<std::vector<std::string>> health_rounds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return health_rounds_;
  }
  std::vector<absl::StatusOr<v1::HealthCheckResponse>> HealthCheckAll(const std::vector<std::string>& endpoints,
                                                                      absl::Duration, int) override {
    std::lock_guard<std::mutex> lock(mu_);
    health_rounds_.push_back(endpoints);
    std::vector<absl::StatusOr<v1::HealthCheckResponse>> answers;
    for (const auto& e : endpoints) {
      bool down = std::find(unreachable_.begin(), unreachable_.end(), e) != unreachable_.end();
      answers.push_back(down ? absl::StatusOr<v1::HealthCheckResponse>(absl::UnavailableError("scripted: unreachable"))
                             : v1::HealthCheckResponse());
    }
    return answers;
  }
  absl::StatusOr<v1::SessionMetricsResponse> GetSessionMetrics(const std::string&,
                                                               const std::string& session_id) override {
    return absl::NotFoundError("session " + session_id + " not held");
  }
  // No controller to invoke on: an invoke finds no connection.
  std::shared_ptr<v1::ControllerService::StubInterface> AsyncStub(const std::string&) override { return nullptr; }
  void Unavailable(const std::string&) override {}

 private:
  mutable std::mutex mu_;
  std::condition_variable released_;
  bool hold_ = false;
  std::deque<absl::StatusOr<v1::ControllerSessionResponse>> create_answers_;
  ReportSink report_;
  std::vector<std::string> unreachable_;
  std::vector<std::vector<std::string>> health_rounds_;
  absl::StatusOr<v1::SetCordonedResponse> cordon_answer_ = absl::UnavailableError("scripted: no controller to tell");
  std::vector<std::string> created_ids_;
  std::vector<std::string> deleted_ids_;
};

}  // namespace gantry::api::testing
