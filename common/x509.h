// X.509 for Gantry's identities, in PEM strings (OpenSSL stays inside x509.cc): keys, CSRs, a
// self-signed cluster CA, and leaf certificates carrying spiffe://gantry/<role>[/<name>] plus
// DNS/IP SANs for host-name verification. Used by gantry-pki, the API server's node-certificate
// signer, and the controllers' and workers' bootstrap.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/identity.h"

namespace gantry::x509 {

// A new ECDSA P-256 private key (PKCS#8 PEM).
absl::StatusOr<std::string> NewPrivateKey();
// Its public key (SubjectPublicKeyInfo PEM).
absl::StatusOr<std::string> PublicKeyOf(const std::string& private_key_pem);

// A PKCS#10 request signed with the key. It names nothing: the signer decides the names.
absl::StatusOr<std::string> MakeCsr(const std::string& private_key_pem);
// The CSR's public key, after checking the CSR's signature; INVALID_ARGUMENT naming `field`.
absl::StatusOr<std::string> PublicKeyOfCsr(const std::string& csr_pem, const std::string& field);

// A self-signed CA certificate for the key.
absl::StatusOr<std::string> SelfSignedCa(const std::string& private_key_pem, const std::string& common_name,
                                         absl::Duration validity);

struct Leaf {
  std::string public_key_pem;
  Identity identity;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  absl::Time not_before;
  absl::Time not_after;
  // False: no spiffe://gantry URI at all, a certificate that proves nothing to Gantry's servers
  // (what a trust-bundle-only certificate is; tests use it to show it is refused).
  bool with_identity = true;
};
// Signs `leaf` with the issuer's key; the result is the leaf certificate alone (PEM).
absl::StatusOr<std::string> SignLeaf(const Leaf& leaf, const std::string& issuer_cert_pem,
                                     const std::string& issuer_key_pem);

struct CertInfo {
  std::string spiffe_id;  // the gantry SPIFFE URI SAN, "" if none
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
  bool self_signed = false;  // a root, as opposed to an intermediate or a leaf
};
// The first certificate in `pem`.
absl::StatusOr<CertInfo> Inspect(const std::string& pem);
// The public key (SubjectPublicKeyInfo PEM, as PublicKeyOf writes it) of the first certificate
// in `cert_pem`.
absl::StatusOr<std::string> PublicKeyOfCert(const std::string& cert_pem);
// OK if `private_key_pem` is the key of the first certificate in `cert_pem`.
absl::Status CheckKeyMatches(const std::string& cert_pem, const std::string& private_key_pem);

bool IsDnsName(const std::string& s);
bool IsIpAddress(const std::string& s);

}  // namespace gantry::x509
