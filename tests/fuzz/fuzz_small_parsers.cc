// The small parsers of untrusted text: SPIFFE IDs from peer certificates, roles, session
// phases, versions and version ranges from clients, simulated GPU specs, JSON string arrays
// read back from the database, and CSRs from nodes asking for certificates. The first byte
// picks one.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/identity.h"
#include "common/json_util.h"
#include "common/semver.h"
#include "common/session_phase.h"
#include "common/x509.h"
#include "tests/fuzz/fuzz_check.h"
#include "worker/gpu_inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  using namespace gantry;
  switch (data[0] % 7) {
    case 0: {
      auto id = ParseSpiffeId(text);
      if (id.ok()) FUZZ_CHECK(ParseSpiffeId(id->SpiffeId()).ok() && id->SpiffeId() == ParseSpiffeId(id->SpiffeId())->SpiffeId());
      break;
    }
    case 1:
      (void)ParseRole(text);
      (void)ParsePhase(text);
      break;
    case 2: {
      auto v = ParseSemVer(text);
      if (v.ok()) FUZZ_CHECK((*v)[0] >= 0 && (*v)[1] >= 0 && (*v)[2] >= 0);
      break;
    }
    case 3: {
      auto range = SemVerRange::Parse(text);
      if (range.ok()) (void)range->Matches(absl::string_view("1.2.3"));
      break;
    }
    case 4: {
      auto gpus = worker::ParseSimulatedGpus(text, "w1");
      if (gpus.ok()) FUZZ_CHECK(gpus->size() <= 1024);
      break;
    }
    case 5: {
      auto values = ParseJsonStringArray(text);
      if (values.ok()) FUZZ_CHECK(ParseJsonStringArray(JsonStringArray(*values)).value() == *values);
      break;
    }
    default: {
      auto key = x509::PublicKeyOfCsr(text, "csr_pem");
      if (!key.ok()) FUZZ_CHECK(key.status().code() == absl::StatusCode::kInvalidArgument);
      break;
    }
  }
  return 0;
}
