// Abseil's mutex deadlock detector, which Debian's build of Abseil leaves on.
#pragma once

namespace gantry {

// Debian builds Abseil without NDEBUG, so every absl::Mutex that gRPC locks also updates
// Abseil's global lock graph (GraphCycles): a fifth of gantry-api's CPU with 2,000 controllers
// heartbeating. Gantry's own locks are std::mutex, which the detector never sees; the order of
// gRPC's locks is tested by gRPC. Call first thing in main(), before any lock is taken. The
// test binaries leave it on.
void TurnOffMutexDeadlockDetection();

}  // namespace gantry
