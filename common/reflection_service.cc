#include "common/reflection_service.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>

#include <map>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace gantry {

// Generated at build time from protoc --descriptor_set_out --include_imports
// --include_source_info (cmake/EmbedBinaryScript.cmake).
extern const unsigned char kGantryDescriptorSet[];
extern const size_t kGantryDescriptorSetSize;

namespace {

namespace pb = google::protobuf;

// Every file of the embedded set, serialized as protoc wrote it, and a pool to find symbols in.
class Descriptors {
 public:
  static const Descriptors& Get() {
    static const Descriptors* const instance = new Descriptors();
    return *instance;
  }

  const pb::FileDescriptor* File(const std::string& name) const { return pool_.FindFileByName(name); }
  const pb::FileDescriptor* FileWithSymbol(const std::string& symbol) const {
    return pool_.FindFileContainingSymbol(symbol);
  }
  const pb::Descriptor* Message(const std::string& name) const { return pool_.FindMessageTypeByName(name); }
  const std::string& Serialized(const pb::FileDescriptor* file) const { return serialized_.at(file->name()); }
  const std::vector<std::string>& order() const { return order_; }

 private:
  Descriptors() {
    pb::FileDescriptorSet set;
    // Built from our own protos by protoc: failing to parse or build is a broken build.
    if (!set.ParseFromArray(kGantryDescriptorSet, static_cast<int>(kGantryDescriptorSetSize))) std::abort();
    for (const pb::FileDescriptorProto& file : set.file()) {
      if (pool_.BuildFile(file) == nullptr) std::abort();
      serialized_[file.name()] = file.SerializeAsString();
      order_.push_back(file.name());
    }
  }

  pb::DescriptorPool pool_;
  std::map<std::string, std::string> serialized_;
  std::vector<std::string> order_;
};

// The reflection service of one protocol version: v1 and v1alpha have the same messages in
// different packages, so one template serves both.
template <typename ServiceBase, typename Request, typename Response>
class ReflectionService final : public ServiceBase {
 public:
  void SetServiceList(const std::vector<std::string>* services) {
    std::lock_guard<std::mutex> lock(mu_);
    services_ = *services;
  }

  grpc::Status ServerReflectionInfo(grpc::ServerContext* context,
                                    grpc::ServerReaderWriter<Response, Request>* stream) override {
    Request request;
    while (!context->IsCancelled() && stream->Read(&request)) {
      Response response;
      response.set_valid_host(request.host());
      *response.mutable_original_request() = request;
      Answer(request, &response);
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

 private:
  void Answer(const Request& request, Response* response) {
    const Descriptors& d = Descriptors::Get();
    switch (request.message_request_case()) {
      case Request::kListServices: {
        std::lock_guard<std::mutex> lock(mu_);
        for (const std::string& name : services_) response->mutable_list_services_response()->add_service()->set_name(name);
        return;
      }
      case Request::kFileByFilename:
        return SendFile(d.File(request.file_by_filename()), "file " + request.file_by_filename(), response);
      case Request::kFileContainingSymbol:
        return SendFile(d.FileWithSymbol(request.file_containing_symbol()),
                        "symbol " + request.file_containing_symbol(), response);
      case Request::kAllExtensionNumbersOfType: {
        const pb::Descriptor* type = d.Message(request.all_extension_numbers_of_type());
        if (type == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "type " + request.all_extension_numbers_of_type(), response);
        // Gantry defines no extensions: the answer is the type with none.
        response->mutable_all_extension_numbers_response()->set_base_type_name(type->full_name());
        return;
      }
      case Request::kFileContainingExtension:
        return Error(grpc::StatusCode::NOT_FOUND, "extension (Gantry defines none)", response);
      default:
        return Error(grpc::StatusCode::INVALID_ARGUMENT, "request (no message_request set)", response);
    }
  }

  // The file and every file it imports, each once, dependencies first.
  static void SendFile(const pb::FileDescriptor* file, const std::string& what, Response* response) {
    if (file == nullptr) return Error(grpc::StatusCode::NOT_FOUND, what, response);
    std::set<std::string> sent;
    AddWithDependencies(file, &sent, response->mutable_file_descriptor_response());
  }

  template <typename FileResponse>
  static void AddWithDependencies(const pb::FileDescriptor* file, std::set<std::string>* sent, FileResponse* out) {
    if (!sent->insert(file->name()).second) return;
    // The file asked for first, as the stock implementation answers.
    out->add_file_descriptor_proto(Descriptors::Get().Serialized(file));
    for (int i = 0; i < file->dependency_count(); ++i) AddWithDependencies(file->dependency(i), sent, out);
  }

  static void Error(grpc::StatusCode code, const std::string& what, Response* response) {
    response->mutable_error_response()->set_error_code(code);
    response->mutable_error_response()->set_error_message(
        absl::StrCat(what, code == grpc::StatusCode::NOT_FOUND ? " not found" : " is not valid"));
  }

  std::mutex mu_;
  std::vector<std::string> services_;
};

using ReflectionV1 = ReflectionService<grpc::reflection::v1::ServerReflection::Service,
                                       grpc::reflection::v1::ServerReflectionRequest,
                                       grpc::reflection::v1::ServerReflectionResponse>;
using ReflectionV1alpha = ReflectionService<grpc::reflection::v1alpha::ServerReflection::Service,
                                            grpc::reflection::v1alpha::ServerReflectionRequest,
                                            grpc::reflection::v1alpha::ServerReflectionResponse>;

// Registers the services once the server exists, and hands them its service list at the end
// (which then includes the standard health service and both reflection services).
class ReflectionPlugin final : public grpc::ServerBuilderPlugin {
 public:
  std::string name() override { return "gantry_reflection"; }
  void InitServer(grpc::ServerInitializer* si) override {
    si->RegisterService(v1_);
    si->RegisterService(v1alpha_);
  }
  void Finish(grpc::ServerInitializer* si) override {
    v1_->SetServiceList(si->GetServiceList());
    v1alpha_->SetServiceList(si->GetServiceList());
  }
  void ChangeArguments(const std::string&, void*) override {}
  bool has_sync_methods() const override { return true; }

 private:
  std::shared_ptr<ReflectionV1> v1_ = std::make_shared<ReflectionV1>();
  std::shared_ptr<ReflectionV1alpha> v1alpha_ = std::make_shared<ReflectionV1alpha>();
};

class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ReflectionPlugin>());
  }
};

}  // namespace

std::unique_ptr<grpc::ServerBuilderOption> ReflectionFromEmbeddedDescriptors() {
  Descriptors::Get();  // Parsed now, at start-up, not on the first call.
  return std::make_unique<ReflectionOption>();
}

std::vector<std::string> EmbeddedProtoFiles() { return Descriptors::Get().order(); }

}  // namespace gantry
