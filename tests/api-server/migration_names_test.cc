#include <catch2/catch.hpp>

#include "api-server/migration_runner.h"

namespace gantry::api {

TEST_CASE("the embedded migrations are well named and in order", "[migrations]") {
  auto migrations = EmbeddedMigrations();
  REQUIRE_FALSE(migrations.empty());
  CHECK(ValidateMigrationNames(migrations).ok());
  CHECK(migrations[0].name == "0001_initial_schema.sql");
  CHECK(migrations[0].sql.find("CREATE TABLE sessions") != absl::string_view::npos);
}

TEST_CASE("gaps, disorder and bad names are rejected", "[migrations]") {
  CHECK_FALSE(ValidateMigrationNames({{"0002_second.sql", ""}}).ok());
  CHECK_FALSE(ValidateMigrationNames({{"0001_a.sql", ""}, {"0003_c.sql", ""}}).ok());
  CHECK_FALSE(ValidateMigrationNames({{"0001_a.sql", ""}, {"0001_b.sql", ""}}).ok());
  CHECK_FALSE(ValidateMigrationNames({{"1_a.sql", ""}}).ok());
  CHECK_FALSE(ValidateMigrationNames({{"0001_Bad-Name.sql", ""}}).ok());
  CHECK_FALSE(ValidateMigrationNames({{"0001_a.txt", ""}}).ok());
  CHECK(ValidateMigrationNames({{"0001_a.sql", ""}, {"0002_b_2.sql", ""}}).ok());
}

}  // namespace gantry::api
