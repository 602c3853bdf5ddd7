#include "api-server/node_certificate_service.h"

#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/proto_time.h"
#include "common/status.h"
#include "common/tls.h"
#include "common/x509.h"

namespace gantry::api {
namespace {

constexpr size_t kMaxCsrBytes = 16 * 1024;
constexpr int kMaxDnsNames = 8;
constexpr absl::string_view kBearerPrefix = "Bearer ";

// Who calls: the holder of a join token (a first certificate), or the identity of the client
// certificate (a renewal). UNAUTHENTICATED for anyone else, before the request is read.
struct Caller {
  std::optional<Identity> certificate;  // a renewal
  std::string key_sha256;               // the certificate's key, for a renewal
  JoinGrant grant;                      // else
};

absl::StatusOr<Caller> Authenticate(const grpc::ServerContext& ctx, const NodeEnrollment& enrollment,
                                    FailedAuthLimiter* limiter) {
  auto auth = ctx.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    auto peer = PeerIdentity(*auth);
    if (!peer.ok()) return peer.status();
    auto key = PeerPublicKey(*auth);
    if (!key.ok()) return absl::UnauthenticatedError(key.status().message());
    return Caller{*peer, KeySha256(*key), {}};
  }
  auto it = ctx.client_metadata().find("authorization");
  if (it == ctx.client_metadata().end()) {
    return absl::UnauthenticatedError(
        "a first node certificate needs a join token of the node's role (authorization: Bearer <join token>)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  return limiter->Guard(ctx.peer(), [&]() -> absl::StatusOr<Caller> {
    if (!absl::StartsWith(value, kBearerPrefix)) return absl::UnauthenticatedError("the join token is not this cluster's");
    auto grant = enrollment.Authenticate(value.substr(kBearerPrefix.size()));
    if (!grant.ok()) return grant.status();
    return Caller{std::nullopt, "", *grant};
  });
}

// A certificate renews only itself.
absl::Status Authorize(const Caller& caller, const Identity& wanted) {
  if (!caller.certificate) return absl::OkStatus();
  const Identity& peer = *caller.certificate;
  if (peer.role != wanted.role || peer.name != wanted.name) {
    return absl::PermissionDeniedError(
        absl::StrCat("the certificate of ", peer.SpiffeId(), " may renew only itself, not ", wanted.SpiffeId()));
  }
  return absl::OkStatus();
}

absl::StatusOr<Identity> RequestedIdentity(const v1::IssueNodeCertificateRequest& request) {
  auto role = ParseRole(request.role());
  if (!role.ok() || (*role != Role::kController && *role != Role::kWorker)) {
    return absl::InvalidArgumentError(
        "role: must be \"controller\" or \"worker\"; other certificates are issued by an operator");
  }
  if (!IsValidName(request.name())) {
    return absl::InvalidArgumentError("name: 1..63 of [a-z0-9._-], starting with a letter or digit");
  }
  return Identity{*role, request.name()};
}

}  // namespace

