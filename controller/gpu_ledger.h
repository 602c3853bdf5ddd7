// Which session holds each GPU of the node: the one record that keeps a GPU from being handed
// to two sessions. Not thread-safe: the Fleet keeps it under its lock.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gantry::controller {

class GpuLedger {
 public:
  bool IsFree(const std::string& uuid) const { return holder_.count(uuid) == 0; }
  // The session holding `uuid`, if any.
  std::optional<std::string> Holder(const std::string& uuid) const;
  // Gives `uuids` to `session_id`. False, and nothing changed, if any of them is held by
  // another session (re-giving a session its own GPUs is allowed: a re-adoption).
  bool Assign(const std::string& session_id, const std::vector<std::string>& uuids);
  // Takes back those of `uuids` that `session_id` holds; GPUs held by others stay theirs.
  void Release(const std::string& session_id, const std::vector<std::string>& uuids);
  size_t held() const { return holder_.size(); }

 private:
  std::map<std::string, std::string> holder_;  // GPU uuid -> session id
};

}  // namespace gantry::controller
