#include "support/jwk.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "crypto/encoding.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/test_data.h"

namespace custos::support {
namespace {

using ::testing::HasSubstr;

// RFC 7517 appendix A.1 (EC).
const Json kRfc7517Ec = {{"kty", "EC"},
                         {"crv", "P-256"},
                         {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                         {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
                         {"use", "enc"},
                         {"kid", "1"}};

// RFC 8037 appendix A.2.
const Json kRfc8037Ed25519 = {
    {"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}};

TEST(JwkThumbprint, MatchesJoseForEveryTestKey) {
  const Json data = ReadJson("thumbprints.json");
  ASSERT_TRUE(data.is_object() && data.contains("keys")) << "thumbprints.json missing or broken";
  ASSERT_GE(data["keys"].size(), 5u);
  for (const auto& [name, entry] : data["keys"].items()) {
    absl::StatusOr<PublicJwk> key = ParsePublicJwk(entry["jwk"]);
    ASSERT_TRUE(key.ok()) << name << ": " << key.status();
    EXPECT_EQ(Thumbprint(*key), entry["jkt"].get<std::string>()) << name;
  }
}

TEST(JwkThumbprint, MatchesPublishedValues) {
  // RFC 8037 appendix A.3.
  absl::StatusOr<PublicJwk> ed = ParsePublicJwk(kRfc8037Ed25519);
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ(Thumbprint(*ed), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
  // RFC 9449 section 6.1, the jkt of the key in its example proofs.
  absl::StatusOr<PublicJwk> ec =
      ParsePublicJwk({{"kty", "EC"},
                      {"crv", "P-256"},
                      {"x", "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"},
                      {"y", "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}});
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(Thumbprint(*ec), "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
}

TEST(JwkThumbprint, InputHasRequiredMembersOnlyInOrderWithoutWhitespace) {
  absl::StatusOr<PublicJwk> ec = ParsePublicJwk(kRfc7517Ec);
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ThumbprintInput(*ec),
            R"({"crv":"P-256","kty":"EC","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",)"
            R"("y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})");
  absl::StatusOr<PublicJwk> ed = ParsePublicJwk(kRfc8037Ed25519);
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ(ThumbprintInput(*ed),
            R"({"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})");
}

TEST(ParsePublicJwk, KeepsRawCoordinates) {
  absl::StatusOr<PublicJwk> ec = ParsePublicJwk(kRfc7517Ec);
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ec->kind, JwkKind::kEcP256);
  EXPECT_EQ(ec->x.size(), 32u);
  EXPECT_EQ(ec->y.size(), 32u);
  EXPECT_EQ(JwsAlgorithmFor(*ec), "ES256");
  absl::StatusOr<PublicJwk> ed = ParsePublicJwk(kRfc8037Ed25519);
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ(ed->kind, JwkKind::kEd25519);
  EXPECT_TRUE(ed->y.empty());
  EXPECT_EQ(JwsAlgorithmFor(*ed), "EdDSA");
}

void ExpectRefused(const Json& jwk, std::string_view why) {
  absl::StatusOr<PublicJwk> key = ParsePublicJwk(jwk);
  ASSERT_FALSE(key.ok()) << "accepted " << jwk.dump();
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(key.status().message()), HasSubstr(std::string(why))) << jwk.dump();
}

TEST(ParsePublicJwk, RefusesPrivateKeys) {
  // RFC 7517 appendix A.2's EC private key, and RFC 8037 A.1's Ed25519 one.
  Json ec = kRfc7517Ec;
  ec["d"] = "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE";
  ExpectRefused(ec, "private");
  EXPECT_TRUE(HasPrivateKeyMembers(ec));
  Json ed = kRfc8037Ed25519;
  ed["d"] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
  ExpectRefused(ed, "private");
  Json oct = {{"kty", "oct"}, {"k", "c2VjcmV0"}};
  ExpectRefused(oct, "private");
  EXPECT_FALSE(HasPrivateKeyMembers(kRfc7517Ec));
}

TEST(ParsePublicJwk, RefusesOtherKeyTypesAndCurves) {
  ExpectRefused({{"kty", "RSA"}, {"crv", "P-256"}, {"n", "AQAB"}, {"e", "AQAB"}}, "not supported");
  Json p384 = kRfc7517Ec;
  p384["crv"] = "P-384";
  ExpectRefused(p384, "not supported");
  Json x25519 = kRfc8037Ed25519;
  x25519["crv"] = "X25519";
  ExpectRefused(x25519, "not supported");
  Json no_crv = kRfc7517Ec;
  no_crv.erase("crv");
  ExpectRefused(no_crv, "crv");
  ExpectRefused(Json::array({1, 2}), "object");
  ExpectRefused(Json("EC"), "object");
}

TEST(ParsePublicJwk, RefusesBadCoordinates) {
  Json short_x = kRfc7517Ec;
  short_x["x"] = crypto::Base64UrlEncode(std::string(31, 'a'));
  ExpectRefused(short_x, "31 bytes");
  Json padded = kRfc8037Ed25519;
  padded["x"] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
  ExpectRefused(padded, "base64url");
  Json std_alphabet = kRfc8037Ed25519;
  std_alphabet["x"] = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo";
  ExpectRefused(std_alphabet, "base64url");
  Json number_x = kRfc7517Ec;
  number_x["x"] = 7;
  ExpectRefused(number_x, "not a string");
  Json no_y = kRfc7517Ec;
  no_y.erase("y");
  ExpectRefused(no_y, "\"y\"");
  Json okp_with_y = kRfc8037Ed25519;
  okp_with_y["y"] = kRfc7517Ec["y"];
  ExpectRefused(okp_with_y, "\"y\"");
}

TEST(ParsePublicJwk, RefusesPointOffTheCurve) {
  Json off = kRfc7517Ec;
  // The x of RFC 7517's key with the y of RFC 9449's: almost surely not on the curve together.
  off["y"] = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA";
  ExpectRefused(off, "not a point on P-256");
}

// RFC 7515 appendix A.3: an ES256 JWS and its key.
constexpr std::string_view kEs256SigningInput =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlf"
    "Q";
constexpr std::string_view kEs256Signature =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
const Json kRfc7515Ec = {{"kty", "EC"},
                         {"crv", "P-256"},
                         {"x", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"},
                         {"y", "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}};

// RFC 8037 appendix A.4: an EdDSA JWS by the A.2 key.
constexpr std::string_view kEdDsaSigningInput =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
constexpr std::string_view kEdDsaSignature =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

TEST(VerifyJwsSignature, AcceptsPublishedEs256Example) {
  absl::StatusOr<PublicJwk> key = ParsePublicJwk(kRfc7515Ec);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string sig = *crypto::Base64UrlDecode(kEs256Signature);
  EXPECT_TRUE(VerifyJwsSignature(*key, "ES256", kEs256SigningInput, sig));

  std::string flipped = sig;
  flipped[40] ^= 0x01;
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES256", kEs256SigningInput, flipped));
  std::string input(kEs256SigningInput);
  input.back() = 'R';  // was 'Q'
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES256", input, sig));
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES256", kEs256SigningInput, sig.substr(0, 63)));
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES256", kEs256SigningInput, sig + '\0'));
  EXPECT_FALSE(VerifyJwsSignature(*key, "EdDSA", kEs256SigningInput, sig));
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES384", kEs256SigningInput, sig));
}

TEST(VerifyJwsSignature, AcceptsPublishedEdDsaExample) {
  absl::StatusOr<PublicJwk> key = ParsePublicJwk(kRfc8037Ed25519);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string sig = *crypto::Base64UrlDecode(kEdDsaSignature);
  EXPECT_TRUE(VerifyJwsSignature(*key, "EdDSA", kEdDsaSigningInput, sig));
  // RFC 9864's fully specified name for the same algorithm.
  EXPECT_TRUE(VerifyJwsSignature(*key, "Ed25519", kEdDsaSigningInput, sig));
  EXPECT_FALSE(VerifyJwsSignature(*key, "Ed448", kEdDsaSigningInput, sig));

  std::string flipped = sig;
  flipped[3] ^= 0x80;
  EXPECT_FALSE(VerifyJwsSignature(*key, "EdDSA", kEdDsaSigningInput, flipped));
  EXPECT_FALSE(VerifyJwsSignature(*key, "ES256", kEdDsaSigningInput, sig));
  EXPECT_FALSE(VerifyJwsSignature(*key, "EdDSA", kEdDsaSigningInput, sig.substr(1)));
}

TEST(VerifyJwsSignature, AnotherKeyDoesNotVerify) {
  absl::StatusOr<PublicJwk> other = ParsePublicJwk(kRfc7517Ec);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(VerifyJwsSignature(*other, "ES256", kEs256SigningInput,
                                  *crypto::Base64UrlDecode(kEs256Signature)));
}

}  // namespace
}  // namespace custos::support
