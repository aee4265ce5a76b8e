#include "support/dpop.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "common/json.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/jwk.h"
#include "support/test_data.h"

namespace custos::support {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kUrl = "https://custos.example/provider/api/v1/support/tenants";
// The access token of RFC 9449's examples; its ath is published there too.
constexpr std::string_view kAccessToken = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
constexpr std::string_view kAth = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo";

// A device key that signs in the test, with OpenSSL (P-256) or libsodium (Ed25519).
class TestKey {
 public:
  static TestKey Es256() {
    TestKey key;
    key.alg_ = "ES256";
    key.pkey_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
    unsigned char point[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(key.pkey_.get(), OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point,
                                    &len);
    const std::string raw(reinterpret_cast<const char*>(point), len);
    key.jwk_ = {{"kty", "EC"},
                {"crv", "P-256"},
                {"x", crypto::Base64UrlEncode(raw.substr(1, 32))},
                {"y", crypto::Base64UrlEncode(raw.substr(33, 32))}};
    return key;
  }

  static TestKey Ed25519(uint64_t seed) {
    TestKey key;
    key.alg_ = "EdDSA";
    crypto::SeededRandom random(seed);
    key.seed_ = crypto::ed25519::GenerateSeed(random);
    key.jwk_ = {{"kty", "OKP"},
                {"crv", "Ed25519"},
                {"x", crypto::Base64UrlEncode(*crypto::ed25519::PublicKeyFromSeed(key.seed_))}};
    return key;
  }

  // Raw JWS signature: r||s (32 bytes each, left-padded) for ES256.
  std::string Sign(std::string_view input) const {
    if (alg_ == "EdDSA") return *crypto::ed25519::Sign(seed_, input);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(md.get(), nullptr, EVP_sha256(), nullptr, pkey_.get());
    unsigned char der[80];
    size_t der_len = sizeof der;
    EVP_DigestSign(md.get(), der, &der_len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    const unsigned char* p = der;
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)), ECDSA_SIG_free);
    unsigned char raw[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), raw + 32, 32);
    return std::string(reinterpret_cast<const char*>(raw), sizeof raw);
  }

  const Json& jwk() const { return jwk_; }
  const std::string& alg() const { return alg_; }
  std::string Jkt() const { return Thumbprint(*ParsePublicJwk(jwk_)); }

 private:
  std::string alg_;
  std::string seed_;
  std::shared_ptr<EVP_PKEY> pkey_{nullptr, EVP_PKEY_free};
  Json jwk_;
};

std::string B64(const Json& j) { return crypto::Base64UrlEncode(j.dump()); }

// header.payload.signature with the signature by `key`.
std::string SignJws(const TestKey& key, const Json& header, const Json& claims) {
  const std::string input = B64(header) + "." + B64(claims);
  return input + "." + crypto::Base64UrlEncode(key.Sign(input));
}

class DpopTest : public ::testing::Test {
 protected:
  Json Header(const TestKey& key) const {
    return {{"typ", "dpop+jwt"}, {"alg", key.alg()}, {"jwk", key.jwk()}};
  }
  Json Claims(std::string jti = "") {
    if (jti.empty()) jti = "jti-" + std::to_string(next_jti_++);
    return {{"jti", jti},
            {"htm", "GET"},
            {"htu", kUrl},
            {"iat", absl::ToUnixSeconds(clock_.Now())},
            {"ath", kAth}};
  }
  std::string Proof(const TestKey& key) { return SignJws(key, Header(key), Claims()); }
  DpopCheck Check() const {
    return {.method = "GET", .url = std::string(kUrl), .access_token = std::string(kAccessToken)};
  }

  void ExpectRefused(const absl::StatusOr<DpopResult>& result, DpopError reason) {
    ASSERT_FALSE(result.ok()) << "accepted, expected " << DpopErrorCode(reason);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
    EXPECT_EQ(DpopErrorOf(result.status()), reason) << result.status();
    EXPECT_THAT(std::string(result.status().message()),
                StartsWith(std::string(DpopErrorCode(reason)) + ": "));
  }

  FakeClock clock_;
  TestKey es256_ = TestKey::Es256();
  TestKey ed25519_ = TestKey::Ed25519(7);
  int next_jti_ = 1;
};

