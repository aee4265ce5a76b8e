#include "support/posture.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <memory>
#include <string>

#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/jwk.h"

namespace custos::support {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// 2026-11-29T18:22:42Z
const absl::Time kNow = absl::FromUnixSeconds(1795976562);
constexpr absl::Duration kSkew = absl::Minutes(5);
constexpr std::string_view kDevice = "devAbc123";

// A device key that signs in the test: P-256 with OpenSSL or Ed25519 with libsodium.
class DeviceSigner {
 public:
  static DeviceSigner Es256() {
    DeviceSigner signer;
    signer.alg_ = "ES256";
    signer.pkey_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
    unsigned char point[65];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(signer.pkey_.get(), OSSL_PKEY_PARAM_PUB_KEY, point,
                                    sizeof point, &len);
    const std::string raw(reinterpret_cast<const char*>(point), len);
    signer.jwk_ = {{"kty", "EC"},
                   {"crv", "P-256"},
                   {"x", crypto::Base64UrlEncode(raw.substr(1, 32))},
                   {"y", crypto::Base64UrlEncode(raw.substr(33, 32))}};
    return signer;
  }

  static DeviceSigner Ed25519(uint64_t seed) {
    DeviceSigner signer;
    signer.alg_ = "EdDSA";
    crypto::SeededRandom random(seed);
    signer.seed_ = crypto::ed25519::GenerateSeed(random);
    signer.jwk_ = {
        {"kty", "OKP"},
        {"crv", "Ed25519"},
        {"x", crypto::Base64UrlEncode(*crypto::ed25519::PublicKeyFromSeed(signer.seed_))}};
    return signer;
  }

  // The raw JWS signature: r||s, 32 bytes each, for ES256.
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

  PublicJwk Key() const { return *ParsePublicJwk(jwk_); }
  const std::string& alg() const { return alg_; }

  Json Header() const { return {{"alg", alg_}, {"typ", kPostureJwtType}}; }

  // header.payload.signature, signed by this key.
  std::string SignJws(const Json& header, const Json& payload) const {
    const std::string input =
        crypto::Base64UrlEncode(header.dump()) + "." + crypto::Base64UrlEncode(payload.dump());
    return input + "." + crypto::Base64UrlEncode(Sign(input));
  }

 private:
  std::string alg_;
  std::string seed_;
  std::shared_ptr<EVP_PKEY> pkey_{nullptr, EVP_PKEY_free};
  Json jwk_;
};

Posture GoodPosture() {
  return {.os_name = "Debian GNU/Linux",
          .os_version = "12",
          .disk_encrypted = true,
          .screen_lock = true,
          .edr_running = true,
          .last_patch = "2026-11-20"};
}

Json ReportClaims(absl::Time iat = kNow) {
  return PostureReportClaims(kDevice, GoodPosture(), iat, "jti-1");
}

void ExpectRefused(const absl::StatusOr<PostureReport>& result, std::string_view problem,
                   absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  ASSERT_FALSE(result.ok()) << "accepted, expected a refusal naming " << problem;
  EXPECT_EQ(result.status().code(), code) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(std::string(problem)));
}

class PostureReportTest : public ::testing::Test {
 protected:
  absl::StatusOr<PostureReport> Verify(std::string_view jws) const {
    return VerifyPostureReport(jws, es256_.Key(), kDevice, kNow, kSkew);
  }

  DeviceSigner es256_ = DeviceSigner::Es256();
  DeviceSigner ed25519_ = DeviceSigner::Ed25519(11);
};

TEST_F(PostureReportTest, AcceptsReportSignedWithP256) {
  const std::string jws = es256_.SignJws(es256_.Header(), ReportClaims());
  absl::StatusOr<PostureReport> report = Verify(jws);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(PostureToJson(report->posture), PostureToJson(GoodPosture()));
  EXPECT_EQ(report->iat, kNow);
}

TEST_F(PostureReportTest, AcceptsReportSignedWithEd25519) {
  const std::string jws = ed25519_.SignJws(ed25519_.Header(), ReportClaims());
  absl::StatusOr<PostureReport> report =
      VerifyPostureReport(jws, ed25519_.Key(), kDevice, kNow, kSkew);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(PostureToJson(report->posture), PostureToJson(GoodPosture()));
}

