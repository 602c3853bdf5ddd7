// FailedAuthLimiter and StreamQuota on their own, with time passed in by hand.
#include <catch2/catch.hpp>

#include "absl/strings/match.h"
#include "api-server/failed_auth_limiter.h"
#include "api-server/stream_quota.h"

namespace gantry::api {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

}  // namespace

TEST_CASE("peer addresses come from gRPC's peer string, without the port", "[abuse]") {
  CHECK(PeerIpAddress("ipv4:10.1.2.3:5123") == "10.1.2.3");
  CHECK(PeerIpAddress("ipv6:[fd00::7]:5123") == "fd00::7");
  CHECK(PeerIpAddress("unix:/tmp/sock") == "");
}

TEST_CASE("failed auth limiter: a burst of failures, then one per interval, per address", "[abuse]") {
  FailedAuthLimiter limiter({3, absl::Seconds(10)});
  const std::string a1 = "ipv4:10.0.0.1:1000", a1_other_port = "ipv4:10.0.0.1:2000", b = "ipv4:10.0.0.2:1000";
  for (int i = 0; i < 3; ++i) {
    REQUIRE(limiter.Admit(a1, kT0).ok());
    limiter.RecordFailure(a1, kT0);
  }
  absl::Status refused = limiter.Admit(a1_other_port, kT0);  // a new connection is the same address
  CHECK(refused.code() == absl::StatusCode::kResourceExhausted);
  CHECK(refused.message() == "too many refused credentials from 10.0.0.1; try again in 10 s");
  CHECK(limiter.Admit(b, kT0).ok());  // another address is untouched
  CHECK(limiter.Admit(a1, kT0 + absl::Seconds(4)).message() ==
        "too many refused credentials from 10.0.0.1; try again in 6 s");
  // One interval gives one attempt back; failing it costs it again.
  CHECK(limiter.Admit(a1, kT0 + absl::Seconds(10)).ok());
  limiter.RecordFailure(a1, kT0 + absl::Seconds(10));
  CHECK_FALSE(limiter.Admit(a1, kT0 + absl::Seconds(10)).ok());
  // Long quiet gives back no more than the burst.
  const absl::Time later = kT0 + absl::Hours(1);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(limiter.Admit(a1, later).ok());
    limiter.RecordFailure(a1, later);
  }
  CHECK_FALSE(limiter.Admit(a1, later).ok());
}

TEST_CASE("failed auth limiter: Guard counts only UNAUTHENTICATED answers", "[abuse]") {
  FailedAuthLimiter limiter({1, absl::Hours(1)});
  const std::string peer = "ipv4:10.0.0.9:1";
  int checked = 0;
  auto unavailable = [&] { ++checked; return absl::UnavailableError("database down"); };
  auto wrong = [&]() -> absl::StatusOr<int> { ++checked; return absl::UnauthenticatedError("wrong key"); };
  auto right = [&]() -> absl::StatusOr<int> { ++checked; return 7; };
  for (int i = 0; i < 5; ++i) CHECK(limiter.Guard(peer, unavailable).code() == absl::StatusCode::kUnavailable);
  CHECK(*limiter.Guard(peer, right) == 7);
  CHECK(limiter.Guard(peer, wrong).status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(checked == 7);
  // Out of attempts: refused without looking at the secret.
  CHECK(limiter.Guard(peer, right).status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(checked == 7);
}

TEST_CASE("failed auth limiter: memory stays bounded under many addresses", "[abuse]") {
  FailedAuthLimiter limiter({2, absl::Seconds(1)});
  // Many addresses failing once each, long apart: the recovered ones are forgotten, so the
  // newest is still limited correctly and nothing grows past the cap.
  for (size_t i = 0; i < FailedAuthLimiter::kMaxPeers + 10; ++i) {
    limiter.RecordFailure("ipv4:10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                              std::to_string(i % 256) + ":1",
                          kT0 + absl::Seconds(static_cast<double>(i)));
  }
  const std::string last = "ipv4:10.1.0.9:1";
  const absl::Time now = kT0 + absl::Seconds(static_cast<double>(FailedAuthLimiter::kMaxPeers + 9));
  CHECK(limiter.remembered() < 100);  // all but the last few had recovered and went
  limiter.RecordFailure(last, now);   // its second failure
  CHECK_FALSE(limiter.Admit(last, now).ok());
}

TEST_CASE("stream quota: a limit per principal, given back when a stream ends", "[abuse]") {
  StreamQuota quota(2, "watches", "--max-watches");
  auto a1 = quota.Acquire("user/alice");
  auto a2 = quota.Acquire("user/alice");
  REQUIRE(a1.ok());
  REQUIRE(a2.ok());
  auto a3 = quota.Acquire("user/alice");
  CHECK(a3.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(a3.status().message() == "user/alice already has 2 watches open; the limit per client is 2 (--max-watches): close one first");
  CHECK(quota.Acquire("user/bob").ok());  // its lease ends at once
  CHECK(quota.open("user/bob") == 0);
  {
    StreamQuota::Lease moved = std::move(*a1);
    CHECK(quota.open("user/alice") == 2);
  }
  CHECK(quota.open("user/alice") == 1);
  CHECK(quota.Acquire("user/alice").ok());
}

}  // namespace gantry::api
