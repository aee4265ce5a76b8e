#include "directory/directory.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/errors.h"
#include "crypto/encoding.h"
#include "crypto/totp.h"
#include "directory/tenants.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::directory {
namespace {

class DirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    config_.argon2_memory_kib = 1024;
    config_.argon2_iterations = 1;
    config_.lockout_threshold = 3;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{1024, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    directory_ = std::make_unique<Directory>(*store_, config_, clock_, random_, *hasher_, *sealer_);
    Tenants tenants(*store_, clock_, random_);
    ctx_.actor = audit::SystemPrincipal();
    ctx_.request_id = "test";
    tenant_ = tenants.Create(ctx_, "acme")->id;
    other_ = tenants.Create(ctx_, "globex")->id;
  }
  void TearDown() override { temp_.reset(); }

  Json Profile(const std::string& login) {
    return {{"login", login}, {"email", login}, {"firstName", "A"}, {"lastName", "B"}};
  }

  std::vector<std::string> EventTypes(const TenantId& tenant) {
    std::vector<std::string> types;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      store::EventQuery q;
                      q.limit = 1000;
                      auto events = tx.Events().Query(tenant, q);
                      if (!events.ok()) return events.status();
                      for (const auto& e : *events) types.push_back(e.event_type);
                      return absl::OkStatus();
                    })
                    .ok());
    return types;
  }

  int64_t UserCount(const TenantId& tenant) {
    int64_t n = -1;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      auto c = tx.Users().Count(tenant);
                      if (c.ok()) n = *c;
                      return c.status();
                    })
                    .ok());
    return n;
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Directory> directory_;
  audit::RequestContext ctx_;
  TenantId tenant_, other_;
};

TEST_F(DirectoryTest, CreateWithPasswordIsActiveAndRecordsEvents) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("ada@acme.test"),
                                     std::string("tiny-bright-lantern"), true);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->status, store::kUserActive);
  EXPECT_TRUE(hasher_->Verify(user->password_hash, "tiny-bright-lantern"));
  auto types = EventTypes(tenant_);
  EXPECT_EQ(std::count(types.begin(), types.end(), "user.lifecycle.create"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "user.lifecycle.activate"), 1);
}

TEST_F(DirectoryTest, StatusFollowsActivateAndCredentials) {
  auto staged = directory_->CreateUser(tenant_, ctx_, Profile("s@acme.test"), std::nullopt, false);
  EXPECT_EQ(staged->status, store::kUserStaged);
  auto provisioned =
      directory_->CreateUser(tenant_, ctx_, Profile("p@acme.test"), std::nullopt, true);
  EXPECT_EQ(provisioned->status, store::kUserProvisioned);
  auto token = directory_->Activate(tenant_, ctx_, staged->id.value());
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(token->user.status, store::kUserProvisioned);
  EXPECT_FALSE(token->token.empty());
}

TEST_F(DirectoryTest, BadPasswordOrDuplicateLoginChangesNothing) {
  ASSERT_TRUE(
      directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, true).ok());
  size_t events = EventTypes(tenant_).size();
  auto weak =
      directory_->CreateUser(tenant_, ctx_, Profile("b@acme.test"), std::string("password"), true);
  EXPECT_EQ(ErrorCodeOf(weak.status()), kErrPasswordPolicy);
  auto dup = directory_->CreateUser(tenant_, ctx_, Profile("A@ACME.test"), std::nullopt, true);
  EXPECT_EQ(ErrorCodeOf(dup.status()), kErrValidation);
  EXPECT_EQ(UserCount(tenant_), 1);
  EXPECT_EQ(EventTypes(tenant_).size(), events);
}

TEST_F(DirectoryTest, TenantsAreIsolated) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, true);
  ASSERT_TRUE(user.ok());
  EXPECT_TRUE(absl::IsNotFound(directory_->GetUser(other_, user->id.value()).status()));
  EXPECT_TRUE(absl::IsNotFound(directory_->GetUser(other_, "a@acme.test").status()));
  EXPECT_TRUE(absl::IsNotFound(directory_->Suspend(other_, ctx_, user->id.value())));
  // The same login may exist in another tenant.
  EXPECT_TRUE(
      directory_->CreateUser(other_, ctx_, Profile("a@acme.test"), std::nullopt, true).ok());
}

TEST_F(DirectoryTest, RefusedTransitionIsLoggedAndChangesNothing) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, false);
  absl::Status st = directory_->Suspend(tenant_, ctx_, user->id.value());
  EXPECT_TRUE(absl::IsInvalidArgument(st));
  EXPECT_EQ(directory_->GetUser(tenant_, user->id.value())->status, store::kUserStaged);
  auto types = EventTypes(tenant_);
  EXPECT_EQ(types.back(), "user.lifecycle.suspend");
  bool failure_logged = false;
  store_
      ->Read([&](store::Transaction& tx) {
        auto events = tx.Events().Query(tenant_, {.descending = true, .limit = 1});
        failure_logged =
            events.ok() && events->front().json.find("\"FAILURE\"") != std::string::npos;
        return absl::OkStatus();
      })
      .IgnoreError();
  EXPECT_TRUE(failure_logged);
}

