#include "common/x509.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace gantry::x509 {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

absl::Status OpenSslError(absl::string_view what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

Ptr<BIO> ReadBio(const std::string& pem) {
  return Ptr<BIO>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

template <typename Write>
absl::StatusOr<std::string> ToPem(Write write, absl::string_view what) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!write(bio.get())) return OpenSslError(absl::StrCat("encode ", what));
  return Drain(bio.get());
}

absl::StatusOr<Ptr<EVP_PKEY>> ParsePrivateKey(const std::string& pem) {
  Ptr<EVP_PKEY> key(PEM_read_bio_PrivateKey(ReadBio(pem).get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM private key");
  return key;
}

absl::StatusOr<Ptr<X509>> ParseCert(const std::string& pem) {
  Ptr<X509> cert(PEM_read_bio_X509(ReadBio(pem).get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) return absl::InvalidArgumentError("not a PEM certificate");
  return cert;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ptr<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (ext == nullptr || !X509_add_ext(cert, ext.get(), -1)) {
    return OpenSslError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

// A certificate for `key` with a random serial, O=Gantry and CN=`common_name`.
Ptr<X509> NewCert(EVP_PKEY* key, const std::string& common_name, absl::Time not_before, absl::Time not_after) {
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  Ptr<BIGNUM> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), absl::ToTimeT(not_before));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), absl::ToTimeT(not_after));
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Gantry"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(common_name.c_str()),
                             -1, -1, 0);
  return cert;
}

absl::Time ToTime(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

}  // namespace

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*')) return false;
  }
  return true;
}

bool IsIpAddress(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

absl::StatusOr<std::string> NewPrivateKey() {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("generate P-256 key");
  return ToPem([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); },
               "private key");
}

absl::StatusOr<std::string> PublicKeyOf(const std::string& private_key_pem) {
  auto key = ParsePrivateKey(private_key_pem);
  if (!key.ok()) return key.status();
  return ToPem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key->get()); }, "public key");
}

absl::StatusOr<std::string> MakeCsr(const std::string& private_key_pem) {
  auto key = ParsePrivateKey(private_key_pem);
  if (!key.ok()) return key.status();
  Ptr<X509_REQ> req(X509_REQ_new());
  X509_REQ_set_version(req.get(), 0);
  X509_REQ_set_pubkey(req.get(), key->get());
  if (!X509_REQ_sign(req.get(), key->get(), EVP_sha256())) return OpenSslError("sign CSR");
  return ToPem([&](BIO* b) { return PEM_write_bio_X509_REQ(b, req.get()); }, "CSR");
}

absl::StatusOr<std::string> PublicKeyOfCsr(const std::string& csr_pem, const std::string& field) {
  Ptr<X509_REQ> req(PEM_read_bio_X509_REQ(ReadBio(csr_pem).get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (req == nullptr) return absl::InvalidArgumentError(absl::StrCat(field, ": not a PEM certificate request"));
  EVP_PKEY* key = X509_REQ_get0_pubkey(req.get());
  if (key == nullptr || X509_REQ_verify(req.get(), key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(field, ": the request's signature does not verify"));
  }
  if (EVP_PKEY_get_bits(key) < 256) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": the key is too small"));
  }
  return ToPem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key); }, "public key");
}

absl::StatusOr<std::string> SelfSignedCa(const std::string& private_key_pem, const std::string& common_name,
                                         absl::Duration validity) {
  auto key = ParsePrivateKey(private_key_pem);
  if (!key.ok()) return key.status();
  absl::Time now = absl::Now();
  Ptr<X509> cert = NewCert(key->get(), common_name, now - absl::Minutes(1), now + validity);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(cert.get(), cert.get(), nid, value); !s.ok()) return s;
  }
  if (!X509_sign(cert.get(), key->get(), EVP_sha256())) return OpenSslError("sign CA");
  return ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }, "certificate");
}

absl::StatusOr<std::string> SignLeaf(const Leaf& leaf, const std::string& issuer_cert_pem,
                                     const std::string& issuer_key_pem) {
  std::vector<std::string> sans;
  if (leaf.with_identity) sans.push_back(absl::StrCat("URI:", leaf.identity.SpiffeId()));
  for (const auto& d : leaf.dns) {
    if (!IsDnsName(d)) return absl::InvalidArgumentError(absl::StrCat("\"", d, "\" is not a DNS name"));
    sans.push_back("DNS:" + d);
  }
  for (const auto& ip : leaf.ips) {
    if (!IsIpAddress(ip)) return absl::InvalidArgumentError(absl::StrCat("\"", ip, "\" is not an IP address"));
    sans.push_back("IP:" + ip);
  }
  if (leaf.not_after <= leaf.not_before) return absl::InvalidArgumentError("the validity window is empty");
  Ptr<EVP_PKEY> key(PEM_read_bio_PUBKEY(ReadBio(leaf.public_key_pem).get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM public key");
  auto issuer = ParseCert(issuer_cert_pem);
  if (!issuer.ok()) return issuer.status();
  auto issuer_key = ParsePrivateKey(issuer_key_pem);
  if (!issuer_key.ok()) return issuer_key.status();
  std::string cn(RoleName(leaf.identity.role));
  if (!leaf.identity.name.empty()) absl::StrAppend(&cn, "/", leaf.identity.name);
  Ptr<X509> cert = NewCert(key.get(), cn, leaf.not_before, leaf.not_after);
  X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer->get()));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
                            std::pair{NID_key_usage, std::string("critical,digitalSignature,keyEncipherment")},
                            std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
                            std::pair{NID_subject_key_identifier, std::string("hash")},
                            std::pair{NID_authority_key_identifier, std::string("keyid:always")},
                            std::pair{NID_subject_alt_name, absl::StrJoin(sans, ",")}}) {
    if (nid == NID_subject_alt_name && value.empty()) continue;  // nothing to name
    if (absl::Status s = AddExtension(cert.get(), issuer->get(), nid, value); !s.ok()) return s;
  }
  if (!X509_sign(cert.get(), issuer_key->get(), EVP_sha256())) return OpenSslError("sign certificate");
  return ToPem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }, "certificate");
}

absl::StatusOr<CertInfo> Inspect(const std::string& pem) {
  auto cert = ParseCert(pem);
  if (!cert.ok()) return cert.status();
  CertInfo info;
  info.not_before = ToTime(X509_get0_notBefore(cert->get()));
  info.not_after = ToTime(X509_get0_notAfter(cert->get()));
  info.is_ca = X509_check_ca(cert->get()) > 0;
  info.self_signed = X509_check_issued(cert->get(), cert->get()) == X509_V_OK;
  Ptr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert->get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    const ASN1_STRING* uri = name->d.uniformResourceIdentifier;
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
    if (absl::StartsWith(value, "spiffe://gantry/")) info.spiffe_id = value;
  }
  return info;
}

absl::StatusOr<std::string> PublicKeyOfCert(const std::string& cert_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  EVP_PKEY* key = X509_get0_pubkey(cert->get());
  if (key == nullptr) return OpenSslError("read the certificate's public key");
  return ToPem([&](BIO* b) { return PEM_write_bio_PUBKEY(b, key); }, "public key");
}

absl::Status CheckKeyMatches(const std::string& cert_pem, const std::string& private_key_pem) {
  auto cert = ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  auto key = ParsePrivateKey(private_key_pem);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the private key is not the certificate's");
  }
  return absl::OkStatus();
}

}  // namespace gantry::x509
