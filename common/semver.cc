#include "common/semver.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace gantry {
namespace {

// The version and how many of its parts were given (for ^ and ~ on partial versions).
absl::StatusOr<std::pair<SemVer, int>> ParseParts(absl::string_view text) {
  SemVer v = {0, 0, 0};
  std::vector<absl::string_view> parts = absl::StrSplit(text, '.');
  if (text.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a version (MAJOR[.MINOR[.PATCH]])"));
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    int n = 0;
    if (parts[i].empty() || parts[i].size() > 9 || !absl::SimpleAtoi(parts[i], &n) || n < 0 ||
        parts[i].find_first_not_of("0123456789") != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a version (MAJOR[.MINOR[.PATCH]])"));
    }
    v[i] = n;
  }
  return std::make_pair(v, static_cast<int>(parts.size()));
}

}  // namespace

absl::StatusOr<SemVer> ParseSemVer(absl::string_view text) {
  auto parsed = ParseParts(text);
  if (!parsed.ok()) return parsed.status();
  return parsed->first;
}

absl::StatusOr<SemVerRange> SemVerRange::Parse(absl::string_view text) {
  SemVerRange range;
  if (text.size() > 128) return absl::InvalidArgumentError("a version range is at most 128 characters");
  for (absl::string_view term : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (term == "*") continue;
    Bound::Op op = Bound::kEq;
    char kind = 0;
    if (absl::ConsumePrefix(&term, ">=")) {
      op = Bound::kGe;
    } else if (absl::ConsumePrefix(&term, "<=")) {
      op = Bound::kLe;
    } else if (absl::ConsumePrefix(&term, ">")) {
      op = Bound::kGt;
    } else if (absl::ConsumePrefix(&term, "<")) {
      op = Bound::kLt;
    } else if (absl::ConsumePrefix(&term, "^")) {
      kind = '^';
    } else if (absl::ConsumePrefix(&term, "~")) {
      kind = '~';
    } else {
      absl::ConsumePrefix(&term, "=");
    }
    auto parsed = ParseParts(term);
    if (!parsed.ok()) return parsed.status();
    auto [v, given] = *parsed;
    if (kind == 0 && op == Bound::kEq && given < 3) kind = '~';  // "1.2" means 1.2.x.
    if (kind == 0) {
      range.bounds_.push_back({op, v});
      continue;
    }
    SemVer upper = v;
    if (kind == '^' && v[0] > 0) {
      upper = {v[0] + 1, 0, 0};
    } else if (kind == '^' && (v[1] > 0 || given == 2)) {
      upper = {0, v[1] + 1, 0};
    } else if (kind == '^' && given == 3) {
      upper = {0, 0, v[2] + 1};
    } else if (kind == '^') {
      upper = {1, 0, 0};  // ^0 is any 0.x.
    } else if (given == 1) {
      upper = {v[0] + 1, 0, 0};  // ~1 is 1.x.
    } else {
      upper = {v[0], v[1] + 1, 0};
    }
    range.bounds_.push_back({Bound::kGe, v});
    range.bounds_.push_back({Bound::kLt, upper});
  }
  return range;
}

bool SemVerRange::Matches(const SemVer& version) const {
  for (const Bound& b : bounds_) {
    bool ok = false;
    switch (b.op) {
      case Bound::kGe: ok = version >= b.v; break;
      case Bound::kGt: ok = version > b.v; break;
      case Bound::kLt: ok = version < b.v; break;
      case Bound::kLe: ok = version <= b.v; break;
      case Bound::kEq: ok = version == b.v; break;
    }
    if (!ok) return false;
  }
  return true;
}

bool SemVerRange::Matches(absl::string_view version) const {
  auto v = ParseSemVer(version);
  return v.ok() && Matches(*v);
}

}  // namespace gantry