TEST_F(DpopTest, AcceptsProofsMadeByJose) {
  const Json data = ReadJson("proofs.json");
  const Json keys = ReadJson("thumbprints.json");
  ASSERT_TRUE(data.is_object() && data.contains("proofs")) << "proofs.json missing or broken";
  ASSERT_TRUE(keys.is_object() && keys.contains("keys")) << "thumbprints.json missing or broken";
  ASSERT_GE(data["proofs"].size(), 5u);
  for (const Json& p : data["proofs"]) {
    const std::string name = p["name"];
    SCOPED_TRACE(name);
    clock_.Set(absl::FromUnixSeconds(p["iat"].get<int64_t>()) + absl::Seconds(5));
    DpopVerifier verifier(clock_);
    DpopCheck check{.method = p["method"].get<std::string>(), .url = p["url"].get<std::string>()};
    if (p.contains("access_token")) check.access_token = p["access_token"].get<std::string>();

    absl::StatusOr<DpopResult> result = verifier.Verify(p["proof"].get<std::string>(), check);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->jkt, p["jkt"].get<std::string>());
    const char* key_name = p["alg"] == "ES256" ? "test_es256" : "test_ed25519";
    EXPECT_EQ(result->jkt, keys["keys"][key_name]["jkt"].get<std::string>());
    EXPECT_EQ(result->jti, p["jti"].get<std::string>());
    EXPECT_EQ(result->iat, absl::FromUnixSeconds(p["iat"].get<int64_t>()));

    ExpectRefused(verifier.Verify(p["proof"].get<std::string>(), check), DpopError::kReplayed);
    check.method = check.method == "GET" ? "POST" : "GET";
    ExpectRefused(DpopVerifier(clock_).Verify(p["proof"].get<std::string>(), check),
                  DpopError::kHtmMismatch);
  }
}

