#include "api-server/invoke_candidate_cache.h"

#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

namespace gantry::api {
namespace {

InvokeCandidateRow Row(const std::string& name, const std::string& version, int active_invokes) {
  return {{"id-" + name, name + ":7443", name}, version, active_invokes};
}

// A fetch that answers from `rows` by capability and counts how often it was asked.
struct FakeStore {
  std::map<std::string, std::vector<InvokeCandidateRow>> rows;
  int asked = 0;
  InvokeCandidateCache::Fetch fetch() {
    return [this](const std::string& capability) -> absl::StatusOr<std::vector<InvokeCandidateRow>> {
      ++asked;
      if (capability == "broken") return absl::UnavailableError("database down");
      return rows[capability];
    };
  }
};

std::string Names(const absl::StatusOr<std::vector<ControllerTarget>>& targets) {
  REQUIRE(targets.ok());
  std::string out;
  for (const auto& t : *targets) out += t.name;
  return out;
}

const auto kAny = [](const std::string&) { return true; };

}  // namespace

TEST_CASE("invoke candidates are asked for once per max age, and a failure or an empty answer is not kept",
          "[api][invoke]") {
  FakeStore store;
  store.rows["demo/echo"] = {Row("a", "1.0.0", 0)};
  absl::Time now = absl::UnixEpoch();
  InvokeCandidateCache cache(store.fetch(), absl::Seconds(1), [&] { return now; });
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "a");
  now += absl::Milliseconds(999);
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "a");
  CHECK(store.asked == 1);
  now += absl::Milliseconds(1);
  store.rows["demo/echo"].push_back(Row("b", "1.0.0", 0));
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "ab");
  CHECK(store.asked == 2);

  // Nothing serves it: asked every time, so that it is served as soon as something does.
  CHECK(Names(cache.Candidates("demo/none", kAny, 5)).empty());
  store.rows["demo/none"] = {Row("c", "1.0.0", 0)};
  CHECK(Names(cache.Candidates("demo/none", kAny, 5)) == "c");
  CHECK(store.asked == 4);
  CHECK(cache.Candidates("broken", kAny, 5).status().code() == absl::StatusCode::kUnavailable);
  CHECK(cache.Candidates("broken", kAny, 5).status().code() == absl::StatusCode::kUnavailable);
  CHECK(store.asked == 6);
}

TEST_CASE("invoke candidates: versions matched, each controller once, least busy first, at most the limit",
          "[api][invoke]") {
  FakeStore store;
  // As PostgreSQL orders them: least busy first, a row per version.
  store.rows["demo/echo"] = {Row("b", "2.0.0", 1), Row("b", "1.9.0", 1), Row("a", "1.4.0", 5)};
  InvokeCandidateCache cache(store.fetch(), absl::Seconds(1));
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "ba");
  CHECK(Names(cache.Candidates("demo/echo", [](const std::string& v) { return v.rfind("1.", 0) == 0; }, 5)) == "ba");
  CHECK(Names(cache.Candidates("demo/echo", [](const std::string& v) { return v == "1.4.0"; }, 5)) == "a");
  CHECK(Names(cache.Candidates("demo/echo", kAny, 1)) == "b");
  CHECK(Names(cache.Candidates("demo/echo", [](const std::string&) { return false; }, 5)).empty());
}

TEST_CASE("invoke candidates: this replica's picks count against a controller until the next ask, and equals take "
          "turns",
          "[api][invoke]") {
  FakeStore store;
  store.rows["demo/echo"] = {Row("a", "1.0.0", 0), Row("b", "1.0.0", 2), Row("c", "1.0.0", 2)};
  absl::Time now = absl::UnixEpoch();
  InvokeCandidateCache cache(store.fetch(), absl::Seconds(1), [&] { return now; });
  std::string firsts;
  for (int i = 0; i < 7; ++i) {
    auto targets = cache.Candidates("demo/echo", kAny, 5);
    REQUIRE(targets.ok());
    firsts += targets->front().name;
    cache.Picked("demo/echo", targets->front().id);
  }
  // a is idle: it takes two before it is as busy as b and c; then each in turn, the one picked
  // longest ago first.
  CHECK(firsts == "aabcabc");
  // A new answer says how busy each is now; picks before it no longer count.
  now += absl::Seconds(1);
  store.rows["demo/echo"] = {Row("c", "1.0.0", 0), Row("b", "1.0.0", 0), Row("a", "1.0.0", 0)};
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "abc");  // Equals: picked longest ago first.
}

TEST_CASE("invoke candidates: the capabilities kept are bounded", "[api][invoke]") {
  FakeStore store;
  InvokeCandidateCache cache(store.fetch(), absl::Hours(1));
  for (size_t i = 0; i <= InvokeCandidateCache::kMaxCapabilities; ++i) {
    store.rows["cap/" + std::to_string(i)] = {Row("a", "1.0.0", 0)};
    REQUIRE(Names(cache.Candidates("cap/" + std::to_string(i), kAny, 1)) == "a");
  }
  const int asked = store.asked;
  // The first was dropped to keep the bound (the cache started afresh): asked again.
  CHECK(Names(cache.Candidates("cap/0", kAny, 1)) == "a");
  CHECK(store.asked == asked + 1);
}

}  // namespace gantry::api

namespace gantry::api {

TEST_CASE("invoke candidates at hand are the ones asked for within max age, and asking for them never fetches",
          "[api][invoke]") {
  FakeStore store;
  store.rows["demo/echo"] = {Row("a", "1.0.0", 1), Row("b", "1.0.0", 0)};
  absl::Time now = absl::UnixEpoch();
  InvokeCandidateCache cache(store.fetch(), absl::Seconds(1), [&] { return now; });
  CHECK_FALSE(cache.CandidatesAtHand("demo/echo", kAny, 5).has_value());
  CHECK(store.asked == 0);
  CHECK(Names(cache.Candidates("demo/echo", kAny, 5)) == "ba");
  auto at_hand = cache.CandidatesAtHand("demo/echo", kAny, 5);
  REQUIRE(at_hand.has_value());
  CHECK(Names(*at_hand) == "ba");  // The same order as Candidates.
  now += absl::Seconds(1);
  CHECK_FALSE(cache.CandidatesAtHand("demo/echo", kAny, 5).has_value());
  CHECK(store.asked == 1);
}

}  // namespace gantry::api
