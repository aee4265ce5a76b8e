#include "oidc/jwt.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/encoding.h"
#include "support/jwk.h"
#include "support/jws.h"

namespace custos::oidc {
namespace {

using ::testing::HasSubstr;

std::filesystem::path SourceDir() {
  if (const char* src = std::getenv("CUSTOS_SOURCE_DIR"); src != nullptr) return src;
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

// tests/testdata/oidc/jwts.json (see its README): JWTs made by the jose npm package.
Json JoseTokens() {
  std::ifstream in(SourceDir() / "tests/testdata/oidc/jwts.json");
  std::stringstream text;
  text << in.rdbuf();
  Json file = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  return file.is_object() ? file.value("tokens", Json::array()) : Json::array();
}

std::string B64(std::string_view s) { return crypto::Base64UrlEncode(s); }

// A lookup that serves one key for one kid and counts its calls.
struct OneKey {
  std::string kid;
  support::PublicJwk key;
  int* calls = nullptr;

  KeyLookup Lookup() const {
    return [this](const Json& header) -> absl::StatusOr<support::PublicJwk> {
      if (calls != nullptr) ++*calls;
      if (header.value("kid", "") != kid) return absl::NotFoundError("no such kid");
      return key;
    };
  }
};

support::PublicJwk PublicOf(const SigningKey& key) {
  absl::StatusOr<support::PublicJwk> parsed = support::ParsePublicJwk(key.PublicJwk("k"));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : support::PublicJwk{};
}

const Json kClaims = {{"iss", "https://custos.example/t/acme"},
                      {"sub", "00u1"},
                      {"aud", "client-1"},
                      {"iat", 1767225600},
                      {"exp", 1767229200}};

class JwtAlgTest : public ::testing::TestWithParam<std::string_view> {};

INSTANTIATE_TEST_SUITE_P(Algs, JwtAlgTest, ::testing::Values(kAlgEs256, kAlgEdDsa),
                         [](const auto& info) { return std::string(info.param); });

TEST(JwtJoseTest, VerifiesTokensMadeByJose) {
  const Json tokens = JoseTokens();
  ASSERT_EQ(tokens.size(), 2u) << "tests/testdata/oidc/jwts.json is missing or incomplete";
  for (const Json& t : tokens) {
    SCOPED_TRACE(t["name"].get<std::string>());
    absl::StatusOr<support::PublicJwk> key = support::ParsePublicJwk(t["jwk"]);
    ASSERT_TRUE(key.ok()) << key.status();
    OneKey lookup{t["jwk"]["kid"].get<std::string>(), *key};
    absl::StatusOr<VerifiedJwt> verified = VerifyJwt(t["jwt"].get<std::string>(), lookup.Lookup());
    ASSERT_TRUE(verified.ok()) << verified.status();
    EXPECT_EQ(verified->claims, t["claims"]);
    EXPECT_EQ(verified->header["alg"], t["alg"]);
    EXPECT_EQ(verified->header["typ"], "JWT");
    const absl::Time iat = absl::FromUnixSeconds(t["claims"]["iat"].get<int64_t>());
    EXPECT_TRUE(CheckTimes(verified->claims, iat, absl::ZeroDuration(), true).ok());
    EXPECT_FALSE(
        CheckTimes(verified->claims, iat + absl::Hours(1), absl::ZeroDuration(), true).ok());

    // The same token under the other test key fails.
    const Json& other = tokens[t["name"] == "es256" ? 1 : 0];
    absl::StatusOr<support::PublicJwk> other_key = support::ParsePublicJwk(other["jwk"]);
    ASSERT_TRUE(other_key.ok());
    OneKey wrong{lookup.kid, *other_key};
    EXPECT_FALSE(VerifyJwt(t["jwt"].get<std::string>(), wrong.Lookup()).ok());
  }
}

TEST(JwtJoseTest, ImportsJosePrivateKeysAndSignsForTheirPublicKeys) {
  const Json tokens = JoseTokens();
  ASSERT_EQ(tokens.size(), 2u);
  for (const Json& t : tokens) {
    SCOPED_TRACE(t["name"].get<std::string>());
    std::optional<std::string> bytes =
        crypto::Base64UrlDecode(t["private_bytes"].get<std::string>());
    ASSERT_TRUE(bytes.has_value());
    absl::StatusOr<SigningKey> key =
        SigningKey::FromPrivateBytes(t["alg"].get<std::string>(), *bytes);
    ASSERT_TRUE(key.ok()) << key.status();
    Json ours = key->PublicJwk("jose-kid");
    EXPECT_EQ(ours["x"], t["jwk"]["x"]);
    EXPECT_EQ(ours.value("y", Json()), t["jwk"].value("y", Json()));
    EXPECT_EQ(key->PrivateBytes(), *bytes);

    absl::StatusOr<support::PublicJwk> theirs = support::ParsePublicJwk(t["jwk"]);
    ASSERT_TRUE(theirs.ok());
    absl::StatusOr<std::string> jwt = SignJwt(*key, "jose-kid", "JWT", kClaims);
    ASSERT_TRUE(jwt.ok()) << jwt.status();
    OneKey lookup{"jose-kid", *theirs};
    EXPECT_TRUE(VerifyJwt(*jwt, lookup.Lookup()).ok());
  }
}

TEST_P(JwtAlgTest, OurSignatureVerifiesIndependently) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(GetParam());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->alg(), GetParam());
  absl::StatusOr<std::string> jwt = SignJwt(*key, "kid-1", "at+jwt", kClaims);
  ASSERT_TRUE(jwt.ok()) << jwt.status();

