// NodeCertificateService: the API server signs short-lived certificates for controllers and
// workers (the node TLS bootstrap; see the proto). The first one needs the cluster join token,
// later ones the current certificate, which may only renew itself. Nothing is stored: the
// signer's files are read on each call (so they can be rotated in place) and every issue is
// logged with its serial, identity and address.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api-server/failed_auth_limiter.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"

namespace gantry::api {

struct NodeSignerConfig {
  // A CA certificate and key (the cluster CA, or an intermediate under it). Empty: this API
  // server issues nothing and says so (FAILED_PRECONDITION).
  std::string cert_file;
  std::string key_file;
  std::string join_token;
  absl::Duration ttl = absl::Hours(24);
  // DNS names a node may ask for (e.g. the node-local controller Service's name).
  std::vector<std::string> allowed_dns;
};

class NodeCertificateServiceImpl final : public v1::NodeCertificateService::Service {
 public:
  // `limiter` slows down guessing of the join token.
  NodeCertificateServiceImpl(NodeSignerConfig config, FailedAuthLimiter* limiter)
      : config_(std::move(config)), limiter_(limiter) {}

  grpc::Status IssueNodeCertificate(grpc::ServerContext* ctx, const v1::IssueNodeCertificateRequest* request,
                                    v1::IssueNodeCertificateResponse* response) override;

 private:
  const NodeSignerConfig config_;
  FailedAuthLimiter* const limiter_;
};

}  // namespace gantry::api
