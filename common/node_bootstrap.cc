#include "common/node_bootstrap.h"

#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "common/backoff.h"
#include "common/config.h"
#include "common/x509.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"

namespace gantry {
namespace {

constexpr char kData[] = "..data";
// Left in the directory by a node that handed its name back as it stopped: started again with
// this certificate, it renews at once, which makes the name its own again before a join token
// can claim it.
constexpr char kHandedBack[] = "name-handed-back";

}  // namespace

void NodeBootstrapOptions::AddTo(Flags& flags) {
  flags.AddString("tls-bootstrap-dir", &dir,
                  "get this process's certificate from the API server with the join token and keep it "
                  "(renewed) here, instead of --tls-cert/--tls-key");
  flags.AddString("tls-bootstrap-dns", &dns, "DNS names to ask for in that certificate, comma-separated");
  flags.AddDuration("tls-bootstrap-timeout", &startup_timeout,
                    "how long start-up keeps trying to get the first certificate");
}

absl::StatusOr<std::string> ReadJoinToken(const std::string& flag_value, const std::string& file) {
  if (file.empty()) return flag_value;
  if (!flag_value.empty()) {
    return absl::InvalidArgumentError("--join-token and --join-token-file: give one, not both");
  }
  auto contents = ReadFile(file);
  if (!contents.ok()) return absl::InvalidArgumentError(absl::StrCat("--join-token-file: cannot read ", file));
  std::string token(absl::StripAsciiWhitespace(*contents));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("--join-token-file: ", file, " is empty"));
  return token;
}

absl::StatusOr<std::unique_ptr<NodeCertificate>> NodeBootstrapOptions::StartIfSet(Role role, const std::string& name,
                                                                                const std::string& api_url,
                                                                                const std::string& join_token,
                                                                                TlsFiles* tls) const {
  if (dir.empty()) return std::unique_ptr<NodeCertificate>();
  NodeCertificateTarget target;
  target.identity.role = role;
  target.identity.name = name;
  target.api_url = api_url;
  target.join_token = join_token;
  return NodeCertificate::Start(*this, std::move(target), tls);
}

NodeCertificate::NodeCertificate(const NodeBootstrapOptions& options, Target target, std::string ca_file)
    : options_(options),
      target_(std::move(target)),
      ca_file_(std::move(ca_file)),
      api_with_token_(target_.api_url, Redialer::Credentials([this] { return Credentials(false); }), {}),
      api_with_certificate_(target_.api_url, Redialer::Credentials([this] { return Credentials(true); }), {}) {}

std::shared_ptr<grpc::ChannelCredentials> NodeCertificate::Credentials(bool with_certificate) const {
  TlsFiles files{ca_file_, "", "", absl::ZeroDuration()};
  if (with_certificate) {
    // Read at each dial: a renewal replaces them.
    files.cert_file = options_.dir + "/tls.crt";
    files.key_file = options_.dir + "/tls.key";
  }
  auto creds = MakeChannelCredentials(files);
  return creds.ok() ? *creds : nullptr;
}