TEST_F(DpopTest, JoseResourceProofRefusedWithAnotherAccessToken) {
  const Json data = ReadJson("proofs.json");
  ASSERT_TRUE(data.is_object()) << "proofs.json missing or broken";
  int checked = 0;
  for (const Json& p : data["proofs"]) {
    if (!p.contains("access_token")) continue;
    clock_.Set(absl::FromUnixSeconds(p["iat"].get<int64_t>()));
    DpopVerifier verifier(clock_);
    ExpectRefused(
        verifier.Verify(p["proof"].get<std::string>(), {.method = p["method"].get<std::string>(),
                                                        .url = p["url"].get<std::string>(),
                                                        .access_token = "other"}),
        DpopError::kAthMismatch);
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST_F(DpopTest, AcceptsProofsSignedHere) {
  DpopVerifier verifier(clock_);
  for (const TestKey* key : {&es256_, &ed25519_}) {
    SCOPED_TRACE(key->alg());
    const std::string proof = Proof(*key);
    absl::StatusOr<DpopResult> result = verifier.Verify(proof, Check());
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->jkt, key->Jkt());
    EXPECT_EQ(result->iat, clock_.Now());
    EXPECT_THAT(result->jti, StartsWith("jti-"));
  }
}

TEST_F(DpopTest, Es256SignatureWithShortROrSVerifies) {
  // About one signature in 128 has r or s below 2^248, where DER drops the leading zero byte
  // that the JWS form keeps; such proofs must verify like any other.
  DpopVerifier verifier(clock_);
  int short_found = 0;
  for (int i = 0; i < 2000 && short_found < 2; ++i) {
    const std::string proof = Proof(es256_);
    const std::string sig = *crypto::Base64UrlDecode(proof.substr(proof.rfind('.') + 1));
    ASSERT_EQ(sig.size(), 64u);
    const bool short_value = sig[0] == '\0' || sig[32] == '\0';
    absl::StatusOr<DpopResult> result = verifier.Verify(proof, Check());
    ASSERT_TRUE(result.ok()) << result.status();
    if (short_value) ++short_found;
  }
  EXPECT_GE(short_found, 1) << "no short r or s in 2000 signatures (odds about 1e-7)";
}

TEST_F(DpopTest, RefusesWrongTyp) {
  DpopVerifier verifier(clock_);
  for (const Json& typ : {Json("JWT"), Json("at+jwt"), Json(42), Json()}) {
    Json header = Header(es256_);
    if (typ.is_null()) {
      header.erase("typ");
    } else {
      header["typ"] = typ;
    }
    ExpectRefused(verifier.Verify(SignJws(es256_, header, Claims()), Check()), DpopError::kBadTyp);
  }
  Json header = Header(es256_);
  header["typ"] = "application/DPoP+JWT";
  EXPECT_TRUE(verifier.Verify(SignJws(es256_, header, Claims()), Check()).ok());
}

TEST_F(DpopTest, RefusesAlgNone) {
  DpopVerifier verifier(clock_);
  Json header = Header(es256_);
  header["alg"] = "none";
  const std::string unsigned_jwt = B64(header) + "." + B64(Claims()) + ".";
  ExpectRefused(verifier.Verify(unsigned_jwt, Check()), DpopError::kBadAlg);
  header.erase("alg");
  ExpectRefused(verifier.Verify(SignJws(es256_, header, Claims()), Check()), DpopError::kBadAlg);
}

TEST_F(DpopTest, RefusesHmacEvenKeyedWithThePublicKey) {
  // The classic confusion: an HMAC "signed" with the public key's bytes as the secret.
  DpopVerifier verifier(clock_);
  for (const char* alg : {"HS256", "HS512"}) {
    Json header = Header(ed25519_);
    header["alg"] = alg;
    const std::string input = B64(header) + "." + B64(Claims());
    const std::string secret = *crypto::Base64UrlDecode(ed25519_.jwk()["x"].get<std::string>());
    const std::string jwt =
        input + "." + crypto::Base64UrlEncode(crypto::HmacSha256(secret, input));
    ExpectRefused(verifier.Verify(jwt, Check()), DpopError::kBadAlg);
  }
  for (const char* alg : {"RS256", "ES384", "ed25519", "es256"}) {
    Json header = Header(es256_);
    header["alg"] = alg;
    ExpectRefused(verifier.Verify(SignJws(es256_, header, Claims()), Check()), DpopError::kBadAlg);
  }
}

TEST_F(DpopTest, RefusesAlgThatDoesNotMatchTheKey) {
  DpopVerifier verifier(clock_);
  Json header = Header(ed25519_);
  header["alg"] = "ES256";
  ExpectRefused(verifier.Verify(SignJws(ed25519_, header, Claims()), Check()), DpopError::kBadJwk);
}

TEST_F(DpopTest, RefusesPrivateJwk) {
  DpopVerifier verifier(clock_);
  Json header = Header(ed25519_);
  header["jwk"]["d"] = crypto::Base64UrlEncode(std::string(32, '\x01'));
  ExpectRefused(verifier.Verify(SignJws(ed25519_, header, Claims()), Check()),
                DpopError::kPrivateJwk);
}

TEST_F(DpopTest, RefusesMissingOrUnsupportedJwk) {
  DpopVerifier verifier(clock_);
  Json no_jwk = Header(es256_);
  no_jwk.erase("jwk");
  ExpectRefused(verifier.Verify(SignJws(es256_, no_jwk, Claims()), Check()), DpopError::kBadJwk);
  Json string_jwk = Header(es256_);
  string_jwk["jwk"] = es256_.jwk().dump();
  ExpectRefused(verifier.Verify(SignJws(es256_, string_jwk, Claims()), Check()),
                DpopError::kBadJwk);
  Json p384 = Header(es256_);
  p384["jwk"]["crv"] = "P-384";
  ExpectRefused(verifier.Verify(SignJws(es256_, p384, Claims()), Check()), DpopError::kBadJwk);
}

TEST_F(DpopTest, RefusesCrit) {
  DpopVerifier verifier(clock_);
  Json header = Header(es256_);
  header["crit"] = Json::array({"exp"});
  ExpectRefused(verifier.Verify(SignJws(es256_, header, Claims()), Check()),
                DpopError::kUnsupportedCrit);
}

TEST_F(DpopTest, RefusesBadSignature) {
  DpopVerifier verifier(clock_);
  for (const TestKey* key : {&es256_, &ed25519_}) {
    SCOPED_TRACE(key->alg());
    const std::string input = B64(Header(*key)) + "." + B64(Claims());
    std::string sig = key->Sign(input);
    sig[10] ^= 0x04;
    ExpectRefused(verifier.Verify(input + "." + crypto::Base64UrlEncode(sig), Check()),
                  DpopError::kBadSignature);

    // Signed, then the claims swapped for others.
    const std::string signed_jwt = SignJws(*key, Header(*key), Claims());
    Json other = Claims();
    other["htu"] = "https://custos.example/elsewhere";
    const std::string tampered =
        B64(Header(*key)) + "." + B64(other) + signed_jwt.substr(signed_jwt.rfind('.'));
    ExpectRefused(verifier.Verify(tampered, Check()), DpopError::kBadSignature);

    ExpectRefused(verifier.Verify(input + ".", Check()), DpopError::kBadSignature);
  }
  // Signed by one key, carrying another's jwk.
  TestKey other_ed = TestKey::Ed25519(8);
  ExpectRefused(verifier.Verify(SignJws(other_ed, Header(ed25519_), Claims()), Check()),
                DpopError::kBadSignature);
  ExpectRefused(verifier.Verify(SignJws(TestKey::Es256(), Header(es256_), Claims()), Check()),
                DpopError::kBadSignature);
}

TEST_F(DpopTest, RefusesOtherMethod) {
  DpopVerifier verifier(clock_);
  DpopCheck post = Check();
  post.method = "POST";
  ExpectRefused(verifier.Verify(Proof(es256_), post), DpopError::kHtmMismatch);
  DpopCheck lower = Check();
  lower.method = "get";
  ExpectRefused(verifier.Verify(Proof(es256_), lower), DpopError::kHtmMismatch);
}

TEST_F(DpopTest, RefusesOtherUrl) {
  DpopVerifier verifier(clock_);
  for (const char* url : {"https://custos.example/provider/api/v1/support/tenants/t1",
                          "https://custos.example/provider/api/v1/support/Tenants",
                          "https://other.example/provider/api/v1/support/tenants",
                          "http://custos.example/provider/api/v1/support/tenants",
                          "https://custos.example:8443/provider/api/v1/support/tenants"}) {
    SCOPED_TRACE(url);
    DpopCheck check = Check();
    check.url = url;
    ExpectRefused(verifier.Verify(Proof(es256_), check), DpopError::kHtuMismatch);
  }
  Json claims = Claims();
  claims["htu"] = "not a url";
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), claims), Check()),
                DpopError::kHtuMismatch);
}

