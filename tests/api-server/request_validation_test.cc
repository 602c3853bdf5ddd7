#include "api-server/request_validation.h"
#include "api-server/template_store.h"

#include <catch2/catch.hpp>

namespace gantry::api {
namespace {

v1::CreateSessionRequest Valid() {
  v1::CreateSessionRequest r;
  r.mutable_spec()->add_command("python3");
  r.mutable_spec()->add_command("serve.py");
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  return r;
}

void ExpectInvalid(const v1::CreateSessionRequest& r, const std::string& field) {
  absl::Status s = ValidateCreateSessionRequest(r);
  INFO("status: " << s.ToString());
  CHECK(s.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(s.message()).rfind(field, 0) == 0);
}

}  // namespace

TEST_CASE("a reasonable request is accepted", "[validation]") {
  CHECK(ValidateCreateSessionRequest(Valid()).ok());
}

TEST_CASE("every bad field is rejected with INVALID_ARGUMENT naming it", "[validation]") {
  auto r = Valid();
  r.mutable_spec()->clear_command();
  ExpectInvalid(r, "spec.command");

  r = Valid();
  r.mutable_spec()->set_command(0, "");
  ExpectInvalid(r, "spec.command");

  r = Valid();
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(-1);
  ExpectInvalid(r, "spec.resources.gpus.count");

  r = Valid();
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(65);
  ExpectInvalid(r, "spec.resources.gpus.count");

  // GPU memory or a model with no GPU would be dropped silently: the session would get none.
  r = Valid();
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(0);
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_min_memory_bytes(40LL << 30);
  ExpectInvalid(r, "spec.resources.gpus.min_memory_bytes");
  r = Valid();
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(0);
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_model("H100");
  ExpectInvalid(r, "spec.resources.gpus.model");

  r = Valid();
  (*r.mutable_spec()->mutable_env())["BIG"] = std::string(10 * 1024 * 1024, 'x');
  ExpectInvalid(r, "spec.env[\"BIG\"]");

  r = Valid();
  (*r.mutable_spec()->mutable_env())["1BAD"] = "x";
  ExpectInvalid(r, "spec.env[\"1BAD\"]");

  r = Valid();
  (*r.mutable_spec()->mutable_env())["CUDA_VISIBLE_DEVICES"] = "0";
  ExpectInvalid(r, "spec.env[\"CUDA_VISIBLE_DEVICES\"]");

  r = Valid();
  r.mutable_spec()->set_command(1, std::string("a\0b", 3));
  ExpectInvalid(r, "spec.command[1]");

  r = Valid();
  r.set_request_id(std::string(129, 'r'));
  ExpectInvalid(r, "request_id");

  r = Valid();
  r.set_controller_id("not-a-uuid");
  ExpectInvalid(r, "controller_id");

  r = Valid();
  for (int i = 0; i < 33; ++i) (*r.mutable_spec()->mutable_labels())["k" + std::to_string(i)] = "v";
  ExpectInvalid(r, "spec.labels");

  r = Valid();
  (*r.mutable_spec()->mutable_labels())[std::string(64, 'k')] = "v";
  ExpectInvalid(r, "spec.labels");

  r = Valid();
  r.mutable_spec()->mutable_resources()->set_memory_bytes(-5);
  ExpectInvalid(r, "spec.resources.memory_bytes");

  // Upper bounds, each named with its range.
  r = Valid();
  r.mutable_spec()->mutable_resources()->set_memory_bytes(int64_t{1} << 62);
  ExpectInvalid(r, "spec.resources.memory_bytes: is 4611686018427387904; must be 0..70368744177664");
  r = Valid();
  r.mutable_spec()->mutable_resources()->set_cpu_millis(int64_t{1} << 40);
  ExpectInvalid(r, "spec.resources.cpu_millis: is 1099511627776; must be 0..1024000");
  r = Valid();
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_count(1);
  r.mutable_spec()->mutable_resources()->mutable_gpus()->set_min_memory_bytes(int64_t{1} << 50);
  ExpectInvalid(r, "spec.resources.gpus.min_memory_bytes: is 1125899906842624; must be 0..1099511627776");
  // Each argument and variable within its own bound, but together more than exec takes.
  r = Valid();
  for (int i = 0; i < 40; ++i) (*r.mutable_spec()->mutable_env())["V" + std::to_string(i)] = std::string(30000, 'x');
  ExpectInvalid(r, "spec.command and spec.env: are ");
  r = Valid();
  for (int i = 0; i < 30; ++i) (*r.mutable_spec()->mutable_env())["V" + std::to_string(i)] = std::string(30000, 'x');
  CHECK(ValidateCreateSessionRequest(r).ok());

  r = Valid();
  r.mutable_spec()->set_working_dir("relative/dir");
  ExpectInvalid(r, "spec.working_dir");

  r = Valid();
  r.mutable_spec()->mutable_idle_timeout()->set_seconds(-1);
  ExpectInvalid(r, "spec.idle_timeout");

  r = Valid();
  r.set_template_id("Not A Template!");
  ExpectInvalid(r, "template_id");

  r = Valid();
  r.clear_spec();
  ExpectInvalid(r, "spec");
}

TEST_CASE("a template's spec is overridden field by field by the request's", "[validation]") {
  v1::SessionSpec base;
  base.add_command("serve");
  base.add_command("--model=llama");
  (*base.mutable_env())["A"] = "1";
  (*base.mutable_env())["B"] = "1";
  base.mutable_resources()->mutable_gpus()->set_count(1);
  base.mutable_resources()->mutable_gpus()->set_model("H100");
  base.add_skills("model/llama");
  (*base.mutable_labels())["team"] = "ml";
  v1::SessionSpec over;
  (*over.mutable_env())["B"] = "2";
  over.mutable_resources()->mutable_gpus()->set_count(2);
  over.add_skills("model/llama");
  over.add_skills("tool/x");
  v1::SessionSpec merged = MergeSpec(base, over);
  CHECK(merged.command_size() == 2);  // Not given: the template's.
  CHECK(merged.env().at("A") == "1");
  CHECK(merged.env().at("B") == "2");
  CHECK(merged.resources().gpus().count() == 2);
  CHECK(merged.resources().gpus().model() == "H100");
  CHECK(merged.skills_size() == 2);
  CHECK(merged.labels().at("team") == "ml");
  over.add_command("debug");
  CHECK(MergeSpec(base, over).command_size() == 1);  // Given: the request's, whole.
}

TEST_CASE("SQL-looking strings are ordinary values", "[validation]") {
  auto r = Valid();
  r.set_request_id("'; DROP TABLE sessions; --");
  (*r.mutable_spec()->mutable_labels())["team"] = "x' OR '1'='1";
  CHECK(ValidateCreateSessionRequest(r).ok());
}

TEST_CASE("list requests bound the page size", "[validation]") {
  v1::ListSessionsRequest r;
  CHECK(ValidateListSessionsRequest(r).ok());
  r.set_page_size(1001);
  CHECK(ValidateListSessionsRequest(r).code() == absl::StatusCode::kInvalidArgument);
  r.set_page_size(-1);
  CHECK(ValidateListSessionsRequest(r).code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace gantry::api
