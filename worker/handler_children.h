// The worker's children that are capability handlers, not sessions. The session supervisor's
// reaper waits for any child (waitpid(-1)), so it may reap a handler before the handler's owner
// does; it hands such exits over here, where the owner finds them (see ReapHandler).
#pragma once

#include <sys/types.h>

#include <mutex>

namespace gantry::worker::handler_children {

// Held across fork and Register, so the reaper cannot see a handler's exit before it is known.
std::mutex& SpawnMutex();
void Register(pid_t pid);  // With SpawnMutex held.
// Called by a reaper that reaped `pid`: true (and the status kept) if it is a handler.
bool OfferExit(pid_t pid, int status);
// The status a reaper kept for `pid`, if any; forgets the handler either way once it is found.
bool TakeExit(pid_t pid, int* status);
void Forget(pid_t pid);

}  // namespace gantry::worker::handler_children