TEST_F(DpopTest, IgnoresQueryAndFragmentAndNormalisesUrl) {
  DpopVerifier verifier(clock_);
  for (const char* url : {"https://custos.example/provider/api/v1/support/tenants?limit=5&after=x",
                          "https://custos.example/provider/api/v1/support/tenants#frag",
                          "HTTPS://CUSTOS.example:443/provider/api/v1/support/tenants?q",
                          "https://custos.example/provider/api/v1/%73upport/tenants"}) {
    SCOPED_TRACE(url);
    DpopCheck check = Check();
    check.url = url;
    absl::StatusOr<DpopResult> result = verifier.Verify(Proof(es256_), check);
    EXPECT_TRUE(result.ok()) << result.status();
  }
  // A query in htu is ignored too (RFC 9449 4.3 step 9).
  Json claims = Claims();
  claims["htu"] = std::string(kUrl) + "?limit=5";
  EXPECT_TRUE(verifier.Verify(SignJws(es256_, Header(es256_), claims), Check()).ok());
}

TEST(NormalizeHtu, Cases) {
  EXPECT_EQ(NormalizeHtu("https://Example.COM"), "https://example.com/");
  EXPECT_EQ(NormalizeHtu("http://example.com:80/a"), "http://example.com/a");
  EXPECT_EQ(NormalizeHtu("http://example.com:443/a"), "http://example.com:443/a");
  EXPECT_EQ(NormalizeHtu("https://example.com:/a"), "https://example.com/a");
  EXPECT_EQ(NormalizeHtu("https://[::1]:8443/a/./b/../c"), "https://[::1]:8443/a/c");
  EXPECT_EQ(NormalizeHtu("https://example.com/a%2fb%7E"), "https://example.com/a%2Fb~");
  EXPECT_EQ(NormalizeHtu("https://example.com/A?x#y"), "https://example.com/A");
  EXPECT_EQ(NormalizeHtu("ftp://example.com/"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("https://user@example.com/"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("https:///path"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("https://example.com:99999/"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("https://example.com/a b"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("https://example.com/%zz"), std::nullopt);
  EXPECT_EQ(NormalizeHtu("/relative"), std::nullopt);
}

TEST_F(DpopTest, RefusesIatOutsideTheWindow) {
  DpopVerifier verifier(clock_);
  const std::string old_proof = Proof(es256_);
  clock_.Advance(absl::Seconds(61));
  ExpectRefused(verifier.Verify(old_proof, Check()), DpopError::kIatTooOld);

  const std::string edge_proof = Proof(es256_);
  clock_.Advance(absl::Seconds(60));
  EXPECT_TRUE(verifier.Verify(edge_proof, Check()).ok()) << "exactly max_age old is accepted";

  Json future = Claims();
  future["iat"] = absl::ToUnixSeconds(clock_.Now() + absl::Seconds(61));
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), future), Check()),
                DpopError::kIatInFuture);
  Json skewed = Claims();
  skewed["iat"] = absl::ToUnixSeconds(clock_.Now() + absl::Seconds(30));
  EXPECT_TRUE(verifier.Verify(SignJws(es256_, Header(es256_), skewed), Check()).ok());
}

TEST_F(DpopTest, WindowIsConfigurable) {
  DpopVerifier verifier(clock_, {.max_age = absl::Minutes(5), .max_clock_skew = absl::Seconds(5)});
  const std::string proof = Proof(ed25519_);
  clock_.Advance(absl::Minutes(4));
  EXPECT_TRUE(verifier.Verify(proof, Check()).ok());
  Json future = Claims();
  future["iat"] = absl::ToUnixSeconds(clock_.Now() + absl::Seconds(10));
  ExpectRefused(verifier.Verify(SignJws(ed25519_, Header(ed25519_), future), Check()),
                DpopError::kIatInFuture);
}

TEST_F(DpopTest, RefusesMissingOrMismatchedAth) {
  DpopVerifier verifier(clock_);
  Json no_ath = Claims();
  no_ath.erase("ath");
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), no_ath), Check()),
                DpopError::kAthMissing);

  DpopCheck other_token = Check();
  other_token.access_token = "another-token";
  ExpectRefused(verifier.Verify(Proof(es256_), other_token), DpopError::kAthMismatch);

  Json wrong_type = Claims();
  wrong_type["ath"] = 5;
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), wrong_type), Check()),
                DpopError::kAthMissing);

  // At the token endpoint there is no access token yet, and no ath is needed.
  DpopCheck token_request = Check();
  token_request.access_token.reset();
  EXPECT_TRUE(verifier.Verify(SignJws(es256_, Header(es256_), no_ath), token_request).ok());
}

