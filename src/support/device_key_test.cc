#include "support/device_key.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/clock.h"
#include "crypto/encoding.h"
#include "support/dpop.h"
#include "support/jwk.h"
#include "support/posture.h"

namespace custos::support {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class DeviceKeyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/custos-device-key-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void WriteFile(const fs::path& path, std::string_view data) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << data;
  }
  static std::string ReadFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static unsigned Mode(const fs::path& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static void SetMtime(const fs::path& path, absl::Time t) {
    const struct timeval times[2] = {{absl::ToTimeT(t), 0}, {absl::ToTimeT(t), 0}};
    ASSERT_EQ(::utimes(path.c_str(), times), 0) << path;
  }

  fs::path dir_;
  FakeClock clock_;
  crypto::SeededRandom random_{7};
};

TEST_F(DeviceKeyTest, CreateWritesAnOwnerOnlyKeyThatLoadsBack) {
  const fs::path path = dir_ / "device" / "device.key";
  absl::StatusOr<std::unique_ptr<FileDeviceKey>> created = FileDeviceKey::Create(path.string());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(path.parent_path()), 0700u);
  EXPECT_THAT(ReadFile(path), HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(fs::directory_iterator(path.parent_path())->path(), path) << "no temporary left";

  const Json jwk = (*created)->PublicJwk();
  EXPECT_EQ(jwk["kty"], "EC");
  EXPECT_EQ(jwk["crv"], "P-256");
  EXPECT_FALSE(HasPrivateKeyMembers(jwk));
  EXPECT_TRUE(ParsePublicJwk(jwk).ok());
  EXPECT_EQ((*created)->Algorithm(), "ES256");

  absl::StatusOr<std::unique_ptr<FileDeviceKey>> loaded = FileDeviceKey::Load(path.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->PublicJwk(), jwk);
}

TEST_F(DeviceKeyTest, CreateNeverOverwrites) {
  const fs::path path = dir_ / "device.key";
  ASSERT_TRUE(FileDeviceKey::Create(path.string()).ok());
  const std::string first = ReadFile(path);
  absl::StatusOr<std::unique_ptr<FileDeviceKey>> again = FileDeviceKey::Create(path.string());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_EQ(ReadFile(path), first);

  const fs::path other = dir_ / "other";
  WriteFile(other, "not a key");
  EXPECT_EQ(FileDeviceKey::Create(other.string()).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ReadFile(other), "not a key");
}

