// How many relayed streams (RelayedStream) are alive in this process, so that shutdown can wait
// for the last one before what they use goes (the controller client and its channels, the
// stores): a relay outlives the client's call until its own call to the controller has ended,
// and that end arrives on a gRPC thread after the server has shut down.
//
// Thread-safe.
#pragma once

#include "absl/time/time.h"

namespace gantry::api {

class LiveRelays {
 public:
  static void Add();
  static void Remove();
  // True once none is alive; false if some still are at `deadline`.
  static bool WaitUntilNone(absl::Time deadline);
};

}  // namespace gantry::api