TEST_F(DpopTest, RefusesReplayedJtiPerKey) {
  DpopVerifier verifier(clock_);
  const std::string proof = SignJws(es256_, Header(es256_), Claims("same"));
  ASSERT_TRUE(verifier.Verify(proof, Check()).ok());
  ExpectRefused(verifier.Verify(proof, Check()), DpopError::kReplayed);
  // A fresh signature with the same jti and key is a replay too.
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), Claims("same")), Check()),
                DpopError::kReplayed);
  // Another key may use the same jti.
  EXPECT_TRUE(verifier.Verify(SignJws(ed25519_, Header(ed25519_), Claims("same")), Check()).ok());
  EXPECT_EQ(verifier.ReplayCacheSize(), 2u);

  // Once the window has passed the entries are forgotten, and the proof is too old anyway.
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(verifier.ReplayCacheSize(), 0u);
  ExpectRefused(verifier.Verify(proof, Check()), DpopError::kIatTooOld);
}

TEST_F(DpopTest, ReplayCacheIsBounded) {
  DpopVerifier verifier(clock_, {.max_replay_entries = 3, .max_replay_entries_per_key = 2});
  ASSERT_TRUE(verifier.Verify(Proof(es256_), Check()).ok());
  ASSERT_TRUE(verifier.Verify(Proof(es256_), Check()).ok());
  ExpectRefused(verifier.Verify(Proof(es256_), Check()), DpopError::kReplayCacheFull);
  ASSERT_TRUE(verifier.Verify(Proof(ed25519_), Check()).ok());
  TestKey third = TestKey::Ed25519(9);
  ExpectRefused(verifier.Verify(Proof(third), Check()), DpopError::kReplayCacheFull);
  EXPECT_EQ(verifier.ReplayCacheSize(), 3u);

  clock_.Advance(absl::Seconds(61));
  EXPECT_TRUE(verifier.Verify(Proof(third), Check()).ok());
  EXPECT_EQ(verifier.ReplayCacheSize(), 1u);
}

