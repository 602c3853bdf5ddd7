// Gantry's PKI: a cluster CA and leaf certificates carrying the SPIFFE identity every Gantry
// server checks (spiffe://gantry/<role>[/<name>]) plus DNS/IP SANs for hostname verification.
// Keys are ECDSA P-256, written 0600; an existing key is never overwritten.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace gantry::pki {

struct CaOptions {
  std::string dir;  // Writes dir/ca.crt and dir/ca.key.
  std::string common_name = "Gantry cluster CA";
  int days = 3650;
};

struct LeafOptions {
  std::string ca_dir;       // Reads ca_dir/ca.crt and ca_dir/ca.key.
  std::string role;         // api-server, controller, worker, admin, user
  std::string name;         // Required except for api-server.
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  int days = 365;
  // Shifts the validity window (for tests of not-yet-valid / expired certificates).
  int not_before_offset_days = 0;
  std::string out_prefix;   // Writes out_prefix.crt and out_prefix.key.
};

absl::Status CreateCa(const CaOptions& options);
absl::Status IssueLeaf(const LeafOptions& options);

}  // namespace gantry::pki
