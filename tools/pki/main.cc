// gantry-pki: makes the cluster CA and the role certificates Gantry's mTLS needs.
//   gantry-pki ca --dir DIR [--days N]
//   gantry-pki issue --dir DIR --role ROLE [--name NAME] [--dns a,b] [--ip x,y] [--days N]
//                    [--out PREFIX]
#include <cstdio>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tools/pki/pki.h"

namespace {

constexpr char kUsage[] =
    "usage:\n"
    "  gantry-pki ca --dir DIR [--days 3650]\n"
    "      create the cluster CA: DIR/ca.crt and DIR/ca.key (0600)\n"
    "  gantry-pki issue --dir DIR --role ROLE [--name NAME] [--dns NAMES] [--ip ADDRS]\n"
    "                   [--days 365] [--not-before-offset-days 0] [--out PREFIX]\n"
    "      issue a certificate with URI SAN spiffe://gantry/ROLE[/NAME] signed by DIR's CA;\n"
    "      ROLE is api-server, controller, worker, admin or user; NAMES and ADDRS are\n"
    "      comma-separated; writes PREFIX.crt and PREFIX.key (0600), PREFIX defaulting to\n"
    "      DIR/ROLE[-NAME]. An existing key is never overwritten.\n";

int Usage(const char* problem) {
  std::fprintf(stderr, "gantry-pki: %s\n%s", problem, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  std::string dir, role, name, dns, ips, out;
  int days = 0, offset = 0;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(("missing value for " + flag).c_str());
    std::string value = argv[++i];
    if (flag == "--dir") dir = value;
    else if (flag == "--role") role = value;
    else if (flag == "--name") name = value;
    else if (flag == "--dns") dns = value;
    else if (flag == "--ip") ips = value;
    else if (flag == "--out") out = value;
    else if (flag == "--days" && absl::SimpleAtoi(value, &days)) continue;
    else if (flag == "--not-before-offset-days" && absl::SimpleAtoi(value, &offset)) continue;
    else return Usage(("unknown flag or bad value: " + flag).c_str());
  }
  if (dir.empty()) return Usage("--dir is required");
  absl::Status status;
  if (command == "ca") {
    gantry::pki::CaOptions o;
    o.dir = dir;
    if (days > 0) o.days = days;
    status = gantry::pki::CreateCa(o);
  } else if (command == "issue") {
    gantry::pki::LeafOptions o;
    o.ca_dir = dir;
    o.role = role;
    o.name = name;
    o.dns = absl::StrSplit(dns, ',', absl::SkipEmpty());
    o.ips = absl::StrSplit(ips, ',', absl::SkipEmpty());
    if (days > 0) o.days = days;
    o.not_before_offset_days = offset;
    o.out_prefix = out.empty() ? dir + "/" + role + (name.empty() ? "" : "-" + name) : out;
    status = gantry::pki::IssueLeaf(o);
    if (status.ok()) std::printf("%s.crt\n", o.out_prefix.c_str());
  } else {
    return Usage(("unknown command " + command).c_str());
  }
  if (!status.ok()) {
    std::fprintf(stderr, "gantry-pki: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
