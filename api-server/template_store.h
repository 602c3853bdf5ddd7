// Session templates in PostgreSQL. Thread-safe; blocking (see SessionStore).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gantry/v1/admin_service.pb.h"

namespace gantry {
class PgPool;
}

namespace gantry::api {

class TemplateStore {
 public:
  explicit TemplateStore(PgPool* pool) : pool_(pool) {}

  // ALREADY_EXISTS if the id is taken.
  absl::StatusOr<v1::SessionTemplate> Create(const v1::SessionTemplate& t);
  absl::StatusOr<v1::SessionTemplate> Get(const std::string& id);  // NOT_FOUND
  absl::StatusOr<std::vector<v1::SessionTemplate>> List();
  absl::Status Delete(const std::string& id);  // NOT_FOUND

 private:
  absl::StatusOr<std::vector<v1::SessionTemplate>> Select(const std::string& id);
  PgPool* pool_;
};

// The template's spec with the request's spec laid over it: scalar fields and the command are
// replaced when the request sets them; env and labels are merged (the request wins); skills
// are the union.
v1::SessionSpec MergeSpec(const v1::SessionSpec& base, const v1::SessionSpec& over);

}  // namespace gantry::api
