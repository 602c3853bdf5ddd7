#include "api-server/priority_class_store.h"

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/identity.h"
#include "common/pg_pool.h"
#include "common/pg_prepared.h"
#include "common/proto_time.h"
#include "common/status.h"

namespace gantry::api {
namespace {

constexpr int32_t kMaxValue = 1000000000;
constexpr absl::Duration kMaxMinRuntime = absl::Hours(24 * 30);

v1::PriorityClass RowToClass(const pqxx::row& row) {
  v1::PriorityClass c;
  c.set_name(row[0].as<std::string>());
  c.set_value(row[1].as<int32_t>());
  c.set_preemptible(row[2].as<bool>());
  c.mutable_min_runtime()->set_seconds(row[3].as<int64_t>());
  c.set_is_default(row[4].as<bool>());
  EpochSecondsToProto(row[5].as<double>(), c.mutable_create_time());
  return c;
}

absl::Status Validate(const v1::CreatePriorityClassRequest& request) {
  if (!IsValidName(request.name())) {
    return absl::InvalidArgumentError("name: 1..63 of [a-z0-9._-] starting with a letter or digit (e.g. \"batch\")");
  }
  if (request.value() < -kMaxValue || request.value() > kMaxValue) {
    return absl::InvalidArgumentError("value: must be -1000000000..1000000000");
  }
  if (request.min_runtime().seconds() < 0 || request.min_runtime().nanos() < 0 ||
      absl::Seconds(request.min_runtime().seconds()) > kMaxMinRuntime) {
    return absl::InvalidArgumentError("min_runtime: must be 0..720h");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PriorityClass> PriorityClassStore::Create(const v1::CreatePriorityClassRequest& request) {
  RETURN_IF_ERROR(Validate(request));
  absl::StatusOr<v1::PriorityClass> out = absl::InternalError("not run");
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    if (request.is_default()) {
      pqxx::result current = ExecPrepared(tx, sql::kSelectDefaultPriorityClass);
      if (!current.empty()) {
        out = absl::FailedPreconditionError(absl::StrCat(
            "is_default: class \"", current[0][0].as<std::string>(),
            "\" is the default; delete it first, or create this one without is_default"));
        return absl::OkStatus();
      }
    }
    try {
      pqxx::result r = ExecPrepared(tx, sql::kInsertPriorityClass, request.name(), request.value(),
                                    request.preemptible(), request.min_runtime().seconds(), request.is_default());
      out = r.empty() ? absl::StatusOr<v1::PriorityClass>(absl::AlreadyExistsError(
                            absl::StrCat("name: priority class \"", request.name(), "\" exists")))
                      : RowToClass(r[0]);
    } catch (const pqxx::unique_violation&) {  // Another default made meanwhile.
      out = absl::FailedPreconditionError("is_default: another class became the default meanwhile");
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (out.ok()) Classes(/*refresh=*/true).IgnoreError();
  return out;
}

absl::StatusOr<v1::ListPriorityClassesResponse> PriorityClassStore::List() {
  ASSIGN_OR_RETURN(std::vector<v1::PriorityClass> classes, ReadAll());
  v1::ListPriorityClassesResponse out;
  for (auto& c : classes) *out.add_priority_classes() = std::move(c);
  return out;
}

absl::Status PriorityClassStore::Delete(const std::string& name) {
  if (!IsValidName(name)) return absl::InvalidArgumentError("name: not a priority class name");
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !ExecPrepared(tx, sql::kDeletePriorityClass, name).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!found) return absl::NotFoundError(absl::StrCat("name: no priority class \"", name, "\""));
  Classes(/*refresh=*/true).IgnoreError();
  return absl::OkStatus();
}

absl::StatusOr<ResolvedPriority> PriorityClassStore::Resolve(const std::string& named) {
  for (const bool refresh : {false, true}) {
    ASSIGN_OR_RETURN(std::vector<v1::PriorityClass> classes, Classes(refresh));
    for (const v1::PriorityClass& c : classes) {
      if (named.empty() ? c.is_default() : c.name() == named) return ResolvedPriority{c.name(), c.value()};
    }
    if (named.empty()) return ResolvedPriority{};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("spec.priority_class: no priority class \"", named.substr(0, 63), "\" (see ListPriorityClasses)"));
}

absl::StatusOr<std::vector<v1::PriorityClass>> PriorityClassStore::ReadAll() {
  std::vector<v1::PriorityClass> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : ExecPrepared(tx, sql::kSelectPriorityClasses)) out.push_back(RowToClass(row));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<v1::PriorityClass>> PriorityClassStore::Classes(bool refresh) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!refresh && absl::Now() - read_at_ < max_age_) return kept_;
  }
  const absl::Time asked = absl::Now();
  ASSIGN_OR_RETURN(std::vector<v1::PriorityClass> classes, ReadAll());
  std::lock_guard<std::mutex> lock(mu_);
  kept_ = classes;
  read_at_ = asked;
  return classes;
}

}  // namespace gantry::api
