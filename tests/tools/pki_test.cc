#include "tools/pki/pki.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace gantry::pki {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/gantry-pki-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

std::unique_ptr<X509, decltype(&X509_free)> Load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f != nullptr);
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  REQUIRE(cert != nullptr);
  return {cert, X509_free};
}

std::vector<std::string> Sans(X509* cert, int type) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != type) continue;
    if (type == GEN_IPADD) {
      out.push_back(std::to_string(ASN1_STRING_length(n->d.iPAddress)) + " bytes");
    } else {
      const ASN1_IA5STRING* s = type == GEN_URI ? n->d.uniformResourceIdentifier : n->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

int Mode(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

bool Verifies(X509* ca, X509* leaf) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  bool ok = X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

}  // namespace

TEST_CASE("the CA and a leaf carry the SPIFFE identity and chain correctly", "[pki]") {
  std::string dir = TempDir();
  REQUIRE(CreateCa({dir}).ok());
  LeafOptions leaf;
  leaf.ca_dir = dir;
  leaf.role = "worker";
  leaf.name = "gpu-node-1.w0";
  leaf.dns = {"localhost", "worker.example"};
  leaf.ips = {"127.0.0.1"};
  leaf.out_prefix = dir + "/w0";
  REQUIRE(IssueLeaf(leaf).ok());
  auto ca = Load(dir + "/ca.crt");
  auto cert = Load(dir + "/w0.crt");
  CHECK(Sans(cert.get(), GEN_URI) == std::vector<std::string>{"spiffe://gantry/worker/gpu-node-1.w0"});
  CHECK(Sans(cert.get(), GEN_DNS) == std::vector<std::string>{"localhost", "worker.example"});
  CHECK(Sans(cert.get(), GEN_IPADD) == std::vector<std::string>{"4 bytes"});
  CHECK(X509_check_ca(cert.get()) == 0);
  CHECK(X509_check_ca(ca.get()) == 1);
  CHECK(Verifies(ca.get(), cert.get()));
  CHECK(Mode(dir + "/ca.key") == 0600);
  CHECK(Mode(dir + "/w0.key") == 0600);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("existing keys are never overwritten", "[pki]") {
  std::string dir = TempDir();
  REQUIRE(CreateCa({dir}).ok());
  CHECK(CreateCa({dir}).code() == absl::StatusCode::kAlreadyExists);
  LeafOptions leaf;
  leaf.ca_dir = dir;
  leaf.role = "api-server";
  leaf.out_prefix = dir + "/api";
  REQUIRE(IssueLeaf(leaf).ok());
  CHECK(IssueLeaf(leaf).code() == absl::StatusCode::kAlreadyExists);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("bad roles, names and SANs are refused", "[pki]") {
  std::string dir = TempDir();
  REQUIRE(CreateCa({dir}).ok());
  auto issue = [&](std::string role, std::string name, std::vector<std::string> dns,
                   std::vector<std::string> ips) {
    LeafOptions o;
    o.ca_dir = dir;
    o.role = role;
    o.name = name;
    o.dns = dns;
    o.ips = ips;
    o.out_prefix = dir + "/x";
    return IssueLeaf(o);
  };
  CHECK_FALSE(issue("root", "x", {}, {}).ok());
  CHECK_FALSE(issue("worker", "", {}, {}).ok());
  CHECK_FALSE(issue("worker", "a,URI:spiffe://gantry/admin/x", {}, {}).ok());  // SAN injection.
  CHECK_FALSE(issue("api-server", "named", {}, {}).ok());
  CHECK_FALSE(issue("worker", "w", {"bad name,DNS:x"}, {}).ok());
  CHECK_FALSE(issue("worker", "w", {}, {"999.1.1.1"}).ok());
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace gantry::pki
