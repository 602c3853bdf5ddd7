#include "api-server/live_relays.h"

#include <condition_variable>
#include <mutex>

namespace gantry::api {
namespace {

std::mutex mu;
std::condition_variable none;
int alive = 0;

}  // namespace

void LiveRelays::Add() {
  std::lock_guard<std::mutex> lock(mu);
  ++alive;
}

void LiveRelays::Remove() {
  std::lock_guard<std::mutex> lock(mu);
  if (--alive == 0) none.notify_all();
}

bool LiveRelays::WaitUntilNone(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu);
  return none.wait_until(lock, absl::ToChronoTime(deadline), [] { return alive == 0; });
}

}  // namespace gantry::api