TEST_F(PostureReportTest, AcceptsIatAtEitherEdgeOfSkewAndFullMediaType) {
  EXPECT_TRUE(Verify(es256_.SignJws(es256_.Header(), ReportClaims(kNow - kSkew))).ok());
  EXPECT_TRUE(Verify(es256_.SignJws(es256_.Header(), ReportClaims(kNow + kSkew))).ok());
  const Json header = {{"alg", "ES256"}, {"typ", "application/Custos-Posture+JWT"}};
  EXPECT_TRUE(Verify(es256_.SignJws(header, ReportClaims())).ok());
}

TEST_F(PostureReportTest, RefusesWrongDevice) {
  const std::string jws = es256_.SignJws(
      es256_.Header(), PostureReportClaims("devOther", GoodPosture(), kNow, "jti-1"));
  ExpectRefused(Verify(jws), "device_id");
}

TEST_F(PostureReportTest, RefusesStaleAndFutureIat) {
  ExpectRefused(
      Verify(es256_.SignJws(es256_.Header(), ReportClaims(kNow - kSkew - absl::Seconds(1)))),
      "iat is more than 5m in the past");
  ExpectRefused(
      Verify(es256_.SignJws(es256_.Header(), ReportClaims(kNow + kSkew + absl::Seconds(1)))),
      "iat is more than 5m in the future");
}

TEST_F(PostureReportTest, RefusesBadSignature) {
  const std::string jws = es256_.SignJws(es256_.Header(), ReportClaims());
  const size_t dot2 = jws.rfind('.');
  std::string signature = *crypto::Base64UrlDecode(jws.substr(dot2 + 1));
  signature[10] = static_cast<char>(signature[10] ^ 0x01);
  const std::string flipped = jws.substr(0, dot2 + 1) + crypto::Base64UrlEncode(signature);
  ExpectRefused(Verify(flipped), "signature", absl::StatusCode::kUnauthenticated);

  // A valid signature by another key of the same kind.
  const DeviceSigner other = DeviceSigner::Es256();
  ExpectRefused(Verify(other.SignJws(other.Header(), ReportClaims())), "signature",
                absl::StatusCode::kUnauthenticated);
}

TEST_F(PostureReportTest, RefusesWrongTyp) {
  ExpectRefused(Verify(es256_.SignJws({{"alg", "ES256"}, {"typ", "JWT"}}, ReportClaims())), "typ");
  ExpectRefused(Verify(es256_.SignJws({{"alg", "ES256"}}, ReportClaims())), "typ");
  ExpectRefused(Verify(es256_.SignJws({{"alg", "ES256"}, {"typ", "dpop+jwt"}}, ReportClaims())),
                "typ");
}

TEST_F(PostureReportTest, RefusesAlgNoneAndAlgOfAnotherKey) {
  const Json none = {{"alg", "none"}, {"typ", kPostureJwtType}};
  const std::string unsigned_jws = crypto::Base64UrlEncode(none.dump()) + "." +
                                   crypto::Base64UrlEncode(ReportClaims().dump()) + ".";
  ExpectRefused(Verify(unsigned_jws), "alg is not ES256");
  // Signed with an Ed25519 key while the device's key is P-256.
  ExpectRefused(Verify(ed25519_.SignJws(ed25519_.Header(), ReportClaims())), "alg is not ES256");
}

TEST_F(PostureReportTest, RefusesCrit) {
  const Json header = {{"alg", "ES256"}, {"typ", kPostureJwtType}, {"crit", {"exp"}}, {"exp", 1}};
  ExpectRefused(Verify(es256_.SignJws(header, ReportClaims())), "crit");
}

TEST_F(PostureReportTest, RefusesUnknownPostureMember) {
  Json claims = ReportClaims();
  claims["posture"]["firewall"] = true;
  ExpectRefused(Verify(es256_.SignJws(es256_.Header(), claims)), "unknown member \"firewall\"");
}