grpc::Status NodeCertificateServiceImpl::IssueNodeCertificate(grpc::ServerContext* ctx,
                                                              const v1::IssueNodeCertificateRequest* request,
                                                              v1::IssueNodeCertificateResponse* response) {
  auto caller = Authenticate(*ctx, *enrollment_, limiter_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto identity = RequestedIdentity(*request);
  if (!identity.ok()) return ToGrpcStatus(identity.status());
  if (absl::Status s = Authorize(*caller, *identity); !s.ok()) return ToGrpcStatus(s);
  const std::string how = caller->certificate ? "renewal" : caller->grant.Describe();
  if (request->csr_pem().size() > kMaxCsrBytes) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("csr_pem: larger than ", kMaxCsrBytes, " bytes")));
  }
  if (request->dns_names_size() > kMaxDnsNames) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("dns_names: at most ", kMaxDnsNames)));
  }
  x509::Leaf leaf;
  for (const std::string& dns : request->dns_names()) {
    if (std::find(config_.allowed_dns.begin(), config_.allowed_dns.end(), dns) == config_.allowed_dns.end()) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "dns_names: \"", dns.substr(0, 253), "\" is not in this API server's --node-cert-dns list")));
    }
    leaf.dns.push_back(dns);
  }
  auto public_key = x509::PublicKeyOfCsr(request->csr_pem(), "csr_pem");
  if (!public_key.ok()) return ToGrpcStatus(public_key.status());
  if (config_.cert_file.empty()) {
    return ToGrpcStatus(absl::FailedPreconditionError(
        "this API server signs no node certificates (no --node-signer-cert); issue them with gantry-pki "
        "or cert-manager"));
  }
  auto signer_cert = ReadFile(config_.cert_file);
  auto signer_key = ReadFile(config_.key_file);
  if (!signer_cert.ok() || !signer_key.ok()) {
    spdlog::error("node certificates: cannot read the signer {} / {}", config_.cert_file, config_.key_file);
    return ToGrpcStatus(absl::UnavailableError("the API server cannot read its node signer; try another replica"));
  }
  std::string ip = PeerIpAddress(ctx->peer());
  if (!ip.empty()) leaf.ips.push_back(ip);
  leaf.public_key_pem = *public_key;
  leaf.identity = *identity;
  absl::Time now = absl::Now();
  // Tolerates small clock skew between machines. Nodes renew at 2/3 of the certificate's span,
  // so the backdating stays a small part of it: a whole minute on a 6 s certificate would have
  // them renew at once, again and again.
  leaf.not_before = now - std::min(absl::Minutes(1), config_.ttl / 10);
  leaf.not_after = now + config_.ttl;
  auto sign = [&]() -> absl::StatusOr<std::string> {
    auto cert = x509::SignLeaf(leaf, *signer_cert, *signer_key);
    if (!cert.ok()) {
      spdlog::error("node certificates: signing for {} failed: {}", identity->SpiffeId(), cert.status().ToString());
      return absl::InternalError("signing the node certificate failed; see the API server's log");
    }
    return cert;
  };
  // Signed inside the transaction that binds the name to this key: nothing is issued that is
  // not recorded, and nothing recorded that was not issued.
  const std::string key_sha256 = KeySha256(*public_key);
  auto cert = caller->certificate ? enrollment_->MintRenewal(*identity, caller->key_sha256, key_sha256, sign)
                                  : enrollment_->MintWithJoinToken(caller->grant, *identity, key_sha256, sign);
  if (!cert.ok()) {
    spdlog::warn("node certificates: refused {} (by {}) for {}: {}", identity->SpiffeId(), how, ctx->peer(),
                 cert.status().ToString());
    return ToGrpcStatus(cert.status());
  }
  auto signer_info = x509::Inspect(*signer_cert);
  std::string chain = *cert;
  // An intermediate signer travels with the leaf so peers that trust only the root can verify.
  if (signer_info.ok() && !signer_info->self_signed) chain += *signer_cert;
  response->set_certificate_chain_pem(chain);
  ToProto(leaf.not_before, response->mutable_not_before());
  ToProto(leaf.not_after, response->mutable_not_after());
  spdlog::info("node certificates: issued {} (by {}) for {}, address {}, until {}", identity->SpiffeId(), how,
               ctx->peer(), ip.empty() ? "none" : ip, absl::FormatTime(leaf.not_after));
  return grpc::Status::OK;
}

grpc::Status NodeCertificateServiceImpl::ReleaseNodeName(grpc::ServerContext* ctx, const v1::ReleaseNodeNameRequest*,
                                                         v1::ReleaseNodeNameResponse*) {
  auto auth = ctx->auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return ToGrpcStatus(absl::UnauthenticatedError("a node hands its name back with its own certificate"));
  }
  auto peer = PeerIdentity(*auth);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  if (peer->role != Role::kController && peer->role != Role::kWorker) {
    return ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat(peer->SpiffeId(), " is not a node: only controllers and workers hold node names")));
  }
  auto key = PeerPublicKey(*auth);
  if (!key.ok()) return ToGrpcStatus(absl::UnauthenticatedError(key.status().message()));
  if (absl::Status s = enrollment_->Release(*peer, KeySha256(*key)); !s.ok()) {
    spdlog::warn("node certificates: {} did not hand its name back: {}", peer->SpiffeId(), s.ToString());
    return ToGrpcStatus(s);
  }
  spdlog::info("node certificates: {} handed its name back as it stops: a join token of its role may claim it", peer->SpiffeId());
  return grpc::Status::OK;
}

}  // namespace gantry::api
