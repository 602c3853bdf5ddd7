#include "worker/handler_children.h"

#include <map>

namespace gantry::worker::handler_children {
namespace {

struct State {
  std::mutex spawn_mu;
  std::mutex mu;
  std::map<pid_t, int> handlers;  // pid -> status (-1 while running)
};

State& Get() {
  static State* state = new State();  // Never destroyed: reapers may run during exit.
  return *state;
}

}  // namespace

std::mutex& SpawnMutex() { return Get().spawn_mu; }

void Register(pid_t pid) {
  std::lock_guard<std::mutex> lock(Get().mu);
  Get().handlers[pid] = -1;
}

bool OfferExit(pid_t pid, int status) {
  std::lock_guard<std::mutex> spawn(Get().spawn_mu);  // A fork in progress registers first.
  std::lock_guard<std::mutex> lock(Get().mu);
  auto it = Get().handlers.find(pid);
  if (it == Get().handlers.end()) return false;
  it->second = status;
  return true;
}

bool TakeExit(pid_t pid, int* status) {
  std::lock_guard<std::mutex> lock(Get().mu);
  auto it = Get().handlers.find(pid);
  if (it == Get().handlers.end() || it->second == -1) return false;
  *status = it->second;
  Get().handlers.erase(it);
  return true;
}

void Forget(pid_t pid) {
  std::lock_guard<std::mutex> lock(Get().mu);
  Get().handlers.erase(pid);
}

}  // namespace gantry::worker::handler_children