  std::optional<support::CompactJwsParts> parts = support::SplitCompactJws(*jwt);
  ASSERT_TRUE(parts.has_value());
  std::optional<Json> header = support::DecodeJwsObject(parts->header);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(*header, (Json{{"alg", GetParam()}, {"kid", "kid-1"}, {"typ", "at+jwt"}}));
  EXPECT_EQ(support::DecodeJwsObject(parts->payload), kClaims);
  std::optional<std::string> signature = crypto::Base64UrlDecode(parts->signature);
  ASSERT_TRUE(signature.has_value());
  EXPECT_EQ(signature->size(), 64u);

  // support::VerifyJwsSignature, given the key as a relying party sees it in the JWKS.
  absl::StatusOr<support::PublicJwk> published = support::ParsePublicJwk(key->PublicJwk("kid-1"));
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_TRUE(
      support::VerifyJwsSignature(*published, GetParam(), parts->signing_input, *signature));

  OneKey lookup{"kid-1", *published};
  absl::StatusOr<VerifiedJwt> verified = VerifyJwt(*jwt, lookup.Lookup());
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->claims, kClaims);
  EXPECT_EQ(verified->header["typ"], "at+jwt");
}

TEST_P(JwtAlgTest, PublicJwkIsPublicAndLabelled) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  Json jwk = key->PublicJwk("kid-7");
  EXPECT_EQ(jwk["kid"], "kid-7");
  EXPECT_EQ(jwk["alg"], GetParam());
  EXPECT_EQ(jwk["use"], "sig");
  EXPECT_FALSE(support::HasPrivateKeyMembers(jwk));
  absl::StatusOr<support::PublicJwk> parsed = support::ParsePublicJwk(jwk);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(support::JwsAlgorithmFor(*parsed), GetParam());
}

TEST_P(JwtAlgTest, PrivateBytesRoundTrip) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  const std::string bytes = key->PrivateBytes();
  ASSERT_FALSE(bytes.empty());
  if (GetParam() == kAlgEdDsa) {
    EXPECT_EQ(bytes.size(), 32u);
  }
  absl::StatusOr<SigningKey> again = SigningKey::FromPrivateBytes(GetParam(), bytes);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->PublicJwk("k"), key->PublicJwk("k"));

  // The restored key signs for the original public key.
  absl::StatusOr<std::string> signature = again->Sign("input");
  ASSERT_TRUE(signature.ok());
  EXPECT_TRUE(support::VerifyJwsSignature(PublicOf(*key), GetParam(), "input", *signature));

  absl::StatusOr<SigningKey> fresh = SigningKey::Generate(GetParam());
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->PublicJwk("k"), key->PublicJwk("k"));
}