absl::StatusOr<std::unique_ptr<NodeCertificate>> NodeCertificate::Start(const NodeBootstrapOptions& options,
                                                                        Target target, TlsFiles* tls) {
  if (!tls->cert_file.empty() || !tls->key_file.empty()) {
    return absl::InvalidArgumentError("--tls-bootstrap-dir: give it or --tls-cert/--tls-key, not both");
  }
  if (mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-bootstrap-dir: cannot create ", options.dir));
  }
  const bool has_token = !target.join_token.empty();
  std::unique_ptr<NodeCertificate> self(new NodeCertificate(options, std::move(target), tls->ca_file));
  // A node that kept its certificate renews it with that: the join token was for the first one.
  if (!has_token && !self->Current()) {
    return absl::InvalidArgumentError(
        "--tls-bootstrap-dir holds no certificate of this node's yet: the first one needs a join token "
        "(--join-token-file)");
  }
  absl::Time give_up = absl::Now() + options.startup_timeout;
  Backoff backoff(absl::Milliseconds(200), absl::Seconds(5));
  for (auto current = self->Current(); self->NextRenewal(current) <= absl::Now(); current = self->Current()) {
    absl::Status s = self->Obtain();
    if (s.ok()) break;
    // A certificate that is due for renewal but still valid is good enough to start with.
    if (current && current->not_after > absl::Now() + absl::Seconds(30)) break;
    if (absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat("no certificate from the API server at ", self->target_.api_url,
                                                 " within --tls-bootstrap-timeout: ", s.message()));
    }
    spdlog::warn("node certificate: {}; retrying", s.ToString());
    absl::SleepFor(backoff.Next());
  }
  tls->cert_file = options.dir + "/tls.crt";
  tls->key_file = options.dir + "/tls.key";
  self->renewer_ = std::thread([raw = self.get()] { raw->RenewLoop(); });
  return self;
}

NodeCertificate::~NodeCertificate() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

std::optional<x509::CertInfo> NodeCertificate::Current() const {
  auto cert = ReadFile(options_.dir + "/tls.crt");
  auto key = ReadFile(options_.dir + "/tls.key");
  if (!cert.ok() || !key.ok()) return std::nullopt;
  auto info = x509::Inspect(*cert);
  if (!info.ok() || info->spiffe_id != target_.identity.SpiffeId() || !x509::CheckKeyMatches(*cert, *key).ok()) {
    return std::nullopt;  // someone else's, or damaged: start again
  }
  return *info;
}

absl::Time NodeCertificate::NextRenewal(const std::optional<x509::CertInfo>& cert) const {
  if (!cert || access((options_.dir + "/" + kHandedBack).c_str(), F_OK) == 0) return absl::InfinitePast();
  return cert->not_before + (cert->not_after - cert->not_before) * 2 / 3;
}

std::unique_ptr<v1::NodeCertificateService::Stub> NodeCertificate::NextStub(bool with_certificate) {
  Redialer& api = with_certificate ? api_with_certificate_ : api_with_token_;
  api.Redial();  // Several API server addresses: each attempt asks the next.
  std::shared_ptr<grpc::Channel> channel = api.Channel();
  if (channel == nullptr) return nullptr;
  return v1::NodeCertificateService::NewStub(channel);
}

