// Online workers in the order placement prefers them: fewest active sessions first, and among
// equals the one chosen longest ago first (round-robin; never chosen before all). Kept up to
// date as sessions come and go, so a placement walks it from the front and takes the first
// worker that fits: a few workers looked at, not every one, and no sort per decision.
// Not thread-safe: the Fleet's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>

namespace gantry::controller {

template <typename Worker>
class WorkerLoadOrder {
 public:
  // Places `worker` (named `name`, which must outlive its entry) for `load` active sessions;
  // `chosen`: it was just chosen, so it goes behind its equals.
  void Update(Worker* worker, const std::string* name, size_t load, bool chosen = false) {
    uint64_t turn = 0;
    auto it = keys_.find(worker);
    if (it != keys_.end()) {
      turn = it->second.turn;
      order_.erase(it->second);
    }
    if (chosen) turn = ++turns_;
    Key key{load, turn, name, worker};
    order_.insert(key);
    keys_[worker] = key;
  }
  void Remove(Worker* worker) {
    auto it = keys_.find(worker);
    if (it == keys_.end()) return;
    order_.erase(it->second);
    keys_.erase(it);
  }
  // Calls `visit(worker, load)` in order until it returns false.
  template <typename Visit>
  void ForEach(Visit visit) const {
    for (const Key& k : order_) {
      if (!visit(k.worker, k.load)) return;
    }
  }
  size_t size() const { return order_.size(); }

 private:
  struct Key {
    size_t load;
    uint64_t turn;
    const std::string* name;  // The last tie-break: a stable order among never-chosen equals.
    Worker* worker;
    bool operator<(const Key& o) const {
      return std::tie(load, turn, *name) < std::tie(o.load, o.turn, *o.name);
    }
  };
  std::set<Key> order_;
  std::map<Worker*, Key> keys_;
  uint64_t turns_ = 0;
};

}  // namespace gantry::controller
