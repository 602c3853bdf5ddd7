// The node side of the TLS bootstrap (NodeCertificateService): a controller or worker started
// with --tls-bootstrap-dir and no certificate of its own gets one from the API server with the
// join token, keeps it in that directory (a node-local volume survives restarts), and renews it
// over mTLS at 2/3 of its lifetime. The directory is laid out as kubelet lays out a Secret
// (tls.crt and tls.key link through ..data, swapped in one rename), so the process's file
// watchers pick up each renewal without a restart.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/redialer.h"
#include "common/identity.h"
#include "common/tls.h"
#include "common/x509.h"
#include "gantry/v1/node_certificate_service.grpc.pb.h"

namespace gantry {

class Flags;

class NodeCertificate;

// Who asks, and where.
struct NodeCertificateTarget {
  Identity identity;
  std::string api_url;
  std::string join_token;
};

struct NodeBootstrapOptions {
  std::string dir;  // empty: no bootstrap, --tls-cert/--tls-key are given
  std::string dns;  // DNS names to ask for, comma-separated
  absl::Duration startup_timeout = absl::Minutes(2);
  void AddTo(Flags& flags);
  // NodeCertificate::Start with these options, or nullptr when no --tls-bootstrap-dir is set.
  // The target's parts one by one: a braced NodeCertificateTarget built in the mains made GCC 12
  // at -O2 take its strings for maybe-uninitialized on main's exit paths (-Werror in Release).
  absl::StatusOr<std::unique_ptr<NodeCertificate>> StartIfSet(Role role, const std::string& name,
                                                              const std::string& api_url,
                                                              const std::string& join_token, TlsFiles* tls) const;
};

// The join token from --join-token or --join-token-file (one of them; the file's surrounding
// whitespace dropped). The file is the way to give it: a flag or an environment variable stays
// readable under /proc for as long as the process runs.
absl::StatusOr<std::string> ReadJoinToken(const std::string& flag_value, const std::string& file);

class NodeCertificate {
 public:
  using Target = NodeCertificateTarget;
  // Makes sure options.dir holds a current certificate for the identity (kept from an earlier
  // run, renewed, or obtained with the join token, retrying until options.startup_timeout),
  // points tls->cert_file/key_file at it, and renews it in the background from then on.
  static absl::StatusOr<std::unique_ptr<NodeCertificate>> Start(const NodeBootstrapOptions& options,
                                                                Target target, TlsFiles* tls);
  ~NodeCertificate();

  // As the node stops gracefully: hands its name back to the API server, so that a node that
  // replaces it without this key (a new Kubernetes pod, whose key lived in memory) may claim
  // the name with the join token. This one, started again with the certificate, takes it back
  // first thing. Best effort: a failure is logged; waits until `deadline` (at least 2 s).
  // Renewals stop first (one would hold the name again).
  void HandBackName(absl::Time deadline);

 private:
  NodeCertificate(const NodeBootstrapOptions& options, Target target, std::string ca_file);
  // The certificate in the directory, if it is this identity's and its key matches.
  std::optional<x509::CertInfo> Current() const;
  // When to renew it: at 2/3 of its lifetime; InfinitePast without a usable one, or after
  // the name was handed back.
  absl::Time NextRenewal(const std::optional<x509::CertInfo>& cert) const;
  // A stub for the next API server address, with this node's certificate or with none.
  std::unique_ptr<v1::NodeCertificateService::Stub> NextStub(bool with_certificate)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(obtain_mu_);
  // What a dial to the API server offers: the CA, and this node's certificate if asked for and
  // there (null when the files cannot be read).
  std::shared_ptr<grpc::ChannelCredentials> Credentials(bool with_certificate) const;
  // One attempt: renewal with the current certificate while it is valid, else the join token.
  absl::Status Obtain();
  absl::Status Publish(const std::string& key_pem, const std::string& chain_pem);
  void RenewLoop();

  const NodeBootstrapOptions options_;
  const Target target_;
  const std::string ca_file_;
  std::mutex obtain_mu_;  // one call to the API server at a time (the renewer, the hand-back)
  // The API server's addresses, reached without this node's certificate (a join token) or
  // with it (a renewal): each attempt a fresh channel to the next address.
  Redialer api_with_token_;
  Redialer api_with_certificate_;
  std::mutex mu_;
  std::condition_variable stop_;  // Signalled when stopping_ is set.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread renewer_;
};

}  // namespace gantry
