#include "common/tls.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace gantry {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, ClientCertPolicy policy) {
  if (files.ca_file.empty() || files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs a CA, a certificate and a key (--tls-ca, --tls-cert, --tls-key); "
        "there is no plaintext mode");
  }
  auto ca = ReadFile(files.ca_file);
  if (!ca.ok()) return ca.status();
  auto cert = ReadFile(files.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(files.key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      policy == ClientCertPolicy::kRequire
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  if (files.ca_file.empty()) {
    return absl::InvalidArgumentError("TLS needs the CA that signed the server (--tls-ca)");
  }
  grpc::SslCredentialsOptions options;
  auto ca = ReadFile(files.ca_file);
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (!files.cert_file.empty() || !files.key_file.empty()) {
    auto cert = ReadFile(files.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(files.key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> CreateInternalChannel(const std::string& target,
                                                     std::shared_ptr<grpc::ChannelCredentials> creds,
                                                     bool own_subchannels) {
  grpc::ChannelArguments args;
  if (own_subchannels) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: gRPC also uses it as the minimum
  // connect timeout, and a small one aborts TLS handshakes on a busy machine.
  return grpc::CreateCustomChannel(target, std::move(creds), args);
}

}  // namespace gantry
