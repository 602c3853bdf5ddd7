#include "common/pg_bounds.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gantry {
namespace {

bool IsUri(const std::string& dsn) {
  return absl::StartsWith(dsn, "postgres://") || absl::StartsWith(dsn, "postgresql://");
}

// Whether `dsn` sets `key` already: "key=" at the start, after a space, or after ? or & in a URI.
bool Sets(const std::string& dsn, const std::string& key) {
  const std::string needle = key + "=";
  for (size_t at = dsn.find(needle); at != std::string::npos; at = dsn.find(needle, at + 1)) {
    if (at == 0 || dsn[at - 1] == ' ' || dsn[at - 1] == '?' || dsn[at - 1] == '&') return true;
  }
  return false;
}

// For a URI's query: what libpq would read back as `value`.
std::string PercentEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::string BoundedDsn(const std::string& dsn, const PgBounds& bounds) {
  const int64_t call_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(bounds.call_timeout));
  // The server cancels a statement or lock wait a little before the call's bound, keeping the
  // connection; PgPool's watchdog, at the bound, is for a server that cancels nothing.
  const int64_t statement_ms = std::max<int64_t>(1, call_ms * 4 / 5);
  const int64_t peer_ms = std::max<int64_t>(1000, absl::ToInt64Milliseconds(bounds.peer_timeout));
  // Keepalive probes: the first after a third of the peer timeout, then two more, a sixth apart.
  const int64_t idle_s = std::max<int64_t>(1, peer_ms / 3000), interval_s = std::max<int64_t>(1, peer_ms / 6000);
  const std::vector<std::pair<std::string, std::string>> client = {
      {"connect_timeout", absl::StrCat(std::max<int64_t>(2, (call_ms + 999) / 1000))},
      {"keepalives", "1"},
      {"keepalives_idle", absl::StrCat(idle_s)},
      {"keepalives_interval", absl::StrCat(interval_s)},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", absl::StrCat(peer_ms)},
  };
  // The server's side: its own statement and lock bounds, and its keepalives towards us.
  const std::vector<std::string> server = {
      absl::StrCat("-c statement_timeout=", statement_ms),
      absl::StrCat("-c lock_timeout=", statement_ms),
      absl::StrCat("-c idle_in_transaction_session_timeout=", 2 * call_ms),
      absl::StrCat("-c tcp_keepalives_idle=", idle_s),
      absl::StrCat("-c tcp_keepalives_interval=", interval_s),
      "-c tcp_keepalives_count=3",
      absl::StrCat("-c tcp_user_timeout=", peer_ms),
  };
  std::vector<std::pair<std::string, std::string>> added;
  for (const auto& [key, value] : client) {
    if (!Sets(dsn, key)) added.emplace_back(key, value);
  }
  if (!Sets(dsn, "options")) added.emplace_back("options", absl::StrJoin(server, " "));
  if (added.empty()) return dsn;
  std::string out = dsn;
  if (IsUri(dsn)) {
    char sep = dsn.find('?') == std::string::npos ? '?' : '&';
    for (const auto& [key, value] : added) {
      absl::StrAppend(&out, std::string(1, sep), key, "=", PercentEncode(value));
      sep = '&';
    }
  } else {
    for (const auto& [key, value] : added) {
      // Values here hold no quote or backslash; spaces need the quotes.
      absl::StrAppend(&out, out.empty() ? "" : " ", key, "='", value, "'");
    }
  }
  return out;
}

std::string WithConnectTimeout(const std::string& dsn, int seconds) {
  const std::string value = absl::StrCat(std::max(2, seconds));
  if (IsUri(dsn)) return absl::StrCat(dsn, dsn.find('?') == std::string::npos ? "?" : "&", "connect_timeout=", value);
  return absl::StrCat(dsn, dsn.empty() ? "" : " ", "connect_timeout=", value);
}

}  // namespace gantry
