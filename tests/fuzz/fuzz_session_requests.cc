// Client requests as they arrive off the wire (protobuf bytes), through the API server's edge
// validators. Every refusal must be INVALID_ARGUMENT or RESOURCE_EXHAUSTED and name a field;
// whatever is accepted must be within the documented bounds.
#include <cstddef>
#include <cstdint>

#include <google/protobuf/stubs/logging.h>

#include "absl/strings/match.h"
#include "api-server/request_validation.h"
#include "common/invoke_request.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckRefusal(const absl::Status& s) {
  if (s.ok()) return;
  FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument || s.code() == absl::StatusCode::kResourceExhausted);
  FUZZ_CHECK(!s.message().empty());
  FUZZ_CHECK(s.message().find(':') != absl::string_view::npos);  // "field: why"
}

}  // namespace

// Protobuf logs every string that is not UTF-8: noise here, and slow.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 3;
  ++data;
  --size;
  using namespace gantry;
  if (which == 0) {
    v1::CreateSessionRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    absl::Status s = api::ValidateCreateSessionRequest(request);
    CheckRefusal(s);
    if (s.ok()) {
      const api::SpecLimits limits;
      FUZZ_CHECK(request.spec().command_size() <= limits.max_args);
      FUZZ_CHECK(request.spec().env_size() <= limits.max_env);
      FUZZ_CHECK(request.spec().resources().gpus().count() <= limits.max_gpus);
      FUZZ_CHECK(request.spec().resources().gpus().count() >= 0);
    }
  } else if (which == 1) {
    v1::ListSessionsRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    absl::Status s = api::ValidateListSessionsRequest(request);
    CheckRefusal(s);
    if (s.ok()) FUZZ_CHECK(request.page_size() >= 0 && request.page_size() <= 1000);
  } else {
    v1::InvokeRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
    auto range = ValidateInvokeRequest(request, 1 << 20);
    CheckRefusal(range.status());
    if (range.ok()) {
      FUZZ_CHECK(IsValidCapabilityName(request.capability()));
      FUZZ_CHECK(request.payload().size() <= (1u << 20));
      (void)range->Matches(absl::string_view("1.2.3"));
    }
  }
  return 0;
}
