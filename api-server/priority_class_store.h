// AdminService's priority classes, and what class (and value) a new session gets: the one its
// spec names, else the default class, else none (0). Classes change rarely and every create
// asks, so the classes are kept for a second; a name not among them is looked up again before
// the create is refused, so a class made on another replica a moment ago is found.
// Thread-safe; blocking (see SessionStore).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

struct ResolvedPriority {
  std::string class_name;  // "" for none.
  int32_t value = 0;
};

class PriorityClassStore {
 public:
  explicit PriorityClassStore(PgPool* pool, absl::Duration max_age = absl::Seconds(1))
      : pool_(pool), max_age_(max_age) {}

  absl::StatusOr<v1::PriorityClass> Create(const v1::CreatePriorityClassRequest& request);
  absl::StatusOr<v1::ListPriorityClassesResponse> List();
  absl::Status Delete(const std::string& name);  // NOT_FOUND

  // The class of a session whose spec names `named` ("" for none): INVALID_ARGUMENT naming
  // spec.priority_class for a class that does not exist.
  absl::StatusOr<ResolvedPriority> Resolve(const std::string& named);

 private:
  absl::StatusOr<std::vector<v1::PriorityClass>> ReadAll();
  // The kept classes, read again when older than max_age_ or when `refresh`.
  absl::StatusOr<std::vector<v1::PriorityClass>> Classes(bool refresh);

  PgPool* const pool_;
  const absl::Duration max_age_;
  std::mutex mu_;
  std::vector<v1::PriorityClass> kept_ ABSL_GUARDED_BY(mu_);
  absl::Time read_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace gantry::api
