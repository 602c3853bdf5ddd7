#include "tools/pki/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/identity.h"

namespace gantry::pki {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <typename T>
using Ptr = std::unique_ptr<T, Free>;

absl::Status OpenSslError(absl::string_view what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Writes with O_EXCL so an existing file (above all a key) is never replaced.
absl::Status WriteNew(const std::string& path, const std::string& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return errno == EEXIST
               ? absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to overwrite it"))
               : absl::InternalError(absl::StrCat("cannot create ", path));
  }
  fchmod(fd, mode);  // Not subject to the umask.
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("encode key");
  }
  return BioToString(bio.get());
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Ptr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("encode certificate");
  return BioToString(bio.get());
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

absl::StatusOr<Ptr<X509>> NewCert(EVP_PKEY* key, const std::string& common_name, int days,
                                  int offset_days) {
  Ptr<X509> cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // Positive.
  Ptr<BIGNUM> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  // Backdated a minute to tolerate small clock skew between machines.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(offset_days) * 86400 - 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(offset_days + days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Gantry"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
  return cert;
}

absl::StatusOr<Ptr<EVP_PKEY>> NewKey() {
  Ptr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("generate P-256 key");
  return key;
}

bool IsDnsName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*')) return false;
  }
  return true;
}

bool IsIp(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

absl::Status CreateCa(const CaOptions& o) {
  std::string key_path = o.dir + "/ca.key", cert_path = o.dir + "/ca.crt";
  if (Exists(key_path)) return absl::AlreadyExistsError(absl::StrCat(key_path, " exists; refusing to overwrite it"));
  if (o.days <= 0) return absl::InvalidArgumentError("--days must be positive");
  mkdir(o.dir.c_str(), 0700);
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = NewCert(key->get(), o.common_name, o.days, 0);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(cert->get()));
  for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                            std::pair{NID_key_usage, "critical,keyCertSign,cRLSign"},
                            std::pair{NID_subject_key_identifier, "hash"}}) {
    absl::Status s = AddExtension(cert->get(), cert->get(), nid, value);
    if (!s.ok()) return s;
  }
  if (!X509_sign(cert->get(), key->get(), EVP_sha256())) return OpenSslError("sign CA");
  auto key_pem = KeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  auto cert_pem = CertPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::Status s = WriteNew(key_path, *key_pem, 0600);
  if (!s.ok()) return s;
  unlink(cert_path.c_str());  // The certificate is public; a stale one is replaced with its key.
  return WriteNew(cert_path, *cert_pem, 0644);
}

absl::Status IssueLeaf(const LeafOptions& o) {
  auto role = ParseRole(o.role);
  if (!role.ok()) return role.status();
  Identity identity{*role, o.name};
  if (*role == Role::kApiServer) {
    if (!o.name.empty()) return absl::InvalidArgumentError("--name: the api-server role takes no name");
  } else if (!IsValidName(o.name)) {
    return absl::InvalidArgumentError("--name: 1..63 of [a-z0-9._-], starting with a letter or digit");
  }
  std::vector<std::string> sans = {absl::StrCat("URI:", identity.SpiffeId())};
  for (const auto& d : o.dns) {
    if (!IsDnsName(d)) return absl::InvalidArgumentError(absl::StrCat("--dns: \"", d, "\" is not a DNS name"));
    sans.push_back("DNS:" + d);
  }
  for (const auto& ip : o.ips) {
    if (!IsIp(ip)) return absl::InvalidArgumentError(absl::StrCat("--ip: \"", ip, "\" is not an IP address"));
    sans.push_back("IP:" + ip);
  }
  if (o.days <= 0) return absl::InvalidArgumentError("--days must be positive");
  std::string key_path = o.out_prefix + ".key", cert_path = o.out_prefix + ".crt";
  if (Exists(key_path)) return absl::AlreadyExistsError(absl::StrCat(key_path, " exists; refusing to overwrite it"));

  Ptr<BIO> ca_cert_bio(BIO_new_file((o.ca_dir + "/ca.crt").c_str(), "r"));
  Ptr<BIO> ca_key_bio(BIO_new_file((o.ca_dir + "/ca.key").c_str(), "r"));
  if (ca_cert_bio == nullptr || ca_key_bio == nullptr) {
    return absl::NotFoundError(absl::StrCat("no CA in ", o.ca_dir, " (run gantry-pki ca first)"));
  }
  Ptr<X509> ca_cert(PEM_read_bio_X509(ca_cert_bio.get(), nullptr, nullptr, nullptr));
  Ptr<EVP_PKEY> ca_key(PEM_read_bio_PrivateKey(ca_key_bio.get(), nullptr, nullptr, nullptr));
  if (ca_cert == nullptr || ca_key == nullptr) return OpenSslError("read CA");

  auto key = NewKey();
  if (!key.ok()) return key.status();
  std::string cn = o.name.empty() ? o.role : absl::StrCat(o.role, "/", o.name);
  auto cert = NewCert(key->get(), cn, o.days, o.not_before_offset_days);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(ca_cert.get()));
  for (auto [nid, value] :
       {std::pair{NID_basic_constraints, std::string("critical,CA:FALSE")},
        std::pair{NID_key_usage, std::string("critical,digitalSignature,keyEncipherment")},
        std::pair{NID_ext_key_usage, std::string("serverAuth,clientAuth")},
        std::pair{NID_subject_key_identifier, std::string("hash")},
        std::pair{NID_authority_key_identifier, std::string("keyid:always")},
        std::pair{NID_subject_alt_name, absl::StrJoin(sans, ",")}}) {
    absl::Status s = AddExtension(cert->get(), ca_cert.get(), nid, value);
    if (!s.ok()) return s;
  }
  if (!X509_sign(cert->get(), ca_key.get(), EVP_sha256())) return OpenSslError("sign certificate");
  auto key_pem = KeyPem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  auto cert_pem = CertPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  absl::Status s = WriteNew(key_path, *key_pem, 0600);
  if (!s.ok()) return s;
  unlink(cert_path.c_str());
  return WriteNew(cert_path, *cert_pem, 0644);
}

}  // namespace gantry::pki
