#include "common/request_ids.h"

#include <cctype>
#include <optional>

#include "common/tokens.h"

namespace gantry {

bool IsSaneRequestId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// 16 characters of [A-Za-z0-9_-]: sane by the rule above.
std::string NewRequestId() { return RandomToken(12); }

namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr char kHeader[] = "x-request-id";
thread_local std::optional<RequestIds> current;

class RequestIdInterceptor : public grpc::experimental::Interceptor {
 public:
  // Not cleared on destruction: that may happen on another thread, serving another call.

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      std::string id;
      for (const auto& [key, value] : *methods->GetRecvInitialMetadata()) {
        if (key == kHeader) id.assign(value.data(), value.size());
      }
      current = RequestIds{IsSaneRequestId(id) ? id : NewRequestId(), "", "", ""};
      id_ = current->request;
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA) && !id_.empty()) {
      methods->GetSendInitialMetadata()->emplace(kHeader, id_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) current.reset();
    methods->Proceed();
  }

 private:
  std::string id_;
};

}  // namespace

const RequestIds* CurrentRequestIds() { return current ? &*current : nullptr; }

std::optional<RequestIds> CopyCurrentRequestIds() { return current; }

namespace {
// Noted ids are printed as they are in every log line of the request (logging.cc): one that
// a caller made up is noted by what it is not, never printed. Ids of ours are UUIDs, names and
// NODE/NAME worker ids: nothing a log line or a JSON string would need escaped.
std::string Checked(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/' ||
                c == ':' || c == '@');
  }
  return ok ? id : "(not-an-id)";
}
}  // namespace

RequestIdScope::RequestIdScope(const RequestIds& ids) : previous_(current) { current = ids; }
RequestIdScope::~RequestIdScope() { current = previous_; }

void NoteSession(const std::string& id) {
  if (current) current->session = Checked(id);
}
void NoteController(const std::string& id) {
  if (current) current->controller = Checked(id);
}
void NoteWorker(const std::string& id) {
  if (current) current->worker = Checked(id);
}

void AddRequestId(grpc::ClientContext* context) {
  if (current) context->AddMetadata(kHeader, current->request);
}

grpc::experimental::Interceptor* RequestIdInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo*) {
  return new RequestIdInterceptor();
}

}  // namespace gantry
