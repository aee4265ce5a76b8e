#include "cli/demo_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/config.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "directory/directory.h"
#include "directory/tenants.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/plane.h"

namespace custos::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kAdminGroup[] = "Custos Administrators";

class DemoDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    config_.data_dir = temp_->dir();
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    config_.console_admin_group = kAdminGroup;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ = std::make_unique<api::Services>(
        api::Services{temp_->store(), config_, clock_, random_, *hasher_, *sealer_});
    directory_ = std::make_unique<directory::Directory>(temp_->store(), config_, clock_, random_,
                                                        *hasher_, *sealer_);
    tenants_ = std::make_unique<directory::Tenants>(temp_->store(), clock_, random_);
    // What `custos serve` does before anything else.
    ASSERT_TRUE(support::EnsureProviderTenant(temp_->store(), clock_, random_).ok());
  }

  void TearDown() override {
    directory_.reset();
    temp_.reset();
  }

  audit::RequestContext Ctx() {
    audit::RequestContext ctx;
    ctx.actor = audit::SystemPrincipal();
    ctx.request_id = "test";
    return ctx;
  }

  DemoData Seed() {
    absl::StatusOr<DemoData> demo = SeedDemoData(*services_, *directory_);
    EXPECT_TRUE(demo.ok()) << demo.status();
    return demo.value_or(DemoData{});
  }

  // A user of `tenant` made by someone else than the demo.
  void AddUser(const std::string& tenant, const std::string& login) {
    absl::StatusOr<store::TenantRecord> t = tenants_->Get(tenant);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::StatusOr<store::UserRecord> user = directory_->CreateUser(
        t->id, Ctx(),
        {{"login", login}, {"email", login}, {"firstName", "Pat"}, {"lastName", "Own"}},
        std::string("Their-own-Pass-phrase-42"), true);
    ASSERT_TRUE(user.ok()) << user.status();
  }

  // Whether `login` exists in `tenant`, and whether it is in the console admin group.
  struct Found {
    bool exists = false;
    bool admin = false;
  };
  Found Lookup(const std::string& tenant, const std::string& login) {
    Found found;
    absl::StatusOr<store::TenantRecord> t = tenants_->Get(tenant);
    if (!t.ok()) return found;
    absl::StatusOr<store::UserRecord> user = directory_->GetUser(t->id, login);
    if (!user.ok()) return found;
    found.exists = true;
    absl::StatusOr<std::vector<GroupId>> groups = store::ReadResult(
        temp_->store(),
        [&](store::Transaction& tx) { return tx.Groups().ListGroupsOfUser(t->id, user->id); });
    EXPECT_TRUE(groups.ok());
    for (const GroupId& id : groups.value_or(std::vector<GroupId>{})) {
      absl::StatusOr<store::GroupRecord> group = store::ReadResult(
          temp_->store(), [&](store::Transaction& tx) { return tx.Groups().Get(t->id, id); });
      if (group.ok() && group->name == kAdminGroup) found.admin = true;
    }
    return found;
  }

  static std::vector<std::string> Logins(const DemoData& demo) {
    std::vector<std::string> out;
    for (const DemoConsoleAdmin& a : demo.console_admins) out.push_back(a.login);
    return out;
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{5};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<api::Services> services_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<directory::Tenants> tenants_;
};

TEST_F(DemoDataTest, ANewDataDirectoryGetsBothConsoleAdminsAndKeepsThemOnRestart) {
  DemoData first = Seed();
  ASSERT_THAT(Logins(first), ElementsAre("admin@acme.example", "security@provider.example"));
  EXPECT_THAT(first.skipped_console_admins, IsEmpty());
  EXPECT_TRUE(Lookup("acme", "admin@acme.example").admin);
  EXPECT_TRUE(Lookup("provider", "security@provider.example").admin);

  // The next start finds the demo's own users (the store is no longer new) and keeps them.
  DemoData again = Seed();
  ASSERT_THAT(Logins(again), ElementsAre("admin@acme.example", "security@provider.example"));
  EXPECT_EQ(again.console_admins[1].totp_secret, first.console_admins[1].totp_secret);
}

TEST_F(DemoDataTest, AnExistingDataDirectoryGetsNoAdminAndNoPromotion) {
  ASSERT_TRUE(tenants_->Create(Ctx(), "acme").ok());
  AddUser("acme", "admin@acme.example");
  AddUser("provider", "sam@contractor.example");

  DemoData demo = Seed();
  EXPECT_THAT(demo.console_admins, IsEmpty());
  ASSERT_THAT(demo.skipped_console_admins, SizeIs(2));
  EXPECT_THAT(demo.skipped_console_admins[0], HasSubstr("admin@acme.example (acme): not made"));
  EXPECT_THAT(demo.skipped_console_admins[1],
              HasSubstr("security@provider.example (provider): not made"));
  const Found acme_admin = Lookup("acme", "admin@acme.example");
  EXPECT_TRUE(acme_admin.exists);
  EXPECT_FALSE(acme_admin.admin) << "an existing user is never promoted";
  EXPECT_FALSE(Lookup("provider", "security@provider.example").exists);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::path(temp_->dir()) / kServeDemoMarkerFile));
}

TEST_F(DemoDataTest, TheDemoTenantItMakesInSomeoneElsesDataGetsItsAdminButTheProviderDoesNot) {
  ASSERT_TRUE(tenants_->Create(Ctx(), "globex").ok());
  AddUser("provider", "sam@contractor.example");

  for (int run = 0; run < 2; ++run) {  // creating acme, then finding it by its token file
    DemoData demo = Seed();
    EXPECT_THAT(Logins(demo), ElementsAre("admin@acme.example")) << run;
    ASSERT_THAT(demo.skipped_console_admins, SizeIs(1)) << run;
    EXPECT_THAT(demo.skipped_console_admins[0], HasSubstr("security@provider.example"));
    EXPECT_TRUE(Lookup("acme", "admin@acme.example").admin);
    EXPECT_FALSE(Lookup("provider", "security@provider.example").exists);
  }
}

TEST_F(DemoDataTest, TheIncidentDemosDataDirectoryIsTheDemos) {
  // `custos demo` writes its marker first, then fills the store with tenants and operators.
  std::ofstream(std::filesystem::path(temp_->dir()) / kDemoMarkerFile) << "{}\n";
  ASSERT_TRUE(tenants_->Create(Ctx(), "globex").ok());
  AddUser("provider", "sam@contractor.example");

  DemoData demo = Seed();
  EXPECT_THAT(Logins(demo), ElementsAre("admin@acme.example", "security@provider.example"));
  EXPECT_THAT(demo.skipped_console_admins, IsEmpty());
  EXPECT_TRUE(Lookup("provider", "security@provider.example").admin);
}

}  // namespace
}  // namespace custos::cli