TEST_F(PostureReportTest, RefusesBadDate) {
  Json claims = ReportClaims();
  claims["posture"]["last_patch"] = "2026-02-30";
  ExpectRefused(Verify(es256_.SignJws(es256_.Header(), claims)), "last_patch");
}

TEST_F(PostureReportTest, RefusesMissingClaims) {
  for (const char* claim : {"device_id", "iat", "jti", "posture"}) {
    Json claims = ReportClaims();
    claims.erase(claim);
    ExpectRefused(Verify(es256_.SignJws(es256_.Header(), claims)), claim);
  }
  Json claims = ReportClaims();
  claims["iat"] = "1795976562";
  ExpectRefused(Verify(es256_.SignJws(es256_.Header(), claims)), "iat");
}

TEST_F(PostureReportTest, RefusesMalformedCompactJws) {
  const std::string jws = es256_.SignJws(es256_.Header(), ReportClaims());
  ExpectRefused(Verify(""), "empty");
  ExpectRefused(Verify(jws.substr(0, jws.rfind('.'))), "three parts");
  ExpectRefused(Verify(jws + ".x"), "three parts");
  ExpectRefused(Verify("!!!" + jws.substr(jws.find('.'))), "header");
  ExpectRefused(Verify(std::string(9000, 'a')), "longer than 8192 bytes");
}

TEST(PostureTest, JsonRoundTrip) {
  Posture posture = GoodPosture();
  absl::StatusOr<Posture> parsed = ParsePosture(PostureToJson(posture));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(PostureToJson(*parsed), PostureToJson(posture));
  EXPECT_EQ(parsed->last_patch, "2026-11-20");

  posture.last_patch.reset();
  posture.disk_encrypted = false;
  EXPECT_TRUE(PostureToJson(posture)["last_patch"].is_null());
  parsed = ParsePosture(PostureToJson(posture));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_FALSE(parsed->last_patch.has_value());
  EXPECT_FALSE(parsed->disk_encrypted);
}

TEST(PostureTest, RefusesMissingMistypedAndLongMembers) {
  const Json good = PostureToJson(GoodPosture());
  for (const char* member :
       {"os_name", "os_version", "disk_encrypted", "screen_lock", "edr_running", "last_patch"}) {
    Json missing = good;
    missing.erase(member);
    absl::StatusOr<Posture> parsed = ParsePosture(missing);
    ASSERT_FALSE(parsed.ok()) << member;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(member));
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("missing"));
  }
  Json mistyped = good;
  mistyped["disk_encrypted"] = "true";
  EXPECT_THAT(std::string(ParsePosture(mistyped).status().message()), HasSubstr("disk_encrypted"));
  mistyped = good;
  mistyped["os_version"] = 12;
  EXPECT_THAT(std::string(ParsePosture(mistyped).status().message()), HasSubstr("os_version"));

  Json long_name = good;
  long_name["os_name"] = std::string(200, 'x');
  EXPECT_TRUE(ParsePosture(long_name).ok());
  long_name["os_name"] = std::string(201, 'x');
  EXPECT_THAT(std::string(ParsePosture(long_name).status().message()),
              HasSubstr("os_name: longer than 200 bytes"));

  EXPECT_EQ(ParsePosture(Json::array()).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PostureTest, AcceptsOnlyRealCalendarDates) {
  Json posture = PostureToJson(GoodPosture());
  for (const char* date : {"2024-02-29", "2026-12-31", "2027-01-01"}) {
    posture["last_patch"] = date;
    EXPECT_TRUE(ParsePosture(posture).ok()) << date;
  }
  for (const char* date :
       {"2025-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-4-3", "26-04-03",
        "2026/04/03", "2026-04-03T00:00:00Z", "", "+026-04-03", "0000-01-01"}) {
    posture["last_patch"] = date;
    absl::StatusOr<Posture> parsed = ParsePosture(posture);
    EXPECT_FALSE(parsed.ok()) << date;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("last_patch")) << date;
  }
  posture["last_patch"] = 20261120;
  EXPECT_FALSE(ParsePosture(posture).ok());
}

