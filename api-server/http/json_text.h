// Text between Abseil and Boost.JSON: Debian's Abseil has its own string_view, Boost.JSON
// its own, and neither converts to the other.
#pragma once

#include <boost/json/string.hpp>
#include <boost/json/string_view.hpp>

#include <string>

#include "absl/strings/string_view.h"

namespace gantry::api::http {

inline std::string Str(const boost::json::string& s) { return std::string(s.data(), s.size()); }
inline boost::json::string_view J(absl::string_view s) { return boost::json::string_view(s.data(), s.size()); }

}  // namespace gantry::api::http