void NodeCertificate::HandBackName(absl::Time deadline) {
  // No renewal after this: one would hold the name again.
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stop_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  auto current = Current();
  if (!current || current->not_after <= absl::Now()) return;  // Nothing held to hand back.
  // Noted first: a node killed right after the call still renews at its next start.
  if (absl::Status s = WriteFile(options_.dir + "/" + kHandedBack, "", 0600); !s.ok()) {
    spdlog::warn("node certificate: not handing the name back: {}", s.ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(obtain_mu_);
  auto stub = NextStub(/*with_certificate=*/true);
  if (stub == nullptr) return;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(std::max(deadline, absl::Now() + absl::Seconds(2))));
  v1::ReleaseNodeNameResponse response;
  grpc::Status status = stub->ReleaseNodeName(&ctx, v1::ReleaseNodeNameRequest(), &response);
  if (status.ok()) {
    spdlog::info("node certificate: handed the name {} back; a join token of its role may claim it now",
                 target_.identity.SpiffeId());
  } else {
    spdlog::warn("node certificate: the name {} was not handed back: {}", target_.identity.SpiffeId(),
                 status.error_message());
  }
}

absl::Status NodeCertificate::Obtain() {
  auto key = x509::NewPrivateKey();
  if (!key.ok()) return key.status();
  auto csr = x509::MakeCsr(*key);
  if (!csr.ok()) return csr.status();
  v1::IssueNodeCertificateRequest request;
  request.set_role(std::string(RoleName(target_.identity.role)));
  request.set_name(target_.identity.name);
  request.set_csr_pem(*csr);
  for (absl::string_view dns : absl::StrSplit(options_.dns, ',', absl::SkipEmpty())) {
    request.add_dns_names(std::string(dns));
  }
  // Renew with the current certificate while it is valid, up to its last second: the join token
  // mints nothing for a name this node already holds (only a token an admin bound to the name
  // does), so it is for a node with no certificate at all.
  std::lock_guard<std::mutex> lock(obtain_mu_);
  auto current = Current();
  bool renewal = current && current->not_after > absl::Now();
  auto stub = NextStub(renewal);
  if (stub == nullptr) return absl::InvalidArgumentError("cannot read the CA or this node's certificate");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!renewal) ctx.AddMetadata("authorization", "Bearer " + target_.join_token);
  v1::IssueNodeCertificateResponse response;
  grpc::Status status = stub->IssueNodeCertificate(&ctx, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(renewal ? "renewal" : "bootstrap", " refused: ", status.error_message()));
  }
  auto info = x509::Inspect(response.certificate_chain_pem());
  if (!info.ok() || info->spiffe_id != target_.identity.SpiffeId()) {
    return absl::InternalError("the API server returned a certificate for another identity");
  }
  if (absl::Status s = x509::CheckKeyMatches(response.certificate_chain_pem(), *key); !s.ok()) {
    return absl::InternalError("the API server returned a certificate for another key");
  }
  if (absl::Status s = Publish(*key, response.certificate_chain_pem()); !s.ok()) return s;
  unlink((options_.dir + "/" + kHandedBack).c_str());  // The name is this node's again.
  spdlog::info("node certificate for {} {} until {}", target_.identity.SpiffeId(),
               renewal ? "renewed" : "obtained with the join token", absl::FormatTime(info->not_after));
  return absl::OkStatus();
}

absl::Status NodeCertificate::Publish(const std::string& key_pem, const std::string& chain_pem) {
  namespace fs = std::filesystem;
  const fs::path dir(options_.dir);
  const std::string version = absl::StrCat("..", absl::ToUnixMicros(absl::Now()));
  std::error_code ec;
  fs::create_directory(dir / version, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", (dir / version).string()));
  chmod((dir / version).c_str(), 0700);
  if (absl::Status s = WriteFile((dir / version / "tls.key").string(), key_pem, 0600); !s.ok()) return s;
  if (absl::Status s = WriteFile((dir / version / "tls.crt").string(), chain_pem, 0644); !s.ok()) return s;
  // Both files change in the one rename of ..data.
  fs::path tmp = dir / "..data_tmp";
  fs::remove(tmp, ec);
  fs::create_directory_symlink(version, tmp, ec);
  if (!ec) fs::rename(tmp, dir / kData, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish the certificate in ", options_.dir));
  for (const char* name : {"tls.crt", "tls.key"}) {
    if (!fs::is_symlink(dir / name)) {
      fs::remove(dir / name, ec);
      fs::create_symlink(fs::path(kData) / name, dir / name, ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot link ", (dir / name).string()));
    }
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("..", 0) == 0 && name != version && name != kData && entry.is_directory() && !entry.is_symlink()) {
      fs::remove_all(entry.path(), ec);
    }
  }
  return absl::OkStatus();
}

void NodeCertificate::RenewLoop() {
  Backoff backoff(absl::Seconds(1), absl::Seconds(60));
  absl::Time next = NextRenewal(Current());
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stopping_ && absl::Now() < next) {
        stop_.wait_until(lock, absl::ToChronoTime(next));
      }
      if (stopping_) return;
    }
    absl::Status s = Obtain();
    auto current = Current();
    if (s.ok()) {
      backoff.Reset();
      next = NextRenewal(current);
    } else {
      absl::Duration wait = backoff.Next();
      spdlog::warn("node certificate: {} (it expires {}); retrying in {}", s.ToString(),
                   current ? absl::FormatTime(current->not_after) : "now", absl::FormatDuration(wait));
      next = absl::Now() + wait;
    }
  }
}

}  // namespace gantry
