// Load-generating client threads that a failing test can leave.
#pragma once

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

namespace gantry::testing {

// Threads that are asked to stop and joined when the test's scope ends, however it ends. A
// REQUIRE that fails while bare std::threads run destroys them joinable, and std::terminate
// aborts the whole binary before Catch reports what failed; threads that only stop at their
// own deadlines keep a failed test running until ctest's timeout, which says nothing of why.
// Each thread's loop checks stopping() and ends soon after it turns true.
class ClientThreads {
 public:
  ClientThreads() = default;
  ClientThreads(const ClientThreads&) = delete;
  ClientThreads& operator=(const ClientThreads&) = delete;
  ~ClientThreads() {
    stop_ = true;
    Join();
  }

  template <typename F>
  void Start(F&& body) {
    threads_.emplace_back(std::forward<F>(body));
  }
  bool stopping() const { return stop_.load(); }
  // Waits for every thread to end by itself (they are not asked to stop).
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace gantry::testing
