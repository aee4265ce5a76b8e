#include "common/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace custos {
namespace {

std::string WriteTemp(const std::string& text) {
  std::string path = ::testing::TempDir() + "/custos_config_test_" + std::to_string(::getpid()) +
                     "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                     ".toml";
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, DefaultsAreValid) {
  Config c;
  EXPECT_TRUE(ValidateConfig(c).ok());
  EXPECT_EQ(c.lockout_threshold, 10);
  EXPECT_EQ(c.argon2_memory_kib, 19456);
}

TEST(ConfigTest, FileThenEnvironment) {
  std::string path = WriteTemp("[server]\nport = 9000\nrequest_timeout = \"5s\"\n");
  setenv("CUSTOS_SERVER_PORT", "9100", 1);
  auto c = LoadConfig(path);
  unsetenv("CUSTOS_SERVER_PORT");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 9100);
  EXPECT_EQ(c->request_timeout, absl::Seconds(5));
}

TEST(ConfigTest, UnknownKeyIsNamed) {
  auto c = LoadConfig(WriteTemp("[server]\nprot = 1\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("server.prot"), std::string::npos);
}

TEST(ConfigTest, WrongTypeAndSyntaxAreErrors) {
  EXPECT_FALSE(LoadConfig(WriteTemp("[server]\nport = \"x\"\n")).ok());
  EXPECT_FALSE(LoadConfig(WriteTemp("[server\nport = 1\n")).ok());
  EXPECT_FALSE(LoadConfig(WriteTemp("[server]\nrequest_timeout = \"soon\"\n")).ok());
  EXPECT_FALSE(LoadConfig("/nonexistent/custos.toml").ok());
}

TEST(ConfigTest, LockoutThresholdNeverAboveHundred) {
  Config c;
  ASSERT_TRUE(SetConfigValue(c, "authn.lockout_threshold", "101").ok());
  EXPECT_FALSE(ValidateConfig(c).ok());
  ASSERT_TRUE(SetConfigValue(c, "authn.lockout_threshold", "100").ok());
  EXPECT_TRUE(ValidateConfig(c).ok());
}

// docs/deployment.md: a URL of either scheme, also one that lists a primary and its standbys for
// libpq to find the writable one; a key=value connection string is refused.
TEST(ConfigTest, StoreUrlIsAPostgresUrl) {
  for (const char* url : {"postgres://custos@db.internal/custos",
                          "postgresql://custos@db.internal:5432/custos?sslmode=verify-full",
                          "postgresql://custos@db1.internal:5432,db2.internal:5432/custos"
                          "?target_session_attrs=read-write"}) {
    Config c;
    ASSERT_TRUE(SetConfigValue(c, "store.url", url).ok()) << url;
    EXPECT_TRUE(ValidateConfig(c).ok()) << url;
  }
  Config c;
  ASSERT_TRUE(
      SetConfigValue(c, "store.url", "host=db1,db2 dbname=custos target_session_attrs=read-write")
          .ok());
  EXPECT_FALSE(ValidateConfig(c).ok());
}

TEST(ConfigTest, NotifySection) {
  Config c;
  EXPECT_TRUE(c.notify_enabled);
  EXPECT_EQ(c.notify_workers, 8);
  EXPECT_EQ(c.notify_max_attempts, 12);
  EXPECT_EQ(c.notify_backoff_cap, absl::Hours(1));
  EXPECT_FALSE(c.notify_allow_http_webhooks);

  std::string path = WriteTemp(
      "[notify]\nworkers = 2\nlease = \"1s\"\nsmtp_url = \"smtps://relay.example.com\"\n"
      "mail_from = \"security@example.com\"\nsmtp_password = \"hunter2-secret\"\n");
  auto loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(ValidateConfig(*loaded).ok());
  EXPECT_EQ(loaded->notify_workers, 2);
  EXPECT_EQ(loaded->notify_lease, absl::Seconds(1));
  EXPECT_EQ(loaded->notify_smtp_password, "hunter2-secret");
  // The password is a secret: shown as set, never as itself.
  EXPECT_EQ(ConfigValueText(*loaded, "notify.smtp_password"), "(set)");
  EXPECT_EQ(ConfigValueText(c, "notify.smtp_password"), "");

  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"notify.workers", "0"},
           {"notify.workers", "65"},
           {"notify.max_attempts", "0"},
           {"notify.lease", "500ms"},
           {"notify.backoff_base", "0s"},
           {"notify.backoff_cap", "500ms"},
           {"notify.smtp_url", "http://relay.example.com"},
       }) {
    Config bad;
    ASSERT_TRUE(SetConfigValue(bad, key, value).ok()) << key;
    EXPECT_FALSE(ValidateConfig(bad).ok()) << key << "=" << value;
  }
  Config no_from;
  ASSERT_TRUE(SetConfigValue(no_from, "notify.smtp_url", "smtp://127.0.0.1:25").ok());
  EXPECT_FALSE(ValidateConfig(no_from).ok());
}

TEST(ConfigTest, EverySettingIsDocumented) {
  const char* src = std::getenv("CUSTOS_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  std::ifstream in(std::string(src) + "/docs/configuration.md");
  ASSERT_TRUE(in.good()) << "docs/configuration.md is missing";
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Config defaults;
  for (const SettingInfo& s : AllSettings()) {
    EXPECT_NE(doc.find("`" + std::string(s.key) + "`"), std::string::npos)
        << s.key << " is not in docs/configuration.md";
    std::string value = ConfigValueText(defaults, s.key);
    if (!value.empty()) {
      EXPECT_NE(doc.find("`" + value + "`"), std::string::npos)
          << s.key << " default " << value << " is not in docs/configuration.md";
    }
  }
}

}  // namespace
}  // namespace custos
