// The "tiny persistent echo capability" of the invoke scenarios, as a mode of gantry-bench
// itself (`gantry-bench echo-handler`), speaking docs/invoke-protocol.md on stdin/stdout.
// A payload "STREAM <n> <size>" asks for n chunks of size bytes; anything else is echoed
// back as one chunk, except "HOLD", which is never answered (an invoke held in flight).
// Requests are served together (a chunk of each in turn), as the protocol allows.
#pragma once

namespace gantry::bench {

int RunEchoHandler();

}  // namespace gantry::bench
