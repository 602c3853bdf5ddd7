// TLS credentials for every connection. There is no plaintext mode: a server always presents
// its certificate and verifies client certificates against the cluster CA; a client always
// verifies the server. Certificate files are watched: when cert-manager, kubelet or the node
// bootstrap replaces them, new handshakes use the new ones without a restart.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace gantry {

class Flags;

struct TlsFiles {
  std::string ca_file;    // PEM bundle of the CA(s) to trust.
  std::string cert_file;  // This process's certificate chain (PEM).
  std::string key_file;   // Its private key (PEM).
  // How often the files are re-read (--tls-refresh-interval); 0 reads them once.
  absl::Duration refresh_interval = absl::Seconds(60);
};

// --tls-ca, --tls-cert, --tls-key and --tls-refresh-interval; `cert_help` says which identity
// the certificate must carry.
void AddTlsFlags(Flags& flags, TlsFiles* files, const std::string& ca_help, const std::string& cert_help);

enum class ClientCertPolicy {
  // mTLS: handshake fails without a certificate signed by the CA (node-facing servers).
  kRequire,
  // A certificate is verified if sent; otherwise the caller must bring a bearer API key
  // (the client-facing API server).
  kVerifyIfPresent,
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files, ClientCertPolicy policy);

// cert_file/key_file may be empty for clients that authenticate with a bearer key instead.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

absl::StatusOr<std::string> ReadFile(const std::string& path);
// Replaces `path` with `data`, readable per `mode` (e.g. 0600 for a key) before any byte is in it.
absl::Status WriteFile(const std::string& path, const std::string& data, int mode);

// "host:port[,host:port...]" as a list: API server replicas that a node tries in turn when no
// load balancer stands in front of them (a Kubernetes Service is one; then give just it).
std::vector<std::string> SplitAddressList(const std::string& list);

// A channel between Gantry components. gRPC's default reconnect backoff grows to 120 s, which
// would leave a restarted peer unreachable for minutes; ours stays between 100 ms and 2 s.
// `own_subchannels`: do not share connections with other channels to the same target (for a
// caller that makes a fresh channel to reconnect).
std::shared_ptr<grpc::Channel> CreateInternalChannel(const std::string& target,
                                                     std::shared_ptr<grpc::ChannelCredentials> creds,
                                                     bool own_subchannels = false);

}  // namespace gantry
