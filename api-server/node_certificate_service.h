// NodeCertificateService: the API server signs short-lived certificates for controllers and
// workers (the node TLS bootstrap; see the proto). The first one needs a join token of the
// node's role, later ones the current certificate, which may only renew itself; who may hold
// which name is NodeEnrollment's to decide; a node stopping gracefully hands its name back. The signer's files are read on each call (so they
// can be rotated in place) and every issue is logged with its identity, address and how it
// was authenticated.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "api-server/failed_auth_limiter.h"
#include "api-server/node_enrollment.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"

namespace gantry::api {

struct NodeSignerConfig {
  // A CA certificate and key (the cluster CA, or an intermediate under it). Empty: this API
  // server issues nothing and says so (FAILED_PRECONDITION).
  std::string cert_file;
  std::string key_file;
  absl::Duration ttl = absl::Hours(24);
  // DNS names a node may ask for (e.g. the node-local controller Service's name).
  std::vector<std::string> allowed_dns;
};

class NodeCertificateServiceImpl final : public v1::NodeCertificateService::Service {
 public:
  // `limiter` slows down guessing of join tokens.
  NodeCertificateServiceImpl(NodeSignerConfig config, const NodeEnrollment* enrollment, FailedAuthLimiter* limiter)
      : config_(std::move(config)), enrollment_(enrollment), limiter_(limiter) {}

  grpc::Status IssueNodeCertificate(grpc::ServerContext* ctx, const v1::IssueNodeCertificateRequest* request,
                                    v1::IssueNodeCertificateResponse* response) override;
  grpc::Status ReleaseNodeName(grpc::ServerContext* ctx, const v1::ReleaseNodeNameRequest* request,
                               v1::ReleaseNodeNameResponse* response) override;

 private:
  const NodeSignerConfig config_;
  const NodeEnrollment* const enrollment_;
  FailedAuthLimiter* const limiter_;
};

}  // namespace gantry::api
