#include "tests/support/netns.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace gantry::testing {
namespace {

void Ip(const std::string& args) {
  std::string cmd = absl::StrCat("/usr/sbin/ip ", args, " 2>&1");
  INFO(cmd << " (network namespaces need root, as CI has)");
  REQUIRE(std::system(cmd.c_str()) == 0);
}

}  // namespace

NetNamespace::NetNamespace() {
  // Unique among tests running at once: this process's id and a counter pick the /30.
  static std::atomic<int> counter{0};
  const int n = counter++;
  const int pid = static_cast<int>(getpid());
  const std::string tag = absl::StrCat(pid % 100000, "x", n);
  name_ = "gantry-" + tag;
  host_if_ = "gh" + tag;  // interface names: at most 15 bytes
  far_if_ = "gf" + tag;
  const std::string net = absl::StrCat("10.", 64 + pid % 128, ".", (pid / 128) % 256, ".");
  host_ip_ = absl::StrCat(net, n * 4 + 1);
  far_ip_ = absl::StrCat(net, n * 4 + 2);
  Ip("netns add " + name_);
  Ip(absl::StrCat("link add ", host_if_, " type veth peer name ", far_if_, " netns ", name_));
  Ip(absl::StrCat("addr add ", host_ip_, "/30 dev ", host_if_));
  Ip(absl::StrCat("link set ", host_if_, " up"));
  Ip(absl::StrCat("-n ", name_, " addr add ", far_ip_, "/30 dev ", far_if_));
  Ip(absl::StrCat("-n ", name_, " link set ", far_if_, " up"));
  Ip(absl::StrCat("-n ", name_, " link set lo up"));
}

NetNamespace::~NetNamespace() {
  // Deleting the namespace deletes the far end, and with it the pair.
  std::string cmd = absl::StrCat("/usr/sbin/ip netns del ", name_, " >/dev/null 2>&1; /usr/sbin/ip link del ",
                                 host_if_, " >/dev/null 2>&1");
  int rc = std::system(cmd.c_str());
  (void)rc;
}

void NetNamespace::DropInboundTo(int port) {
  // Only what comes over the link: the far side's own processes (its worker) still connect.
  Ip(absl::StrCat("netns exec ", name_, " /usr/sbin/iptables-legacy -A INPUT -i ", far_if_, " -p tcp --dport ", port,
                  " -j DROP"));
}

void NetNamespace::AllowInboundTo(int port) {
  Ip(absl::StrCat("netns exec ", name_, " /usr/sbin/iptables-legacy -D INPUT -i ", far_if_, " -p tcp --dport ", port,
                  " -j DROP"));
}

void NetNamespace::Cut() { Ip(absl::StrCat("link set ", host_if_, " down")); }
void NetNamespace::Heal() { Ip(absl::StrCat("link set ", host_if_, " up")); }

}  // namespace gantry::testing