TEST(SigningKeyTest, RefusesOtherAlgorithmsAndWrongBytes) {
  EXPECT_EQ(SigningKey::Generate("HS256").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::Generate("none").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::Generate("RS256").status().code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<SigningKey> es = SigningKey::Generate(kAlgEs256);
  absl::StatusOr<SigningKey> ed = SigningKey::Generate(kAlgEdDsa);
  ASSERT_TRUE(es.ok() && ed.ok());
  const std::string pkcs8 = es->PrivateBytes();
  const std::string seed = ed->PrivateBytes();
  auto code = [](const absl::StatusOr<SigningKey>& k) { return k.status().code(); };
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEs256, seed)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEdDsa, pkcs8)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEs256, pkcs8 + "x")),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEs256, pkcs8.substr(0, pkcs8.size() - 1))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEdDsa, seed.substr(0, 31))),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes("HS256", seed)), absl::StatusCode::kInvalidArgument);

  // A PKCS#8 key of another curve is not an ES256 key.
  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  ASSERT_NE(p384, nullptr);
  PKCS8_PRIV_KEY_INFO* info = EVP_PKEY2PKCS8(p384);
  ASSERT_NE(info, nullptr);
  unsigned char* der = nullptr;
  const int length = i2d_PKCS8_PRIV_KEY_INFO(info, &der);
  ASSERT_GT(length, 0);
  const std::string p384_bytes(reinterpret_cast<const char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  PKCS8_PRIV_KEY_INFO_free(info);
  EVP_PKEY_free(p384);
  EXPECT_EQ(code(SigningKey::FromPrivateBytes(kAlgEs256, p384_bytes)),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(JwtAlgTest, SignsFromManyThreadsAtOnce) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(GetParam());
  ASSERT_TRUE(key.ok());
  const support::PublicJwk pub = PublicOf(*key);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string input = "input-" + std::to_string(t) + "-" + std::to_string(i);
        absl::StatusOr<std::string> sig = key->Sign(input);
        if (sig.ok() && support::VerifyJwsSignature(pub, GetParam(), input, *sig)) ++good;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(good.load(), kThreads * kEach);
}

class JwtVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<SigningKey> key = SigningKey::Generate(kAlgEs256);
    ASSERT_TRUE(key.ok());
    key_ = std::make_unique<SigningKey>(*std::move(key));
    lookup_ = OneKey{"kid-1", PublicOf(*key_), &calls_};
    absl::StatusOr<std::string> jwt = SignJwt(*key_, "kid-1", "JWT", kClaims);
    ASSERT_TRUE(jwt.ok());
    jwt_ = *jwt;
    parts_ = *support::SplitCompactJws(jwt_);
  }

  absl::Status Verify(std::string_view jwt) { return VerifyJwt(jwt, lookup_.Lookup()).status(); }

  // A JWT with `header` and our claims, signed by our key over exactly what it carries.
  std::string SignedWithHeader(const Json& header) {
    std::string input = B64(DumpJson(header)) + "." + B64(DumpJson(kClaims));
    return input + "." + B64(*key_->Sign(input));
  }

  std::unique_ptr<SigningKey> key_;
  int calls_ = 0;
  OneKey lookup_;
  std::string jwt_;
  support::CompactJwsParts parts_;
};

TEST_F(JwtVerifyTest, AcceptsTheUntamperedToken) { EXPECT_TRUE(Verify(jwt_).ok()); }

TEST_F(JwtVerifyTest, RefusesTamperedTokens) {
  const std::string header(parts_.header);
  const std::string signature(parts_.signature);

  Json claims = kClaims;
  claims["sub"] = "00uadmin";
  EXPECT_THAT(Verify(header + "." + B64(DumpJson(claims)) + "." + signature).message(),
              HasSubstr("signature"));

  // One bit of the signature.
  std::string raw = *crypto::Base64UrlDecode(signature);
  raw[10] ^= 0x01;
  EXPECT_FALSE(Verify(header + "." + std::string(parts_.payload) + "." + B64(raw)).ok());
  // Truncated, empty, or not base64url.
  EXPECT_FALSE(
      Verify(header + "." + std::string(parts_.payload) + "." + B64(raw.substr(0, 63))).ok());
  EXPECT_FALSE(Verify(header + "." + std::string(parts_.payload) + ".").ok());
  EXPECT_FALSE(Verify(header + "." + std::string(parts_.payload) + ".*!").ok());

  // The header changed (another kid's key would be looked up; same kid, other typ fails).
  Json other_header = {{"alg", "ES256"}, {"kid", "kid-1"}, {"typ", "at+jwt"}};
  EXPECT_FALSE(
      Verify(B64(DumpJson(other_header)) + "." + std::string(parts_.payload) + "." + signature)
          .ok());

  // Signed by another key under the same kid.
  absl::StatusOr<SigningKey> other = SigningKey::Generate(kAlgEs256);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(Verify(*SignJwt(*other, "kid-1", "JWT", kClaims)).ok());
}

TEST_F(JwtVerifyTest, RefusesAlgNoneAndMacsBeforeLookingUpAKey) {
  const std::string payload(parts_.payload);
  for (std::string_view alg : {"none", "HS256", "HS512", "RS256", "PS256", "ES384", "", "es256"}) {
    SCOPED_TRACE(std::string(alg));
    const std::string header = B64(DumpJson(Json{{"alg", alg}, {"kid", "kid-1"}}));
    absl::Status st = Verify(header + "." + payload + ".");
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("alg"));
    // A MAC keyed with the public key's bytes (algorithm confusion) is refused just the same.
    st = Verify(header + "." + payload + "." + std::string(parts_.signature));
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  }
  const std::string no_alg = B64(DumpJson(Json{{"kid", "kid-1"}}));
  EXPECT_FALSE(Verify(no_alg + "." + payload + "." + std::string(parts_.signature)).ok());
  const std::string alg_number = B64(DumpJson(Json{{"alg", 1}, {"kid", "kid-1"}}));
  EXPECT_FALSE(Verify(alg_number + "." + payload + "." + std::string(parts_.signature)).ok());
  EXPECT_EQ(calls_, 0);
}

