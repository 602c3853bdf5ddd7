// The X.509 helpers behind gantry-pki and the node bootstrap: what they sign is what they say,
// and what they refuse they refuse by name.
#include <catch2/catch.hpp>

#include "common/x509.h"

namespace gantry {

TEST_CASE("x509: a CSR's key is signed into a leaf with the SPIFFE identity and validity asked for", "[x509]") {
  auto ca_key = x509::NewPrivateKey();
  REQUIRE(ca_key.ok());
  auto ca = x509::SelfSignedCa(*ca_key, "test CA", absl::Hours(1));
  REQUIRE(ca.ok());
  auto ca_info = x509::Inspect(*ca);
  REQUIRE(ca_info.ok());
  CHECK(ca_info->is_ca);
  CHECK(ca_info->self_signed);

  auto node_key = x509::NewPrivateKey();
  auto csr = x509::MakeCsr(*node_key);
  REQUIRE(csr.ok());
  auto public_key = x509::PublicKeyOfCsr(*csr, "csr_pem");
  REQUIRE(public_key.ok());
  CHECK(*public_key == *x509::PublicKeyOf(*node_key));

  absl::Time start = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  x509::Leaf leaf{*public_key, Identity{Role::kWorker, "w1"}, {"node.local"}, {"10.0.0.7"}, start,
                  start + absl::Hours(2)};
  auto cert = x509::SignLeaf(leaf, *ca, *ca_key);
  REQUIRE(cert.ok());
  auto info = x509::Inspect(*cert);
  REQUIRE(info.ok());
  CHECK(info->spiffe_id == "spiffe://gantry/worker/w1");
  CHECK(info->not_before == start);
  CHECK(info->not_after == start + absl::Hours(2));
  CHECK_FALSE(info->is_ca);
  CHECK_FALSE(info->self_signed);
  CHECK(x509::CheckKeyMatches(*cert, *node_key).ok());
  CHECK_FALSE(x509::CheckKeyMatches(*cert, *ca_key).ok());
}

TEST_CASE("x509: bad requests and bad names are refused", "[x509]") {
  auto key = x509::NewPrivateKey();
  auto csr = x509::MakeCsr(*key);
  // A CSR whose body was changed no longer verifies.
  std::string tampered = *csr;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'A' ? 'B' : 'A';
  auto refused = x509::PublicKeyOfCsr(tampered, "csr_pem");
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(refused.status().message().find("csr_pem") == 0);
  CHECK(x509::PublicKeyOfCsr("not PEM", "csr_pem").status().code() == absl::StatusCode::kInvalidArgument);

  auto ca = x509::SelfSignedCa(*key, "test CA", absl::Hours(1));
  absl::Time now = absl::Now();
  x509::Leaf leaf{*x509::PublicKeyOf(*key), Identity{Role::kController, "n1"}, {"bad name!"}, {}, now,
                  now + absl::Hours(1)};
  CHECK_FALSE(x509::SignLeaf(leaf, *ca, *key).ok());
  leaf.dns.clear();
  leaf.ips = {"10.0.0.300"};
  CHECK_FALSE(x509::SignLeaf(leaf, *ca, *key).ok());
  leaf.ips.clear();
  leaf.not_after = leaf.not_before;
  CHECK_FALSE(x509::SignLeaf(leaf, *ca, *key).ok());
}

}  // namespace gantry
