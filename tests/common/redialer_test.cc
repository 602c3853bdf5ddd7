#include "common/redialer.h"

#include <catch2/catch.hpp>

#include <grpcpp/security/credentials.h>

namespace gantry {
namespace {

// Channels are made, never connected: no peer is needed.
std::shared_ptr<grpc::ChannelCredentials> Tls() { return grpc::SslCredentials(grpc::SslCredentialsOptions()); }

}  // namespace

TEST_CASE("redialer: one channel kept while calls go through, a fresh one to the next address after UNAVAILABLE",
          "[common][redialer]") {
  Redialer redialer("a.example:1, b.example:2,c.example:3", Tls(), {});
  CHECK(redialer.address() == "a.example:1");
  std::shared_ptr<grpc::Channel> first = redialer.Channel();
  REQUIRE(first != nullptr);
  CHECK(redialer.Channel() == first);
  CHECK_FALSE(redialer.Failed(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow")));
  CHECK_FALSE(redialer.Failed(grpc::Status::OK));
  CHECK(redialer.Channel() == first);
  CHECK(redialer.address() == "a.example:1");

  CHECK(redialer.Failed(grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone")));
  std::shared_ptr<grpc::Channel> second = redialer.Channel();
  CHECK(second != first);
  CHECK(redialer.address() == "b.example:2");
  redialer.Redial();
  CHECK(redialer.Channel() != second);
  CHECK(redialer.address() == "c.example:3");
  redialer.Redial();
  redialer.Channel();
  CHECK(redialer.address() == "a.example:1");  // Round and round.

  // One address: a fresh channel to it each time.
  Redialer one("only.example:1", Tls(), {});
  std::shared_ptr<grpc::Channel> before = one.Channel();
  one.Redial();
  CHECK(one.Channel() != before);
  CHECK(one.address() == "only.example:1");
}

TEST_CASE("redialer: credentials asked at each dial, and no channel without them", "[common][redialer]") {
  int asked = 0;
  bool have = false;
  Redialer redialer("a.example:1", Redialer::Credentials([&]() -> std::shared_ptr<grpc::ChannelCredentials> {
                      ++asked;
                      return have ? Tls() : nullptr;
                    }),
                    {});
  CHECK(redialer.Channel() == nullptr);
  CHECK(redialer.Channel() == nullptr);
  have = true;
  CHECK(redialer.Channel() != nullptr);
  CHECK(redialer.Channel() != nullptr);  // Kept: not asked again.
  CHECK(asked == 3);
  redialer.Redial();
  CHECK(redialer.Channel() != nullptr);
  CHECK(asked == 4);
}

TEST_CASE("redialer: waits double while attempts fail, with jitter, up to the most, and start over once one works",
          "[common][redialer]") {
  Redialer redialer("a.example:1", Tls(), {absl::Milliseconds(100), absl::Milliseconds(800)});
  absl::Duration expected = absl::Milliseconds(100);
  for (int i = 0; i < 6; ++i) {
    const absl::Duration wait = redialer.Backoff();
    INFO("attempt " << i << ": " << absl::FormatDuration(wait));
    CHECK(wait >= expected / 2);
    CHECK(wait <= expected);
    expected = std::min(expected * 2, absl::Milliseconds(800));
  }
  redialer.Recovered();
  CHECK(redialer.Backoff() <= absl::Milliseconds(100));
}

}  // namespace gantry
