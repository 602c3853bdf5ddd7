// Semantic versions and the ranges clients ask for (InvokeRequest.version).
//
// Versions: MAJOR[.MINOR[.PATCH]] (missing parts are 0; pre-release and build suffixes are not
// supported and are refused). Ranges: empty or "*" (any), "1.4.0" (exact), "^1.2" (compatible:
// >=1.2.0 <2.0.0, and for 0.x the minor is fixed), "~1.2" (>=1.2.0 <1.3.0), ">=1.2", ">1.2",
// "<2", "<=1.9"; several separated by spaces must all hold.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace gantry {

using SemVer = std::array<int, 3>;

absl::StatusOr<SemVer> ParseSemVer(absl::string_view text);

class SemVerRange {
 public:
  // INVALID_ARGUMENT saying what is wrong.
  static absl::StatusOr<SemVerRange> Parse(absl::string_view text);
  bool Matches(const SemVer& version) const;
  // False for a version that does not parse.
  bool Matches(absl::string_view version) const;

 private:
  struct Bound {
    enum Op { kGe, kGt, kLt, kLe, kEq } op;
    SemVer v;
  };
  std::vector<Bound> bounds_;
};

}  // namespace gantry