TEST_F(DirectoryTest, DeleteDeactivatesFirstThenDeletes) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, true);
  auto first = directory_->DeleteUser(tenant_, ctx_, user->id.value());
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(*first);
  EXPECT_EQ(directory_->GetUser(tenant_, user->id.value())->status, store::kUserDeprovisioned);
  auto second = directory_->DeleteUser(tenant_, ctx_, user->id.value());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(*second);
  EXPECT_TRUE(absl::IsNotFound(directory_->GetUser(tenant_, user->id.value()).status()));
}

TEST_F(DirectoryTest, ListPagesWithFilterAndSearch) {
  for (int i = 0; i < 25; ++i) {
    auto u = directory_->CreateUser(tenant_, ctx_, Profile("u" + std::to_string(i) + "@acme.test"),
                                    std::nullopt, i % 2 == 0);
    ASSERT_TRUE(u.ok());
  }
  std::set<std::string> seen;
  ListQuery q{.limit = 4, .filter = "status eq \"STAGED\""};
  int pages = 0;
  while (true) {
    auto page = directory_->ListUsers(tenant_, q);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const auto& u : page->items) {
      EXPECT_EQ(u.status, store::kUserStaged);
      EXPECT_TRUE(seen.insert(u.id.value()).second);
    }
    if (page->next_after.empty()) break;
    q.after = page->next_after;
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(pages, 3);
  auto search = directory_->ListUsers(
      tenant_, {.search = "profile.login sw \"u1\" and status eq \"PROVISIONED\""});
  ASSERT_TRUE(search.ok());
  // Of u1 and u10..u19, the even ones were activated: u10, u12, u14, u16, u18.
  EXPECT_EQ(search->items.size(), 5u);
  auto bad = directory_->ListUsers(tenant_, {.filter = "status eq"});
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
}

TEST_F(DirectoryTest, ASelectiveSearchEndsPagesAtTheScanBudgetAndMissesNothing) {
  for (int i = 0; i < 30; ++i) {
    std::string login = (i == 4 || i == 27 ? "match" : "u") + std::to_string(i) + "@acme.test";
    ASSERT_TRUE(directory_->CreateUser(tenant_, ctx_, Profile(login), std::nullopt, true).ok());
  }
  ListQuery q{.limit = 5, .search = "profile.login sw \"match\"", .scan_budget = 10};
  std::vector<std::string> found;
  int pages = 0;
  while (true) {
    auto page = directory_->ListUsers(tenant_, q);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_LT(++pages, 20);
    for (const auto& u : page->items) found.push_back(u.login);
    if (page->next_after.empty()) break;
    q.after = page->next_after;
  }
  EXPECT_GE(pages, 3);  // 30 users, at most 10 examined per page
  std::sort(found.begin(), found.end());
  EXPECT_THAT(found, ::testing::ElementsAre("match27@acme.test", "match4@acme.test"));
}

TEST_F(DirectoryTest, GroupMembershipStaysInsideTheTenant) {
  auto group = directory_->CreateGroup(tenant_, ctx_, {{"name", "Engineering"}});
  ASSERT_TRUE(group.ok());
  auto mine = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, true);
  auto theirs = directory_->CreateUser(other_, ctx_, Profile("z@globex.test"), std::nullopt, true);
  EXPECT_TRUE(directory_->AddMember(tenant_, ctx_, group->id.value(), mine->id.value()).ok());
  EXPECT_TRUE(absl::IsNotFound(
      directory_->AddMember(tenant_, ctx_, group->id.value(), theirs->id.value())));
  auto members = directory_->ListMembers(tenant_, group->id.value(), "", 10);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->items.size(), 1u);
  EXPECT_EQ(members->items[0].id, mine->id);
  EXPECT_FALSE(directory_->CreateGroup(tenant_, ctx_, {{"name", "Engineering"}}).ok());
  EXPECT_TRUE(absl::IsNotFound(directory_->GetGroup(other_, group->id.value()).status()));
}