TEST(PostureTest, ReportClaimsHaveTheDocumentedShape) {
  const Json claims = PostureReportClaims(kDevice, GoodPosture(), kNow, "j1");
  EXPECT_EQ(claims["device_id"], kDevice);
  EXPECT_EQ(claims["iat"], 1795976562);
  EXPECT_EQ(claims["jti"], "j1");
  EXPECT_EQ(claims["posture"], PostureToJson(GoodPosture()));
}

// Compliance.

DevicePolicy StrictPolicy() {
  return {.max_posture_age = absl::Hours(24),
          .required_signals = {"disk_encrypted", "screen_lock", "edr_running"},
          .max_patch_age = absl::Hours(24 * 30)};
}

TEST(ComplianceTest, CompliantDevice) {
  const Compliance c = Evaluate(GoodPosture(), kNow - absl::Hours(1), StrictPolicy(), kNow);
  EXPECT_TRUE(c.compliant);
  EXPECT_THAT(c.failures, IsEmpty());
}

TEST(ComplianceTest, NeverReportedIsMissing) {
  const Compliance c = Evaluate(std::nullopt, std::nullopt, StrictPolicy(), kNow);
  EXPECT_FALSE(c.compliant);
  EXPECT_THAT(c.failures, ElementsAre("posture_missing"));
}

TEST(ComplianceTest, EveryFailureInOrder) {
  Posture bad = GoodPosture();
  bad.disk_encrypted = false;
  bad.screen_lock = false;
  bad.edr_running = false;
  bad.last_patch = "2025-01-01";
  const Compliance c = Evaluate(bad, kNow - absl::Hours(25), StrictPolicy(), kNow);
  EXPECT_FALSE(c.compliant);
  EXPECT_THAT(c.failures, ElementsAre("posture_stale", "disk_not_encrypted", "screen_lock_off",
                                      "edr_not_running", "patch_too_old"));
}

TEST(ComplianceTest, StaleAfterMaxPostureAge) {
  EXPECT_TRUE(Evaluate(GoodPosture(), kNow - absl::Hours(24), StrictPolicy(), kNow).compliant);
  const Compliance c =
      Evaluate(GoodPosture(), kNow - absl::Hours(24) - absl::Seconds(1), StrictPolicy(), kNow);
  EXPECT_THAT(c.failures, ElementsAre("posture_stale"));
  // A posture without a report time cannot be shown to be fresh.
  EXPECT_THAT(Evaluate(GoodPosture(), std::nullopt, StrictPolicy(), kNow).failures,
              ElementsAre("posture_stale"));
}

TEST(ComplianceTest, PatchAgeCountsFromStartOfPatchDay) {
  Posture posture = GoodPosture();
  posture.last_patch = "2026-10-30";  // 2026-10-30T00:00Z + 30 days = 2026-11-29T00:00Z
  const absl::Time limit = absl::FromCivil(absl::CivilDay(2026, 11, 29), absl::UTCTimeZone());
  EXPECT_TRUE(Evaluate(posture, limit, StrictPolicy(), limit).compliant);
  EXPECT_THAT(Evaluate(posture, limit, StrictPolicy(), limit + absl::Seconds(1)).failures,
              ElementsAre("patch_too_old"));
}

TEST(ComplianceTest, UnknownPatchFailsOnlyWhenChecked) {
  Posture posture = GoodPosture();
  posture.last_patch.reset();
  EXPECT_THAT(Evaluate(posture, kNow, StrictPolicy(), kNow).failures, ElementsAre("patch_too_old"));

  DevicePolicy unchecked = StrictPolicy();
  unchecked.max_patch_age = absl::ZeroDuration();
  EXPECT_TRUE(Evaluate(posture, kNow, unchecked, kNow).compliant);
  posture.last_patch = "2001-01-01";
  EXPECT_TRUE(Evaluate(posture, kNow, unchecked, kNow).compliant);
}

TEST(ComplianceTest, OnlyRequiredSignalsCount) {
  Posture posture = GoodPosture();
  posture.screen_lock = false;
  posture.edr_running = false;
  DevicePolicy policy = StrictPolicy();
  policy.required_signals = {"disk_encrypted"};
  EXPECT_TRUE(Evaluate(posture, kNow, policy, kNow).compliant);
  policy.required_signals = {"edr_running", "disk_encrypted"};
  EXPECT_THAT(Evaluate(posture, kNow, policy, kNow).failures, ElementsAre("edr_not_running"));
  policy.required_signals = {};
  posture.disk_encrypted = false;
  EXPECT_TRUE(Evaluate(posture, kNow, policy, kNow).compliant);
}

