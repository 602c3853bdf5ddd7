// Graceful shutdown: main() blocks SIGTERM/SIGINT before starting threads, then waits here.
#pragma once

namespace gantry {

// Call first thing in main(), before any thread exists, so every thread inherits the mask.
// Blocks SIGTERM, SIGINT and SIGHUP (a reload request, where a binary supports one).
void BlockTerminationSignals();

// Blocks until SIGTERM, SIGINT or SIGHUP arrives; returns the signal number. Callers that do
// not reload treat SIGHUP like the others.
int WaitForTerminationSignal();

}  // namespace gantry