TEST_F(DpopTest, RefusesMalformedProofs) {
  DpopVerifier verifier(clock_);
  const std::string good = Proof(es256_);
  const std::string header_payload = good.substr(0, good.rfind('.'));
  ExpectRefused(verifier.Verify("", Check()), DpopError::kMalformed);
  ExpectRefused(verifier.Verify(header_payload, Check()), DpopError::kMalformed);
  ExpectRefused(verifier.Verify(good.substr(0, good.find('.')), Check()), DpopError::kMalformed);
  ExpectRefused(verifier.Verify(good + ".x", Check()), DpopError::kMalformed);
  ExpectRefused(verifier.Verify(".." + good.substr(good.rfind('.') + 1), Check()),
                DpopError::kMalformed);
  ExpectRefused(verifier.Verify(std::string(kMaxProofLength + 1, 'a'), Check()),
                DpopError::kMalformed);
  ExpectRefused(verifier.Verify(good + ", " + good, Check()), DpopError::kMultipleProofs);
}

TEST_F(DpopTest, RefusesGarbageEncoding) {
  DpopVerifier verifier(clock_);
  const std::string good = Proof(es256_);
  const size_t dot1 = good.find('.');
  const size_t dot2 = good.rfind('.');
  ExpectRefused(verifier.Verify("!!!.@@@.###", Check()), DpopError::kBadEncoding);
  ExpectRefused(verifier.Verify("e30." + good.substr(dot1 + 1) + "*", Check()),
                DpopError::kBadEncoding);
  ExpectRefused(verifier.Verify(good.substr(0, dot2) + ".a+b/", Check()), DpopError::kBadEncoding);
  // Valid base64url of something that is not a JSON object.
  ExpectRefused(verifier.Verify(crypto::Base64UrlEncode("not json") + good.substr(dot1), Check()),
                DpopError::kBadEncoding);
  ExpectRefused(
      verifier.Verify(
          good.substr(0, dot1 + 1) + crypto::Base64UrlEncode("[1,2]") + good.substr(dot2), Check()),
      DpopError::kBadEncoding);
}

TEST_F(DpopTest, RefusesMissingOrBadClaims) {
  DpopVerifier verifier(clock_);
  for (const char* claim : {"jti", "htm", "htu", "iat"}) {
    SCOPED_TRACE(claim);
    Json claims = Claims();
    claims.erase(claim);
    ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), claims), Check()),
                  DpopError::kMissingClaim);
    claims[claim] = Json::array();
    ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), claims), Check()),
                  DpopError::kMissingClaim);
  }
  Json string_iat = Claims();
  string_iat["iat"] = std::to_string(absl::ToUnixSeconds(clock_.Now()));
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), string_iat), Check()),
                DpopError::kMissingClaim);

  ExpectRefused(
      verifier.Verify(SignJws(es256_, Header(es256_), Claims(std::string(129, 'j'))), Check()),
      DpopError::kBadJti);
  Json empty_jti = Claims();
  empty_jti["jti"] = "";
  ExpectRefused(verifier.Verify(SignJws(es256_, Header(es256_), empty_jti), Check()),
                DpopError::kBadJti);
  EXPECT_TRUE(
      verifier
          .Verify(SignJws(es256_, Header(es256_), Claims(std::string(kMaxJtiLength, 'j'))), Check())
          .ok());
}

TEST_F(DpopTest, BadRequestUrlIsTheCallersError) {
  DpopVerifier verifier(clock_);
  DpopCheck check = Check();
  check.url = "/provider/api/v1/support/tenants";
  absl::StatusOr<DpopResult> result = verifier.Verify(Proof(es256_), check);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DpopErrorOf(result.status()), std::nullopt);
}

TEST_F(DpopTest, ConcurrentReplaysAcceptOnlyOne) {
  DpopVerifier verifier(clock_);
  const std::string proof = Proof(ed25519_);
  std::atomic<int> accepted{0};
  std::atomic<int> replayed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<DpopResult> r = verifier.Verify(proof, Check());
      if (r.ok()) ++accepted;
      if (DpopErrorOf(r.status()) == DpopError::kReplayed) ++replayed;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 1);
  EXPECT_EQ(replayed.load(), 7);
}

