#include "controller/gpu_ledger.h"

namespace gantry::controller {

std::optional<std::string> GpuLedger::Holder(const std::string& uuid) const {
  auto it = holder_.find(uuid);
  if (it == holder_.end()) return std::nullopt;
  return it->second;
}

bool GpuLedger::Assign(const std::string& session_id, const std::vector<std::string>& uuids) {
  for (const auto& uuid : uuids) {
    auto it = holder_.find(uuid);
    if (it != holder_.end() && it->second != session_id) return false;
  }
  for (const auto& uuid : uuids) holder_[uuid] = session_id;
  return true;
}

void GpuLedger::Release(const std::string& session_id, const std::vector<std::string>& uuids) {
  for (const auto& uuid : uuids) {
    auto it = holder_.find(uuid);
    if (it != holder_.end() && it->second == session_id) holder_.erase(it);
  }
}

}  // namespace gantry::controller
