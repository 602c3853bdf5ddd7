// The invoke scenarios' baseline: a bare InvokeService built from the same gRPC libraries and
// protos, over the same mTLS, relayed through as many hops as Gantry's path (client -> relay ->
// relay -> echo, against client -> gantry-api -> controller -> worker), doing nothing else: no
// routing, no database, no handler process.
#pragma once

#include <memory>
#include <string>

#include "common/tls.h"

namespace gantry::bench {

class EchoRelay {
 public:
  // Starts the echo server and `relays` relays in front of it on loopback, each with the
  // certificate `tls` (which must name 127.0.0.1); `address()` is the front one.
  EchoRelay(const TlsFiles& tls, int relays);
  ~EchoRelay();
  std::string address() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gantry::bench