TEST_F(DpopTest, MemoryReplayCacheRemembersEachKeysJtiUntilItExpires) {
  MemoryDpopReplayCache cache(clock_, DpopOptions{});
  const absl::Time expires = clock_.Now() + absl::Seconds(60);
  EXPECT_EQ(cache.Remember("jkt-a", "jti-1", expires).value(), std::nullopt);
  EXPECT_EQ(cache.Remember("jkt-a", "jti-1", expires).value(), DpopError::kReplayed);
  EXPECT_EQ(cache.Remember("jkt-b", "jti-1", expires).value(), std::nullopt) << "another key";
  EXPECT_EQ(cache.Size(), 2u);
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(cache.Remember("jkt-a", "jti-1", clock_.Now() + absl::Seconds(60)).value(),
            std::nullopt);
  EXPECT_EQ(cache.Size(), 1u);
}

// Two verifiers on one cache stand for two servers on one shared cache: a proof accepted by one
// is a replay at the other.
TEST_F(DpopTest, VerifiersSharingACacheRefuseEachOthersProofs) {
  MemoryDpopReplayCache shared(clock_, DpopOptions{});
  DpopVerifier node_a(clock_, {}, &shared);
  DpopVerifier node_b(clock_, {}, &shared);
  const std::string proof = Proof(es256_);
  ASSERT_TRUE(node_a.Verify(proof, Check()).ok());
  ExpectRefused(node_b.Verify(proof, Check()), DpopError::kReplayed);
  // Record after Verify(record = false), as the access gate does.
  DpopCheck later = Check();
  later.record = false;
  absl::StatusOr<DpopResult> checked = node_b.Verify(Proof(ed25519_), later);
  ASSERT_TRUE(checked.ok()) << checked.status();
  ASSERT_TRUE(node_b.Record(*checked).ok());
  EXPECT_EQ(DpopErrorOf(node_a.Record(*checked)), DpopError::kReplayed);
  EXPECT_EQ(shared.Size(), 2u);
  EXPECT_EQ(node_a.ReplayCacheSize(), 0u) << "the verifiers keep nothing of their own";
}

class UnavailableReplayCache final : public DpopReplayCache {
 public:
  absl::StatusOr<std::optional<DpopError>> Remember(const std::string&, const std::string&,
                                                    absl::Time) override {
    ++calls;
    return absl::UnavailableError("the store is away");
  }
  int calls = 0;
};

TEST_F(DpopTest, AProofIsRefusedWhenTheCacheCannotTell) {
  UnavailableReplayCache broken;
  DpopVerifier verifier(clock_, {}, &broken);
  absl::StatusOr<DpopResult> result = verifier.Verify(Proof(es256_), Check());
  ASSERT_FALSE(result.ok()) << "a proof that cannot be checked for replay is not accepted";
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_EQ(DpopErrorOf(result.status()), std::nullopt) << "the proof itself is not to blame";
  EXPECT_EQ(std::string(result.status().message()), kReplayCacheUnavailable)
      << "the store's error is for the server log, not for the client";
  EXPECT_EQ(broken.calls, 1);

  DpopCheck later = Check();
  later.record = false;
  absl::StatusOr<DpopResult> checked = verifier.Verify(Proof(es256_), later);
  ASSERT_TRUE(checked.ok()) << checked.status();
  const absl::Status recorded = verifier.Record(*checked);
  EXPECT_EQ(recorded.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(recorded.message()), Not(HasSubstr("the store is away")));
}

TEST(DpopErrorCode, CodesAreDistinctAndStable) {
  EXPECT_EQ(DpopErrorCode(DpopError::kHtuMismatch), "dpop_htu_mismatch");
  EXPECT_EQ(DpopErrorCode(DpopError::kReplayed), "dpop_replayed");
  std::set<std::string_view> codes;
  for (int i = 0; i <= static_cast<int>(DpopError::kReplayCacheFull); ++i) {
    const std::string_view code = DpopErrorCode(static_cast<DpopError>(i));
    EXPECT_THAT(std::string(code), StartsWith("dpop_"));
    EXPECT_NE(code, "dpop_unknown");
    codes.insert(code);
  }
  EXPECT_EQ(codes.size(), static_cast<size_t>(DpopError::kReplayCacheFull) + 1);
  EXPECT_EQ(DpopErrorOf(absl::UnauthenticatedError("dpop_replayed: no payload")), std::nullopt);
}

}  // namespace
}  // namespace custos::support
