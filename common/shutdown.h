// Graceful shutdown: main() blocks SIGTERM/SIGINT before starting threads, then waits here.
#pragma once

namespace gantry {

// Call first thing in main(), before any thread exists, so every thread inherits the mask.
void BlockTerminationSignals();

// Blocks until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace gantry
