#include "common/mutex_deadlock_detection.h"

#include <absl/synchronization/mutex.h>

namespace gantry {

void TurnOffMutexDeadlockDetection() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace gantry