TEST_F(DirectoryTest, TotpEnrolActivateVerifyAndReplay) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"),
                                     std::string("tiny-bright-lantern"), true);
  auto enrolled = directory_->EnrollFactor(tenant_, ctx_, user->id.value(), "token:software:totp",
                                           "GOOGLE", "Custos (acme)");
  ASSERT_TRUE(enrolled.ok()) << enrolled.status();
  EXPECT_EQ(enrolled->factor.status, store::kFactorPendingActivation);
  EXPECT_NE(enrolled->otpauth_uri.find("otpauth://totp/"), std::string::npos);
  std::string secret = *crypto::Base32Decode(enrolled->shared_secret);
  int64_t step = crypto::TotpStep(clock_.Now());
  std::string fid = enrolled->factor.id.value();
  EXPECT_FALSE(directory_->ActivateFactor(tenant_, ctx_, user->id.value(), fid, "000000").ok() &&
               crypto::TotpCode(secret, step) != "000000");
  ASSERT_TRUE(
      directory_
          ->ActivateFactor(tenant_, ctx_, user->id.value(), fid, crypto::TotpCode(secret, step))
          .ok());
  // The code used for activation cannot be used again.
  absl::Status replay = directory_->VerifyFactor(tenant_, ctx_, user->id.value(), fid,
                                                 crypto::TotpCode(secret, step));
  EXPECT_EQ(ErrorCodeOf(replay), kErrPasscode);
  clock_.Advance(absl::Seconds(30));
  EXPECT_TRUE(
      directory_
          ->VerifyFactor(tenant_, ctx_, user->id.value(), fid, crypto::TotpCode(secret, step + 1))
          .ok());
  // The sealed secret is never the plain one.
  auto stored = directory_->GetFactor(tenant_, user->id.value(), fid);
  EXPECT_EQ(stored->sealed_secret.find(secret), std::string::npos);
}

TEST_F(DirectoryTest, ResetPasswordIssuesTokenAndEndsSessions) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"),
                                     std::string("tiny-bright-lantern"), true);
  auto issued = directory_->ResetPassword(tenant_, ctx_, user->id.value());
  ASSERT_TRUE(issued.ok());
  EXPECT_EQ(issued->user.status, store::kUserRecovery);
  EXPECT_GE(issued->token.size(), 43u);
  auto stored = directory_->GetUser(tenant_, user->id.value());
  EXPECT_EQ(stored->recovery_token_hash.size(), 64u);
  EXPECT_EQ(stored->recovery_token_hash.find(issued->token), std::string::npos);
}

TEST_F(DirectoryTest, AdminPasswordChangeEndsARecoveryInProgress) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"),
                                     std::string("tiny-bright-lantern"), true);
  auto issued = directory_->ResetPassword(tenant_, ctx_, user->id.value());
  ASSERT_TRUE(issued.ok());
  auto updated = directory_->UpdateUser(tenant_, ctx_, user->id.value(), Json::object(),
                                        std::string("another-bright-lantern"), true);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->status, store::kUserActive);
  EXPECT_TRUE(updated->recovery_token_hash.empty());
  EXPECT_TRUE(hasher_->Verify(updated->password_hash, "another-bright-lantern"));
}

TEST_F(DirectoryTest, PartialUpdatesMergeIntoTheLatestProfile) {
  auto user = directory_->CreateUser(tenant_, ctx_, Profile("a@acme.test"), std::nullopt, true);
  ASSERT_TRUE(
      directory_->UpdateUser(tenant_, ctx_, "a@acme.test", {{"city", "Paris"}}, std::nullopt, true)
          .ok());
  ASSERT_TRUE(
      directory_->UpdateUser(tenant_, ctx_, "a@acme.test", {{"title", "Dr"}}, std::nullopt, true)
          .ok());
  Json profile = Json::parse(directory_->GetUser(tenant_, user->id.value())->profile_json);
  EXPECT_EQ(profile["city"], "Paris");
  EXPECT_EQ(profile["title"], "Dr");
  auto bad =
      directory_->UpdateUser(tenant_, ctx_, "a@acme.test", {{"login", 7}}, std::nullopt, true);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
}

TEST_F(DirectoryTest, ClearSessionsEndsOnlyThatUsersSessions) {
  auto quinn = directory_->CreateUser(tenant_, ctx_, Profile("q@acme.test"), std::nullopt, true);
  auto rita = directory_->CreateUser(tenant_, ctx_, Profile("r@acme.test"), std::nullopt, true);
  auto add_session = [&](const UserId& user, int i) {
    store::SessionRecord s{SessionId("102s" + user.value() + std::to_string(i)), tenant_, user,
                           std::string(64, static_cast<char>('a' + i)) + user.value()};
    s.created = s.last_active = clock_.Now();
    s.expires = clock_.Now() + absl::Hours(1);
    ASSERT_TRUE(
        store_->Write([&](store::Transaction& tx) { return tx.Sessions().Insert(s); }).ok());
  };
  for (int i = 0; i < 3; ++i) add_session(quinn->id, i);
  add_session(rita->id, 0);
  auto ended = directory_->ClearSessions(tenant_, ctx_, "q@acme.test");
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(*ended, 3);
  EXPECT_EQ(*directory_->ClearSessions(tenant_, ctx_, rita->id.value()), 1);
  EXPECT_TRUE(absl::IsNotFound(directory_->ClearSessions(other_, ctx_, "q@acme.test").status()));
  EXPECT_EQ(EventTypes(tenant_).back(), "user.session.clear");
}

}  // namespace
}  // namespace custos::directory