TEST_F(DeviceKeyTest, LoadRefusesAKeyOthersCanRead) {
  const fs::path path = dir_ / "device.key";
  ASSERT_TRUE(FileDeviceKey::Create(path.string()).ok());
  fs::permissions(path, fs::perms(0644));
  absl::StatusOr<std::unique_ptr<FileDeviceKey>> loaded = FileDeviceKey::Load(path.string());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kFailedPrecondition) << loaded.status();
  EXPECT_THAT(loaded.status().message(), HasSubstr("0644"));
  fs::permissions(path, fs::perms(0640));
  EXPECT_EQ(FileDeviceKey::Load(path.string()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  fs::permissions(path, fs::perms(0400));
  EXPECT_TRUE(FileDeviceKey::Load(path.string()).ok());
}

TEST_F(DeviceKeyTest, LoadRefusesWhatIsNotAP256PrivateKey) {
  const fs::path text = dir_ / "text";
  WriteFile(text, "hello\n");
  fs::permissions(text, fs::perms(0600));
  EXPECT_EQ(FileDeviceKey::Load(text.string()).status().code(), absl::StatusCode::kInvalidArgument);

  EVP_PKEY* p384 = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  ASSERT_NE(p384, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio, p384, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  const fs::path other = dir_ / "p384.key";
  WriteFile(other, std::string(data, static_cast<size_t>(size)));
  BIO_free(bio);
  EVP_PKEY_free(p384);
  fs::permissions(other, fs::perms(0600));
  absl::StatusOr<std::unique_ptr<FileDeviceKey>> loaded = FileDeviceKey::Load(other.string());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(loaded.status().message(), HasSubstr("P-256"));

  EXPECT_EQ(FileDeviceKey::Load((dir_ / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(DeviceKeyTest, SignJwsMakesAnEs256SignatureOverTheSigningInput) {
  auto key = FileDeviceKey::Create((dir_ / "device.key").string()).value();
  const std::string jws =
      key->SignJws(Json{{"typ", "test"}, {"alg", "none"}}, Json{{"hello", "world"}}).value();
  const size_t dot = jws.rfind('.');
  const Json header = Json::parse(crypto::Base64UrlDecode(jws.substr(0, jws.find('.'))).value());
  EXPECT_EQ(header["alg"], "ES256") << "alg is always the key's";
  const std::string signature = crypto::Base64UrlDecode(jws.substr(dot + 1)).value();
  EXPECT_EQ(signature.size(), 64u);
  const PublicJwk public_key = ParsePublicJwk(key->PublicJwk()).value();
  EXPECT_TRUE(VerifyJwsSignature(public_key, "ES256", jws.substr(0, dot), signature));
  EXPECT_FALSE(VerifyJwsSignature(public_key, "ES256", jws.substr(0, dot) + "x", signature));
}

TEST_F(DeviceKeyTest, DpopProofsPassTheVerifier) {
  auto key = FileDeviceKey::Create((dir_ / "device.key").string()).value();
  DpopVerifier verifier(clock_);
  const std::string url = "https://id.example.com/provider/api/v1/devices/enroll";

  const std::string proof =
      MakeDpopProof(*key, "POST", url, std::nullopt, clock_.Now(), random_).value();
  absl::StatusOr<DpopResult> result = verifier.Verify(proof, {.method = "POST", .url = url});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->jkt, Thumbprint(ParsePublicJwk(key->PublicJwk()).value()));
  EXPECT_EQ(result->iat, absl::FromUnixSeconds(absl::ToUnixSeconds(clock_.Now())));
  EXPECT_EQ(crypto::Base64UrlDecode(result->jti).value().size(), 16u);

  // With an access token: ath binds the proof to it; htu leaves the query out.
  const std::string token = "cop_abc";
  const std::string call = "https://id.example.com/provider/api/v1/support/grants?status=ACTIVE";
  const std::string bound =
      MakeDpopProof(*key, "GET", call, std::string_view(token), clock_.Now(), random_).value();
  const Json claims =
      Json::parse(crypto::Base64UrlDecode(
                      bound.substr(bound.find('.') + 1, bound.rfind('.') - bound.find('.') - 1))
                      .value());
  EXPECT_EQ(claims["htu"], "https://id.example.com/provider/api/v1/support/grants");
  EXPECT_TRUE(verifier.Verify(bound, {.method = "GET", .url = call, .access_token = token}).ok());
  const std::string other =
      MakeDpopProof(*key, "GET", call, std::string_view(token), clock_.Now(), random_).value();
  EXPECT_EQ(
      DpopErrorOf(verifier.Verify(other, {.method = "GET", .url = call, .access_token = "cop_xyz"})
                      .status()),
      DpopError::kAthMismatch);
  const std::string unbound =
      MakeDpopProof(*key, "GET", call, std::nullopt, clock_.Now(), random_).value();
  EXPECT_EQ(
      DpopErrorOf(
          verifier.Verify(unbound, {.method = "GET", .url = call, .access_token = token}).status()),
      DpopError::kAthMissing);
}

TEST_F(DeviceKeyTest, ATamperedProofFails) {
  auto key = FileDeviceKey::Create((dir_ / "device.key").string()).value();
  DpopVerifier verifier(clock_);
  const std::string url = "https://id.example.com/provider/oauth2/v1/token";
  const std::string proof =
      MakeDpopProof(*key, "POST", url, std::nullopt, clock_.Now(), random_).value();
  const size_t dot1 = proof.find('.');
  const size_t dot2 = proof.rfind('.');
  Json claims =
      Json::parse(crypto::Base64UrlDecode(proof.substr(dot1 + 1, dot2 - dot1 - 1)).value());
  claims["htm"] = "GET";
  const std::string tampered =
      proof.substr(0, dot1 + 1) + crypto::Base64UrlEncode(claims.dump()) + proof.substr(dot2);
  EXPECT_EQ(DpopErrorOf(verifier.Verify(tampered, {.method = "GET", .url = url}).status()),
            DpopError::kBadSignature);
  // The proof as made is for POST only.
  EXPECT_EQ(DpopErrorOf(verifier.Verify(proof, {.method = "GET", .url = url}).status()),
            DpopError::kHtmMismatch);
}

TEST_F(DeviceKeyTest, PostureReportVerifiesWithTheDeviceKey) {
  auto key = FileDeviceKey::Create((dir_ / "device.key").string()).value();
  const Posture posture{.os_name = "Debian GNU/Linux",
                        .os_version = "12",
                        .disk_encrypted = true,
                        .screen_lock = false,
                        .edr_running = true,
                        .last_patch = "2026-11-20"};
  const std::string report =
      MakePostureReport(*key, "dev123", posture, clock_.Now(), random_).value();
  const PublicJwk public_key = ParsePublicJwk(key->PublicJwk()).value();
  absl::StatusOr<PostureReport> verified =
      VerifyPostureReport(report, public_key, "dev123", clock_.Now(), absl::Minutes(5));
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(PostureToJson(verified->posture), PostureToJson(posture));
  EXPECT_FALSE(
      VerifyPostureReport(report, public_key, "dev456", clock_.Now(), absl::Minutes(5)).ok());
}

TEST_F(DeviceKeyTest, CollectPostureReadsTheSystem) {
  const fs::path root = dir_ / "root";
  WriteFile(root / "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
            "# a comment\n"
            "NAME=\"Debian GNU/Linux\"\n"
            "VERSION_ID='12'\n"
            "ID=debian\n");
  // LVM on LUKS: "/" is an LVM volume whose slave is the dm-crypt device.
  WriteFile(root / "proc/self/mountinfo",
            "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
            "25 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw\n"
            "26 25 8:1 / /boot rw,relatime shared:2 - ext4 /dev/sda1 rw\n");
  WriteFile(root / "sys/dev/block/254:1/dm/uuid", "LVM-abc\n");
  WriteFile(root / "sys/dev/block/254:1/slaves/dm-0/dm/uuid", "CRYPT-LUKS2-0123-sda5_crypt\n");
  WriteFile(root / "proc/1/comm", "systemd\n");
  WriteFile(root / "proc/1/cmdline", std::string("/sbin/init\0splash\0", 18));
  WriteFile(root / "proc/812/comm", "falcon-sensor\n");
  WriteFile(root / "var/lib/dpkg/status", "Package: base-files\n");
  WriteFile(root / "var/log/dpkg.log", "...\n");
  SetMtime(root / "var/lib/dpkg/status", absl::FromUnixSeconds(1763640000));  // 2025-11-20 12:00Z
  SetMtime(root / "var/log/dpkg.log", absl::FromUnixSeconds(1763000000));     // 2025-11-13

  Posture posture = CollectPosture("mdatp, falcon-sensor", root.string());
  EXPECT_EQ(posture.os_name, "Debian GNU/Linux");
  EXPECT_EQ(posture.os_version, "12");
  EXPECT_TRUE(posture.disk_encrypted);
  EXPECT_FALSE(posture.screen_lock);
  EXPECT_TRUE(posture.edr_running);
  EXPECT_EQ(posture.last_patch, "2025-11-20");

  // The newer of the two dpkg files counts.
  SetMtime(root / "var/log/dpkg.log", absl::FromUnixSeconds(1764000000));  // 2025-11-24
  EXPECT_EQ(CollectPosture("", root.string()).last_patch, "2025-11-24");
  EXPECT_FALSE(CollectPosture("", root.string()).edr_running);
  EXPECT_FALSE(CollectPosture("mdatp,osqueryd", root.string()).edr_running);
  EXPECT_TRUE(CollectPosture("init", root.string()).edr_running) << "argv[0] counts too";
}

TEST_F(DeviceKeyTest, CollectPostureOnAnUnencryptedMachine) {
  const fs::path root = dir_ / "root";
  WriteFile(root / "usr/lib/os-release", "NAME=Fedora\nVERSION_ID=41\n");
  WriteFile(root / "proc/self/mountinfo",
            "25 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n");
  WriteFile(root / "sys/dev/block/8:2/partition", "2\n");
  // The kernel truncates comm to 15 bytes.
  WriteFile(root / "proc/77/comm", "sentinel-agent-\n");

  Posture posture = CollectPosture("sentinel-agent-service", root.string());
  EXPECT_EQ(posture.os_name, "Fedora");
  EXPECT_EQ(posture.os_version, "41");
  EXPECT_FALSE(posture.disk_encrypted);
  EXPECT_TRUE(posture.edr_running);
  EXPECT_EQ(posture.last_patch, std::nullopt);

  // btrfs has an anonymous device number; the source names the dm-crypt mapping.
  WriteFile(root / "proc/self/mountinfo",
            "25 1 0:30 /@ / rw,relatime shared:1 - btrfs /dev/mapper/luks-42 rw\n");
  WriteFile(root / "sys/class/block/dm-0/dm/name", "luks-42\n");
  WriteFile(root / "sys/class/block/dm-0/dm/uuid", "CRYPT-LUKS2-42-luks-42\n");
  EXPECT_TRUE(CollectPosture("", root.string()).disk_encrypted);

  const Posture empty = CollectPosture("", (dir_ / "nothing").string());
  EXPECT_EQ(empty.os_name, "Linux");
  EXPECT_FALSE(empty.disk_encrypted);
}

TEST_F(DeviceKeyTest, MergePostureTakesKnownMembersOnly) {
  Posture posture{.os_name = "Debian GNU/Linux", .os_version = "12"};
  ASSERT_TRUE(
      MergePosture(posture,
                   Json{{"screen_lock", true}, {"edr_running", true}, {"last_patch", "2026-11-20"}})
          .ok());
  EXPECT_TRUE(posture.screen_lock);
  EXPECT_TRUE(posture.edr_running);
  EXPECT_FALSE(posture.disk_encrypted);
  EXPECT_EQ(posture.last_patch, "2026-11-20");
  EXPECT_EQ(posture.os_name, "Debian GNU/Linux");

  const Json before = PostureToJson(posture);
  absl::Status unknown =
      MergePosture(posture, Json{{"disk_encrypted", true}, {"screenlock", true}});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.message(), HasSubstr("screenlock"));
  absl::Status mistyped = MergePosture(posture, Json{{"disk_encrypted", "yes"}});
  EXPECT_EQ(mistyped.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(mistyped.message(), HasSubstr("disk_encrypted"));
  EXPECT_EQ(MergePosture(posture, Json{{"last_patch", "last tuesday"}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MergePosture(posture, Json::array({1, 2})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PostureToJson(posture), before) << "a refused merge changes nothing";

  ASSERT_TRUE(MergePosture(posture, Json{{"last_patch", nullptr}}).ok());
  EXPECT_EQ(posture.last_patch, std::nullopt);
}

}  // namespace
}  // namespace custos::support
