// The "tiny persistent echo capability" of the invoke scenarios, as a mode of gantry-bench
// itself (`gantry-bench echo-handler`), speaking docs/invoke-protocol.md on stdin/stdout.
// A payload "STREAM <n> <size>" asks for n chunks of size bytes; anything else is echoed
// back as one chunk, except "HOLD", which is never answered (an invoke held in flight).
// Requests are served one after another.
#pragma once

namespace gantry::bench {

int RunEchoHandler();

}  // namespace gantry::bench
