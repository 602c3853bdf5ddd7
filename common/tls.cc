#include "common/tls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/channel_arguments.h>

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/keepalive.h"

namespace gantry {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

namespace {

using grpc::experimental::CertificateProviderInterface;
using grpc::experimental::FileWatcherCertificateProvider;
using grpc::experimental::StaticDataCertificateProvider;

// Reads the files up front, so a missing or unreadable file fails start-up with its name (the
// file watcher would only log it and fail every handshake). Empty strings for files not asked for.
struct Pems {
  std::string ca, cert, key;
};

absl::StatusOr<Pems> ReadPems(const TlsFiles& files, bool with_identity) {
  Pems pems;
  std::vector<std::pair<const std::string*, std::string*>> wanted = {{&files.ca_file, &pems.ca}};
  if (with_identity) wanted.insert(wanted.end(), {{&files.cert_file, &pems.cert}, {&files.key_file, &pems.key}});
  for (auto [path, pem] : wanted) {
    auto data = ReadFile(*path);
    if (!data.ok()) return data.status();
    if (data->find("-----BEGIN") == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(*path, " holds no PEM data"));
    }
    *pem = *std::move(data);
  }
  return pems;
}

absl::StatusOr<std::shared_ptr<CertificateProviderInterface>> Provider(const TlsFiles& files,
                                                                       bool with_identity) {
  auto pems = ReadPems(files, with_identity);
  if (!pems.ok()) return pems.status();
  if (files.refresh_interval > absl::ZeroDuration()) {
    auto seconds = static_cast<unsigned>(std::max<int64_t>(1, absl::ToInt64Seconds(files.refresh_interval)));
    if (with_identity) {
      return std::make_shared<FileWatcherCertificateProvider>(files.key_file, files.cert_file,
                                                              files.ca_file, seconds);
    }
    return std::make_shared<FileWatcherCertificateProvider>(files.ca_file, seconds);
  }
  if (!with_identity) return std::make_shared<StaticDataCertificateProvider>(pems->ca);
  return std::make_shared<StaticDataCertificateProvider>(
      pems->ca, std::vector<grpc::experimental::IdentityKeyCertPair>{{pems->key, pems->cert}});
}

}  // namespace

void AddTlsFlags(Flags& flags, TlsFiles* files, const std::string& ca_help, const std::string& cert_help) {
  flags.AddString("tls-ca", &files->ca_file, ca_help);
  flags.AddString("tls-cert", &files->cert_file, cert_help);
  flags.AddString("tls-key", &files->key_file, "its private key (PEM)");
  flags.AddDuration("tls-refresh-interval", &files->refresh_interval,
                    "how often the three files are re-read, so rotated certificates are used without a "
                    "restart (0: read once)");
}

absl::Status WriteFile(const std::string& path, const std::string& data, int mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  fchmod(fd, static_cast<mode_t>(mode));  // also for a file that existed, and past the umask
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = close(fd) == 0 && ok;
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, ClientCertPolicy policy) {
  if (files.ca_file.empty() || files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs a CA, a certificate and a key (--tls-ca, --tls-cert, --tls-key); "
        "there is no plaintext mode");
  }
  auto provider = Provider(files, /*with_identity=*/true);
  if (!provider.ok()) return provider.status();
  grpc::experimental::TlsServerCredentialsOptions options(*provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(policy == ClientCertPolicy::kRequire
                                    ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                    : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files) {
  if (files.ca_file.empty()) {
    return absl::InvalidArgumentError("TLS needs the CA that signed the server (--tls-ca)");
  }
  if (files.cert_file.empty() != files.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  bool with_identity = !files.cert_file.empty();
  auto provider = Provider(files, with_identity);
  if (!provider.ok()) return provider.status();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(*provider);
  options.watch_root_certs();
  if (with_identity) options.watch_identity_key_cert_pairs();
  // Server certificates are verified against the CA and the target's host name (the default).
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

std::vector<std::string> SplitAddressList(const std::string& list) {
  std::vector<std::string> out = absl::StrSplit(list, ',', absl::SkipWhitespace());
  for (auto& address : out) address = std::string(absl::StripAsciiWhitespace(address));
  if (out.empty()) out.push_back("");
  return out;
}

std::shared_ptr<grpc::Channel> CreateInternalChannel(const std::string& target,
                                                     std::shared_ptr<grpc::ChannelCredentials> creds,
                                                     bool own_subchannels) {
  grpc::ChannelArguments args;
  if (own_subchannels) args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  // A frozen or vanished server is noticed within 10 s (keepalive.h), idle or not.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays at its default: gRPC also uses it as the minimum
  // connect timeout, and a small one aborts TLS handshakes on a busy machine.
  return grpc::CreateCustomChannel(target, std::move(creds), args);
}

}  // namespace gantry
