// Exponential backoff with full jitter, for every reconnect and retry loop.
#pragma once

#include <random>

#include "absl/time/time.h"

namespace gantry {

class Backoff {
 public:
  Backoff(absl::Duration initial, absl::Duration max) : initial_(initial), max_(max) {}

  // The next delay: uniform in [current/2, current], then current doubles up to max.
  absl::Duration Next() {
    absl::Duration cur = current_ == absl::ZeroDuration() ? initial_ : current_;
    current_ = std::min(cur * 2, max_);
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return cur * jitter(rng_);
  }
  void Reset() { current_ = absl::ZeroDuration(); }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration current_ = absl::ZeroDuration();
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace gantry