TEST_F(JwtVerifyTest, RefusesAnAlgThatDoesNotGoWithTheKey) {
  // An EdDSA header over an ES256 key: the signature check must not accept it.
  EXPECT_FALSE(Verify(SignedWithHeader({{"alg", "EdDSA"}, {"kid", "kid-1"}})).ok());
  EXPECT_TRUE(Verify(SignedWithHeader({{"alg", "ES256"}, {"kid", "kid-1"}})).ok());
}

TEST_F(JwtVerifyTest, RefusesCriticalExtensions) {
  absl::Status st = Verify(
      SignedWithHeader({{"alg", "ES256"}, {"kid", "kid-1"}, {"crit", {"b64"}}, {"b64", false}}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("crit"));
}

TEST_F(JwtVerifyTest, UnknownKidIsInvalidAndLookupFailuresPassThrough) {
  absl::StatusOr<std::string> jwt = SignJwt(*key_, "kid-2", "JWT", kClaims);
  ASSERT_TRUE(jwt.ok());
  EXPECT_EQ(Verify(*jwt).code(), absl::StatusCode::kInvalidArgument);

  KeyLookup broken = [](const Json&) -> absl::StatusOr<support::PublicJwk> {
    return absl::UnavailableError("store down");
  };
  EXPECT_EQ(VerifyJwt(jwt_, broken).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(JwtVerifyTest, RefusesMalformedTokens) {
  const std::string header(parts_.header);
  const std::string payload(parts_.payload);
  const std::string signature(parts_.signature);
  for (const std::string& bad : {
           std::string(""),
           header + "." + payload,
           jwt_ + ".",
           jwt_ + ".extra",
           "." + payload + "." + signature,
           header + ".." + signature,
           B64("not json") + "." + payload + "." + signature,
           B64("[1]") + "." + payload + "." + signature,
           header + "." + B64("[1,2]") + "." + signature,
           header + "." + B64("\"text\"") + "." + signature,
       }) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(Verify(bad).code(), absl::StatusCode::kInvalidArgument);
  }
  // Claims that are a signed array are still refused.
  std::string input = header + "." + B64("[1]");
  EXPECT_EQ(Verify(input + "." + B64(*key_->Sign(input))).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SignJwtTest, RefusesClaimsThatAreNotAnObject) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(kAlgEdDsa);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(SignJwt(*key, "k", "JWT", Json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

class CheckTimesTest : public ::testing::Test {
 protected:
  static constexpr int64_t kNow = 1767225600;
  const absl::Time now_ = absl::FromUnixSeconds(kNow);

  absl::Status Check(const Json& claims, absl::Duration leeway = absl::ZeroDuration(),
                     bool require_exp = true) {
    return CheckTimes(claims, now_, leeway, require_exp);
  }
};

TEST_F(CheckTimesTest, ExpiresOnTheSecondOfExp) {
  EXPECT_TRUE(Check({{"exp", kNow + 1}}).ok());
  EXPECT_THAT(Check({{"exp", kNow}}).message(), HasSubstr("expired"));
  EXPECT_FALSE(Check({{"exp", kNow - 1}}).ok());
  EXPECT_FALSE(Check({{"exp", -1}}).ok());
  // Fractional NumericDates (RFC 7519 2).
  EXPECT_TRUE(Check({{"exp", kNow + 0.5}}).ok());
  EXPECT_FALSE(Check({{"exp", kNow - 0.5}}).ok());
}

TEST_F(CheckTimesTest, LeewayExtendsEveryBound) {
  const absl::Duration leeway = absl::Seconds(30);
  EXPECT_TRUE(Check({{"exp", kNow - 29}}, leeway).ok());
  EXPECT_FALSE(Check({{"exp", kNow - 30}}, leeway).ok());
  EXPECT_TRUE(Check({{"exp", kNow + 60}, {"nbf", kNow + 30}}, leeway).ok());
  EXPECT_FALSE(Check({{"exp", kNow + 60}, {"nbf", kNow + 31}}, leeway).ok());
  EXPECT_TRUE(Check({{"exp", kNow + 60}, {"iat", kNow + 30}}, leeway).ok());
  EXPECT_FALSE(Check({{"exp", kNow + 60}, {"iat", kNow + 31}}, leeway).ok());
}

TEST_F(CheckTimesTest, NotBeforeAndIssuedAt) {
  EXPECT_TRUE(Check({{"exp", kNow + 60}, {"nbf", kNow}, {"iat", kNow}}).ok());
  EXPECT_THAT(Check({{"exp", kNow + 60}, {"nbf", kNow + 1}}).message(), HasSubstr("nbf"));
  EXPECT_THAT(Check({{"exp", kNow + 60}, {"iat", kNow + 1}}).message(), HasSubstr("iat"));
  EXPECT_TRUE(Check({{"exp", kNow + 60}, {"iat", kNow - 86400}}).ok());
}

TEST_F(CheckTimesTest, ExpRequiredOnlyWhenAsked) {
  EXPECT_THAT(Check(Json::object()).message(), HasSubstr("exp"));
  EXPECT_TRUE(Check(Json::object(), absl::ZeroDuration(), /*require_exp=*/false).ok());
  EXPECT_FALSE(Check({{"nbf", kNow + 1}}, absl::ZeroDuration(), false).ok());
}

TEST_F(CheckTimesTest, RefusesTimesThatAreNotNumbers) {
  for (const Json& value : {Json(std::to_string(kNow + 60)), Json(true), Json(nullptr),
                            Json::array({kNow + 60}), Json::object()}) {
    SCOPED_TRACE(value.dump());
    EXPECT_EQ(Check({{"exp", value}}).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Check({{"exp", kNow + 60}, {"nbf", value}}).code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Check({{"exp", kNow + 60}, {"iat", value}}).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Check(Json::array()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CheckTimesTest, HugeValuesSaturateInsteadOfWrapping) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_TRUE(Check({{"exp", max}}).ok());
  EXPECT_TRUE(Check({{"exp", 1e300}}).ok());
  EXPECT_FALSE(Check({{"exp", -1e300}}).ok());
  EXPECT_FALSE(Check({{"exp", kNow + 60}, {"nbf", max}}).ok());
  EXPECT_FALSE(Check({{"exp", kNow + 60}, {"iat", 1e300}}).ok());
  EXPECT_TRUE(Check({{"exp", std::numeric_limits<int64_t>::max()}}, absl::Seconds(30)).ok());
  // Parsed text, where positive integers are unsigned.
  absl::StatusOr<Json> parsed = ParseJson(R"({"exp": 18446744073709551615, "nbf": -5})");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(Check(*parsed).ok());
}

// SignJwt writes base64url itself and reuses the header and OpenSSL's signing contexts; the
// parts must still be exactly the base64url of the header and claims, whatever their length, and
// every ES256 signature valid, also the ones whose r or s is short in DER (a leading zero byte,
// about one signature in 128).
TEST(SignJwtTest, PartsAreExactBase64UrlAndEveryEs256SignatureVerifies) {
  absl::StatusOr<SigningKey> key = SigningKey::Generate(kAlgEs256);
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<support::PublicJwk> published = support::ParsePublicJwk(key->PublicJwk("k"));
  ASSERT_TRUE(published.ok()) << published.status();
  int short_integers = 0;
  for (int i = 0; i < 2000; ++i) {
    const Json claims = {{"sub", std::string(static_cast<size_t>(i % 7), 's')}, {"n", i}};
    const std::string typ = i % 2 == 0 ? "at+jwt" : "JWT";
    absl::StatusOr<std::string> jwt = SignJwt(*key, "k", typ, claims);
    ASSERT_TRUE(jwt.ok()) << jwt.status();
    std::optional<support::CompactJwsParts> parts = support::SplitCompactJws(*jwt);
    ASSERT_TRUE(parts.has_value());
    ASSERT_EQ(parts->header, B64(DumpJson(Json{{"alg", "ES256"}, {"kid", "k"}, {"typ", typ}})));
    ASSERT_EQ(parts->payload, B64(DumpJson(claims)));
    std::optional<std::string> signature = crypto::Base64UrlDecode(parts->signature);
    ASSERT_TRUE(signature.has_value());
    ASSERT_EQ(signature->size(), 64u);
    if ((*signature)[0] == 0 || (*signature)[32] == 0) ++short_integers;
    ASSERT_TRUE(
        support::VerifyJwsSignature(*published, kAlgEs256, parts->signing_input, *signature))
        << "signature " << i;
  }
  EXPECT_GT(short_integers, 0) << "no signature had a short r or s; the padding went untested";
}

}  // namespace
}  // namespace custos::oidc
