#include "api-server/template_store.h"

#include <pqxx/connection>
#include <pqxx/nontransaction>
#include <pqxx/result>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "api-server/sql_queries.h"
#include "common/json_util.h"
#include "common/pg_pool.h"

namespace gantry::api {

absl::StatusOr<v1::SessionTemplate> TemplateStore::Create(const v1::SessionTemplate& t) {
  v1::SessionTemplate out = t;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    pqxx::result r = tx.exec_params(std::string(sql::kInsertTemplate), t.id(), t.description(),
                                    t.preferred_controller_type(), ToJson(t.spec()));
    out.mutable_create_time()->set_seconds(r[0][0].as<int64_t>());
    return absl::OkStatus();
  });
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(absl::StrCat("session_template.id: template \"", t.id(),
                                                 "\" exists; delete it first or pick another id"));
  }
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<v1::SessionTemplate>> TemplateStore::Select(const std::string& id) {
  std::vector<v1::SessionTemplate> out;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    for (const auto& row : tx.exec_params(std::string(sql::kSelectTemplates), id)) {
      v1::SessionTemplate t;
      t.set_id(row[0].as<std::string>());
      t.set_description(row[1].as<std::string>());
      t.set_preferred_controller_type(row[2].as<std::string>());
      absl::Status parsed = FromJson(row[3].as<std::string>(), t.mutable_spec());
      if (!parsed.ok()) return parsed;
      t.mutable_create_time()->set_seconds(row[4].as<int64_t>());
      out.push_back(std::move(t));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::SessionTemplate> TemplateStore::Get(const std::string& id) {
  auto found = Select(id);
  if (!found.ok()) return found.status();
  if (found->empty()) return absl::NotFoundError(absl::StrCat("template \"", id, "\" not found"));
  return std::move(found->front());
}

absl::StatusOr<std::vector<v1::SessionTemplate>> TemplateStore::List() { return Select(""); }

absl::Status TemplateStore::Delete(const std::string& id) {
  bool found = false;
  absl::Status s = pool_->Run([&](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    found = !tx.exec_params(std::string(sql::kDeleteTemplate), id).empty();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return found ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("template \"", id, "\" not found"));
}

v1::SessionSpec MergeSpec(const v1::SessionSpec& base, const v1::SessionSpec& over) {
  v1::SessionSpec out = base;
  if (over.command_size() > 0) *out.mutable_command() = over.command();
  for (const auto& [k, v] : over.env()) (*out.mutable_env())[k] = v;
  for (const auto& [k, v] : over.labels()) (*out.mutable_labels())[k] = v;
  const auto& r = over.resources();
  if (r.cpu_millis() != 0) out.mutable_resources()->set_cpu_millis(r.cpu_millis());
  if (r.memory_bytes() != 0) out.mutable_resources()->set_memory_bytes(r.memory_bytes());
  if (r.gpus().count() != 0) out.mutable_resources()->mutable_gpus()->set_count(r.gpus().count());
  if (r.gpus().min_memory_bytes() != 0) {
    out.mutable_resources()->mutable_gpus()->set_min_memory_bytes(r.gpus().min_memory_bytes());
  }
  if (!r.gpus().model().empty()) out.mutable_resources()->mutable_gpus()->set_model(r.gpus().model());
  for (const auto& skill : over.skills()) {
    if (std::find(out.skills().begin(), out.skills().end(), skill) == out.skills().end()) {
      out.add_skills(skill);
    }
  }
  if (over.has_idle_timeout()) *out.mutable_idle_timeout() = over.idle_timeout();
  if (!over.working_dir().empty()) out.set_working_dir(over.working_dir());
  return out;
}

}  // namespace gantry::api
