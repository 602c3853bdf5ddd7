#include "common/cert_reloader.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace gantry {

struct CertReloader::KeyPair {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;  // intermediates after the leaf, if any
  EVP_PKEY* key = nullptr;
  ~KeyPair() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

// Kubernetes replaces a mounted Secret by swapping a symlink, so the inode changes even when
// the modification time is coarse; stat follows the link.
std::string FileVersion(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "missing";
  return absl::StrCat(st.st_ino, ":", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size);
}

}  // namespace

CertReloader::CertReloader(std::string server, std::string cert_path, std::string key_path, absl::Duration interval)
    : server_(std::move(server)),
      cert_path_(std::move(cert_path)),
      key_path_(std::move(key_path)),
      interval_(interval) {}

CertReloader::~CertReloader() = default;

absl::StatusOr<std::shared_ptr<const CertReloader::KeyPair>> CertReloader::Read() const {
  auto pair = std::make_shared<KeyPair>();
  BIO* cert_bio = BIO_new_file(cert_path_.c_str(), "r");
  if (cert_bio == nullptr) return absl::NotFoundError(absl::StrCat("cannot read ", cert_path_));
  pair->leaf = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  pair->chain = sk_X509_new_null();
  while (X509* next = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr)) sk_X509_push(pair->chain, next);
  BIO_free(cert_bio);
  ERR_clear_error();  // the loop ends on "no start line"
  if (pair->leaf == nullptr) return absl::InvalidArgumentError(absl::StrCat(cert_path_, " holds no certificate"));
  BIO* key_bio = BIO_new_file(key_path_.c_str(), "r");
  if (key_bio == nullptr) return absl::NotFoundError(absl::StrCat("cannot read ", key_path_));
  pair->key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  if (pair->key == nullptr) return absl::InvalidArgumentError(absl::StrCat(key_path_, " holds no private key"));
  if (X509_check_private_key(pair->leaf, pair->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(key_path_, " is not the key of ", cert_path_));
  }
  return std::shared_ptr<const KeyPair>(std::move(pair));
}

absl::Status CertReloader::Load() {
  std::string version = FileVersion(cert_path_) + "/" + FileVersion(key_path_);
  auto pair = Read();
  if (!pair.ok()) return pair.status();
  std::lock_guard<std::mutex> lock(mu_);
  pair_ = *pair;
  files_version_ = version;
  next_check_ = absl::Now() + interval_;
  return absl::OkStatus();
}

std::shared_ptr<const CertReloader::KeyPair> CertReloader::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  if (interval_ > absl::ZeroDuration() && absl::Now() >= next_check_) {
    next_check_ = absl::Now() + interval_;
    std::string version = FileVersion(cert_path_) + "/" + FileVersion(key_path_);
    if (version != files_version_) {
      // A half-replaced pair (new certificate, old key) fails the key check and is retried at
      // the next interval; the old pair keeps serving meanwhile.
      auto pair = Read();
      if (pair.ok()) {
        pair_ = *pair;
        files_version_ = version;
        spdlog::info("{}: reloaded {}", server_, cert_path_);
      } else {
        spdlog::warn("{}: keeping the current certificate: {}", server_, std::string(pair.status().message()));
      }
    }
  }
  return pair_;
}

int CertReloader::OnHandshake(SSL* ssl, void* self) {
  auto pair = static_cast<CertReloader*>(self)->Current();
  // SSL_use_cert_and_key takes its own references (override=1 replaces the context's pair).
  return SSL_use_cert_and_key(ssl, pair->leaf, pair->key, pair->chain, 1);
}

void CertReloader::Install(SSL_CTX* ctx) { SSL_CTX_set_cert_cb(ctx, &CertReloader::OnHandshake, this); }

}  // namespace gantry