// Device policy.

TEST(DevicePolicyTest, JsonRoundTrip) {
  const Json json = DevicePolicyToJson(StrictPolicy());
  EXPECT_EQ(json, Json::parse(R"({"maxPostureAge":"24h",
      "requiredSignals":["disk_encrypted","screen_lock","edr_running"],"maxPatchAge":"720h"})"));
  absl::StatusOr<DevicePolicy> parsed = ParseDevicePolicy(json, DevicePolicy{});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(DevicePolicyToJson(*parsed), json);

  const DevicePolicy off{.max_posture_age = absl::Minutes(90)};
  EXPECT_EQ(DevicePolicyToJson(off)["maxPatchAge"], "0s");
  parsed = ParseDevicePolicy(DevicePolicyToJson(off), StrictPolicy());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->max_posture_age, absl::Minutes(90));
  EXPECT_EQ(parsed->max_patch_age, absl::ZeroDuration());
  EXPECT_THAT(parsed->required_signals, IsEmpty());
}

TEST(DevicePolicyTest, MissingMembersKeepDefaults) {
  absl::StatusOr<DevicePolicy> parsed =
      ParseDevicePolicy(Json::parse(R"({"maxPatchAge":"48h"})"), StrictPolicy());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->max_patch_age, absl::Hours(48));
  EXPECT_EQ(parsed->max_posture_age, absl::Hours(24));
  EXPECT_THAT(parsed->required_signals,
              ElementsAre("disk_encrypted", "screen_lock", "edr_running"));
}

TEST(DevicePolicyTest, Refusals) {
  const struct {
    const char* json;
    const char* problem;
  } cases[] = {
      {R"({"maxPostureAge":"24h","colour":"red"})", "unknown member \"colour\""},
      {R"({"requiredSignals":["disk_encrypted","firewall"]})", "unknown signal \"firewall\""},
      {R"({"requiredSignals":["screen_lock","screen_lock"]})", "screen_lock is repeated"},
      {R"({"requiredSignals":"disk_encrypted"})", "requiredSignals"},
      {R"({"requiredSignals":[1]})", "requiredSignals"},
      {R"({"maxPostureAge":"0s"})", "maxPostureAge: must be positive"},
      {R"({"maxPostureAge":"-1h"})", "maxPostureAge: must be positive"},
      {R"({"maxPatchAge":"-1s"})", "maxPatchAge: must not be negative"},
      {R"({"maxPostureAge":"a day"})", "maxPostureAge"},
      {R"({"maxPostureAge":86400})", "maxPostureAge"},
      {R"({"maxPatchAge":"inf"})", "maxPatchAge: must be finite"},
      {R"([])", "object"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<DevicePolicy> parsed = ParseDevicePolicy(Json::parse(c.json), StrictPolicy());
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.problem)) << c.json;
  }
}

TEST(DevicePolicyTest, ParsesSignalList) {
  EXPECT_THAT(*ParseSignalList(""), IsEmpty());
  EXPECT_THAT(*ParseSignalList("  "), IsEmpty());
  EXPECT_THAT(*ParseSignalList("disk_encrypted,screen_lock,edr_running"),
              ElementsAre("disk_encrypted", "screen_lock", "edr_running"));
  EXPECT_THAT(*ParseSignalList(" edr_running , disk_encrypted "),
              ElementsAre("edr_running", "disk_encrypted"));
  EXPECT_THAT(std::string(ParseSignalList("disk_encrypted,tpm").status().message()),
              HasSubstr("unknown signal \"tpm\""));
  EXPECT_THAT(std::string(ParseSignalList("screen_lock,screen_lock").status().message()),
              HasSubstr("repeated"));
  EXPECT_THAT(std::string(ParseSignalList("screen_lock,").status().message()), HasSubstr("empty"));
}

}  // namespace
}  // namespace custos::support
