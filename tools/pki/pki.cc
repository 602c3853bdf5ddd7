#include "tools/pki/pki.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/identity.h"
#include "common/tls.h"
#include "common/x509.h"

namespace gantry::pki {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::Status RefuseExisting(const std::string& key_path) {
  if (!Exists(key_path)) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat(key_path, " exists; refusing to overwrite it"));
}

// Writes with O_EXCL so an existing file (above all a key) is never replaced.
absl::Status WriteNew(const std::string& path, const std::string& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return errno == EEXIST ? absl::AlreadyExistsError(absl::StrCat(path, " exists; refusing to overwrite it"))
                           : absl::InternalError(absl::StrCat("cannot create ", path));
  }
  fchmod(fd, mode);  // Not subject to the umask.
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

// The key first (never overwritten), then its certificate: public, so a stale one is replaced.
absl::Status WritePair(const std::string& key_path, const std::string& key_pem, const std::string& cert_path,
                       const std::string& cert_pem) {
  if (absl::Status s = WriteNew(key_path, key_pem, 0600); !s.ok()) return s;
  unlink(cert_path.c_str());
  return WriteNew(cert_path, cert_pem, 0644);
}

}  // namespace

absl::Status CreateCa(const CaOptions& o) {
  std::string key_path = o.dir + "/ca.key", cert_path = o.dir + "/ca.crt";
  if (absl::Status s = RefuseExisting(key_path); !s.ok()) return s;
  if (o.days <= 0) return absl::InvalidArgumentError("--days must be positive");
  mkdir(o.dir.c_str(), 0700);
  auto key = x509::NewPrivateKey();
  if (!key.ok()) return key.status();
  auto cert = x509::SelfSignedCa(*key, o.common_name, absl::Hours(24) * o.days);
  if (!cert.ok()) return cert.status();
  return WritePair(key_path, *key, cert_path, *cert);
}

absl::Status IssueLeaf(const LeafOptions& o) {
  auto role = ParseRole(o.role);
  if (!role.ok()) return role.status();
  if (*role == Role::kApiServer) {
    if (!o.name.empty()) return absl::InvalidArgumentError("--name: the api-server role takes no name");
  } else if (!IsValidName(o.name)) {
    return absl::InvalidArgumentError("--name: 1..63 of [a-z0-9._-], starting with a letter or digit");
  }
  for (const auto& d : o.dns) {
    if (!x509::IsDnsName(d)) return absl::InvalidArgumentError(absl::StrCat("--dns: \"", d, "\" is not a DNS name"));
  }
  for (const auto& ip : o.ips) {
    if (!x509::IsIpAddress(ip)) {
      return absl::InvalidArgumentError(absl::StrCat("--ip: \"", ip, "\" is not an IP address"));
    }
  }
  if (o.days <= 0) return absl::InvalidArgumentError("--days must be positive");
  std::string key_path = o.out_prefix + ".key", cert_path = o.out_prefix + ".crt";
  if (absl::Status s = RefuseExisting(key_path); !s.ok()) return s;

  auto ca_cert = ReadFile(o.ca_dir + "/ca.crt");
  auto ca_key = ReadFile(o.ca_dir + "/ca.key");
  if (!ca_cert.ok() || !ca_key.ok()) {
    return absl::NotFoundError(absl::StrCat("no CA in ", o.ca_dir, " (run gantry-pki ca first)"));
  }
  auto key = x509::NewPrivateKey();
  if (!key.ok()) return key.status();
  auto public_key = x509::PublicKeyOf(*key);
  if (!public_key.ok()) return public_key.status();
  // Backdated a minute to tolerate small clock skew between machines.
  absl::Time start = absl::Now() + absl::Hours(24) * o.not_before_offset_days;
  x509::Leaf leaf{*public_key, Identity{*role, o.name}, o.dns, o.ips, start - absl::Minutes(1),
                  start + absl::Hours(24) * o.days};
  auto cert = x509::SignLeaf(leaf, *ca_cert, *ca_key);
  if (!cert.ok()) return cert.status();
  return WritePair(key_path, *key, cert_path, *cert);
}

}  // namespace gantry::pki
