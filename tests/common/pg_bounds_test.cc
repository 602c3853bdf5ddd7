// The bounds every PostgreSQL connection carries, in both DSN forms, and never over what the
// operator set.
#include "common/pg_bounds.h"

#include <catch2/catch.hpp>

#include "absl/strings/match.h"

namespace gantry {

TEST_CASE("a key=value DSN gains client and server bounds", "[pg-bounds]") {
  const std::string dsn = BoundedDsn("host=db user=gantry", {absl::Seconds(5), absl::Seconds(12)});
  INFO(dsn);
  CHECK(absl::StartsWith(dsn, "host=db user=gantry "));
  CHECK(absl::StrContains(dsn, " connect_timeout='5'"));
  CHECK(absl::StrContains(dsn, " keepalives='1'"));
  CHECK(absl::StrContains(dsn, " keepalives_idle='4'"));
  CHECK(absl::StrContains(dsn, " keepalives_interval='2'"));
  CHECK(absl::StrContains(dsn, " keepalives_count='3'"));
  CHECK(absl::StrContains(dsn, " tcp_user_timeout='12000'"));
  CHECK(absl::StrContains(dsn, " options='-c statement_timeout=4000 -c lock_timeout=4000 "
                               "-c idle_in_transaction_session_timeout=10000 -c tcp_keepalives_idle=4 "
                               "-c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 -c tcp_user_timeout=12000'"));
}

TEST_CASE("a URI DSN gains them as query parameters, percent-encoded", "[pg-bounds]") {
  CHECK(absl::StrContains(BoundedDsn("postgresql://u@db/gantry", {}), "postgresql://u@db/gantry?connect_timeout=5&"));
  const std::string dsn = BoundedDsn("postgres://u@db/gantry?sslmode=require", {absl::Milliseconds(1500)});
  INFO(dsn);
  CHECK(absl::StartsWith(dsn, "postgres://u@db/gantry?sslmode=require&connect_timeout=2&keepalives=1&"));
  CHECK(absl::StrContains(dsn, "&options=-c%20statement_timeout%3D1200%20-c%20lock_timeout%3D1200%20"));
}

TEST_CASE("what the operator set is kept as set", "[pg-bounds]") {
  const std::string dsn = BoundedDsn("host=db connect_timeout=30 options='-c search_path=x'", {});
  INFO(dsn);
  CHECK(absl::StrContains(dsn, "connect_timeout=30"));
  CHECK_FALSE(absl::StrContains(dsn, "connect_timeout='"));
  CHECK_FALSE(absl::StrContains(dsn, "statement_timeout"));
  CHECK(absl::StrContains(dsn, "keepalives='1'"));
}

TEST_CASE("a connection attempt can be given less time than the DSN's", "[pg-bounds]") {
  CHECK(WithConnectTimeout("host=db connect_timeout=30", 3) == "host=db connect_timeout=30 connect_timeout=3");
  CHECK(WithConnectTimeout("postgres://db/x", 1) == "postgres://db/x?connect_timeout=2");
  CHECK(WithConnectTimeout("postgres://db/x?a=b", 4) == "postgres://db/x?a=b&connect_timeout=4");
}

}  // namespace gantry
