// A network namespace joined to the test's own by a veth pair, for partition tests: processes
// started through Exec() live on the far side and reach this side only over the link, which
// Cut() takes down and Heal() brings back. Made with iproute2's `ip` (and iptables for one-way
// partitions); needs root (CAP_NET_ADMIN),
// as CI has, and fails the test otherwise. Removed, with its link, at the end.
#pragma once

#include <string>
#include <vector>

namespace gantry::testing {

class NetNamespace {
 public:
  NetNamespace();
  ~NetNamespace();
  NetNamespace(const NetNamespace&) = delete;
  NetNamespace& operator=(const NetNamespace&) = delete;

  // This side's and the far side's addresses on the link (a /30 of its own).
  const std::string& host_ip() const { return host_ip_; }
  const std::string& far_ip() const { return far_ip_; }
  // The command prefix that runs a program on the far side.
  std::vector<std::string> Exec() const { return {"/usr/sbin/ip", "netns", "exec", name_}; }
  void Cut();
  void Heal();
  // A one-way partition: TCP from this side to `port` on the far side is dropped silently (as
  // a firewall would), while connections the far side opens work both ways. With iptables-legacy: the
  // kernel's nf_tables may be absent where ip_tables is not.
  void DropInboundTo(int port);
  void AllowInboundTo(int port);

 private:
  std::string name_, host_if_, far_if_, host_ip_, far_ip_;
};

}  // namespace gantry::testing
