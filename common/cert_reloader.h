// A certificate and key for an OpenSSL server that gRPC's file watcher does not cover (the
// HTTPS metrics port, the front door): each handshake gets the current pair, and the files are re-read when
// they change (checked at most once per interval), so rotation needs no restart.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace gantry {

class CertReloader {
 public:
  // `server` names the listener in the logs ("metrics endpoint").
  CertReloader(std::string server, std::string cert_path, std::string key_path, absl::Duration interval);
  ~CertReloader();

  // Reads the files now; an error names the file. Call once before Install.
  absl::Status Load();
  // Makes every handshake on `ctx` use the current pair. `this` must outlive `ctx`.
  void Install(SSL_CTX* ctx);

 private:
  struct KeyPair;
  static int OnHandshake(SSL* ssl, void* self);
  std::shared_ptr<const KeyPair> Current();
  absl::StatusOr<std::shared_ptr<const KeyPair>> Read() const;

  const std::string server_, cert_path_, key_path_;
  const absl::Duration interval_;
  std::mutex mu_;
  std::shared_ptr<const KeyPair> pair_ ABSL_GUARDED_BY(mu_);
  std::string files_version_ ABSL_GUARDED_BY(mu_);  // inode and mtime of both files
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gantry
