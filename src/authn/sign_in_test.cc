#include "authn/sign_in.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "authn/totp_factor.h"
#include "common/errors.h"
#include "common/json.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/totp.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::authn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPassword[] = "correct horse battery staple";
constexpr char kWrongPassword[] = "correct horse battery stapler";

struct Totp {
  store::FactorRecord record;
  std::string secret;  // raw bytes
};

class SignInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    config_.lockout_threshold = 3;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    tenant_ = TenantId("00otenant0000000001");
    ASSERT_TRUE(store_
                    ->Write([&](store::Transaction& tx) {
                      return tx.Tenants().Insert({tenant_, "acme", clock_.Now()});
                    })
                    .ok());
    ctx_.request_id = "req-1";
    ctx_.ip_address = "192.0.2.10";
    ctx_.user_agent = "test-agent";
    ctx_.url = "/t/acme/api/v1/authn";
  }
  void TearDown() override {
    sign_in_.reset();
    temp_.reset();
  }

  // Built on first use, so a test may change config_ first.
  SignIn& sign_in() {
    if (!sign_in_) {
      sign_in_ = std::make_unique<SignIn>(*store_, config_, clock_, random_, *hasher_, *sealer_);
    }
    return *sign_in_;
  }

  store::UserRecord AddUser(const std::string& login, std::string_view status = store::kUserActive,
                            const crypto::PasswordHasher* hasher = nullptr) {
    store::UserRecord u;
    u.id = UserId(random_.Id(kUserIdPrefix));
    u.tenant_id = tenant_;
    u.status = std::string(status);
    u.login = login;
    u.profile_json = DumpJson(Json{{"login", login},
                                   {"firstName", "Alice"},
                                   {"lastName", "Liddell"},
                                   {"locale", "en_US"},
                                   {"timeZone", "Europe/London"}});
    u.password_hash = *(hasher != nullptr ? hasher : hasher_.get())->Hash(kPassword);
    u.created = u.status_changed = u.last_updated = clock_.Now();
    u.password_changed = clock_.Now();
    EXPECT_TRUE(store_->Write([&](store::Transaction& tx) { return tx.Users().Insert(u); }).ok());
    return u;
  }

  Totp AddTotp(const store::UserRecord& user) {
    TotpEnrollment e =
        NewTotpFactor(tenant_, user.id, "acme", user.login, random_, *sealer_, clock_);
    e.record.status = std::string(store::kFactorActive);
    EXPECT_TRUE(
        store_->Write([&](store::Transaction& tx) { return tx.Factors().Insert(e.record); }).ok());
    return {e.record, *crypto::Base32Decode(e.secret_base32)};
  }

  std::string CodeNow(const Totp& totp) {
    return crypto::TotpCode(totp.secret, crypto::TotpStep(clock_.Now()));
  }

  store::UserRecord GetUser(const UserId& id) {
    store::UserRecord u;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      auto got = tx.Users().Get(tenant_, id);
                      if (got.ok()) u = *got;
                      return got.status();
                    })
                    .ok());
    return u;
  }

  void UpdateUser(const store::UserRecord& u) {
    ASSERT_TRUE(store_->Write([&](store::Transaction& tx) { return tx.Users().Update(u); }).ok());
  }

  std::vector<store::EventRecord> AllEvents() {
    std::vector<store::EventRecord> out;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      store::EventQuery q;
                      q.limit = 10000;
                      auto events = tx.Events().Query(tenant_, q);
                      if (events.ok()) out = *events;
                      return events.status();
                    })
                    .ok());
    return out;
  }

  // The events of one type, parsed.
  std::vector<Json> Events(std::string_view type) {
    std::vector<Json> out;
    for (const store::EventRecord& e : AllEvents()) {
      if (e.event_type == type) out.push_back(*ParseJson(e.json));
    }
    return out;
  }

  static std::string Outcome(const Json& event) {
    return event["outcome"]["result"].get<std::string>();
  }
  static std::string Reason(const Json& event) {
    const Json& r = event["outcome"]["reason"];
    return r.is_null() ? "" : r.get<std::string>();
  }

  // Asserts that the last event of `type` has this outcome and reason.
  void ExpectLastEvent(std::string_view type, std::string_view outcome, std::string_view reason) {
    std::vector<Json> events = Events(type);
    ASSERT_FALSE(events.empty()) << type;
    EXPECT_EQ(Outcome(events.back()), outcome) << events.back().dump();
    EXPECT_EQ(Reason(events.back()), reason) << events.back().dump();
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{42};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<SignIn> sign_in_;
  TenantId tenant_;
  audit::RequestContext ctx_;
};

TEST_F(SignInTest, RightPasswordWithoutFactorStartsASession) {
  store::UserRecord user = AddUser("alice@example.com");
  user.failed_sign_ins = 2;
  UpdateUser(user);

  AuthnAttempt a = sign_in().Authenticate(tenant_, "Alice@Example.com", kPassword, ctx_);
  ASSERT_TRUE(a.result.ok()) << a.result.status();
  const AuthnResult& r = *a.result;
  EXPECT_EQ(r.status, AuthnStatus::kSuccess);
  EXPECT_EQ(r.token.size(), 43u);  // 32 random bytes, base64url
  EXPECT_EQ(
      r.token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_TRUE(r.session_id.value().starts_with("102"));
  EXPECT_EQ(r.session_id.value().size(), 20u);
  EXPECT_EQ(r.expires_at, clock_.Now() + config_.session_idle_timeout);
  EXPECT_EQ(r.user.id, user.id);
  EXPECT_EQ(r.user.login, "alice@example.com");
  EXPECT_EQ(r.user.first_name, "Alice");
  EXPECT_EQ(r.user.time_zone, "Europe/London");
  EXPECT_THAT(r.factors, IsEmpty());
  EXPECT_EQ(a.delay, absl::ZeroDuration());

  // Stored as SHA-256 only.
  store::SessionRecord session;
  ASSERT_TRUE(store_
                  ->Read([&](store::Transaction& tx) -> absl::Status {
                    auto s = tx.Sessions().FindByHash(tenant_, crypto::Sha256Hex(r.token));
                    if (s.ok()) session = *s;
                    return s.status();
                  })
                  .ok());
  EXPECT_EQ(session.id, r.session_id);
  EXPECT_EQ(session.amr, "pwd");
  EXPECT_EQ(session.expires, clock_.Now() + config_.session_lifetime);
  EXPECT_EQ(session.ip_address, "192.0.2.10");

  store::UserRecord after = GetUser(user.id);
  EXPECT_EQ(after.failed_sign_ins, 0);
  EXPECT_EQ(after.last_login, clock_.Now());

  std::vector<Json> starts = Events(kEventSessionStart);
  ASSERT_THAT(starts, SizeIs(1));
  EXPECT_EQ(Outcome(starts[0]), "SUCCESS");
  EXPECT_EQ(starts[0]["actor"]["id"], user.id.value());
  EXPECT_EQ(starts[0]["target"][0]["id"], user.id.value());
  EXPECT_EQ(starts[0]["authenticationContext"]["externalSessionId"], r.session_id.value());
  EXPECT_EQ(starts[0]["client"]["ipAddress"], "192.0.2.10");
}

TEST_F(SignInTest, UnknownUserAndWrongPasswordGetTheSameAnswer) {
  store::UserRecord user = AddUser("alice@example.com");
  AuthnAttempt wrong = sign_in().Authenticate(tenant_, "alice@example.com", kWrongPassword, ctx_);
  AuthnAttempt unknown = sign_in().Authenticate(tenant_, "mallory@example.com", kPassword, ctx_);
  ASSERT_FALSE(wrong.result.ok());
  ASSERT_FALSE(unknown.result.ok());
  EXPECT_EQ(wrong.result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(wrong.result.status()), kErrAuthFailed);
  EXPECT_EQ(wrong.result.status().message(), "Authentication failed");
  // Same code, message and payloads (error code, no causes).
  EXPECT_EQ(wrong.result.status(), unknown.result.status());
  EXPECT_EQ(wrong.delay, unknown.delay);

  std::vector<Json> starts = Events(kEventSessionStart);
  ASSERT_THAT(starts, SizeIs(2));
  EXPECT_EQ(Outcome(starts[0]), "FAILURE");
  EXPECT_EQ(Reason(starts[0]), kReasonInvalidCredentials);
  EXPECT_EQ(starts[0]["actor"]["id"], user.id.value());
  EXPECT_EQ(Outcome(starts[1]), "FAILURE");
  EXPECT_EQ(Reason(starts[1]), kReasonUnknownUser);
  EXPECT_EQ(starts[1]["actor"]["id"], "unknown");
  EXPECT_EQ(starts[1]["actor"]["type"], "User");
  EXPECT_EQ(starts[1]["actor"]["alternateId"], "mallory@example.com");
  EXPECT_EQ(starts[1]["target"], Json::array());
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 1);
}

TEST_F(SignInTest, UsersWhoAreNotActiveCannotSignInAndLookLikeAWrongPassword) {
  AddUser("bystander@example.com");
  AuthnAttempt wrong = sign_in().Authenticate(tenant_, "bystander@example.com", "nope", ctx_);
  for (std::string_view status :
       {store::kUserStaged, store::kUserProvisioned, store::kUserSuspended,
        store::kUserDeprovisioned, store::kUserRecovery}) {
    std::string login = absl::AsciiStrToLower(std::string(status)) + "@example.com";
    AddUser(login, status);
    AuthnAttempt a = sign_in().Authenticate(tenant_, login, kPassword, ctx_);
    EXPECT_EQ(a.result.status(), wrong.result.status()) << status;
    ExpectLastEvent(kEventSessionStart, "FAILURE", kReasonUserNotActive);
    EXPECT_EQ(Events(kEventSessionStart).back()["debugContext"]["debugData"]["userStatus"], status);
  }
}

TEST_F(SignInTest, LocksOutAtTheThresholdAndThenRefusesTheRightPassword) {
  store::UserRecord user = AddUser("bob@example.com");
  for (int i = 1; i <= 3; ++i) {
    AuthnAttempt a = sign_in().Authenticate(tenant_, "bob@example.com", kWrongPassword, ctx_);
    EXPECT_EQ(ErrorCodeOf(a.result.status()), kErrAuthFailed);
    EXPECT_EQ(GetUser(user.id).failed_sign_ins, i);
    EXPECT_EQ(Events(kEventAccountLock).size(), i == 3 ? 1u : 0u);
  }
  EXPECT_EQ(GetUser(user.id).status, store::kUserLockedOut);
  std::vector<Json> locks = Events(kEventAccountLock);
  ASSERT_THAT(locks, SizeIs(1));
  EXPECT_EQ(locks[0]["target"][0]["id"], user.id.value());
  EXPECT_EQ(locks[0]["debugContext"]["debugData"]["failedSignIns"], "3");

  AuthnAttempt wrong = sign_in().Authenticate(tenant_, "bob@example.com", kWrongPassword, ctx_);
  AuthnAttempt right = sign_in().Authenticate(tenant_, "bob@example.com", kPassword, ctx_);
  EXPECT_EQ(right.result.status(), wrong.result.status());
  ExpectLastEvent(kEventSessionStart, "FAILURE", kReasonLockedOut);
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 3);
  EXPECT_EQ(Events(kEventAccountLock).size(), 1u);
}

TEST_F(SignInTest, LockoutThresholdNeverExceedsOneHundred) {
  config_.lockout_threshold = 1000;
  store::UserRecord user = AddUser("carol@example.com");
  for (int i = 0; i < 99; ++i) sign_in().Authenticate(tenant_, "carol@example.com", "x", ctx_);
  EXPECT_EQ(GetUser(user.id).status, store::kUserActive);
  sign_in().Authenticate(tenant_, "carol@example.com", "x", ctx_);
  EXPECT_EQ(GetUser(user.id).status, store::kUserLockedOut);
}

TEST_F(SignInTest, ProgressiveDelayGrowsAlikeForRealAndUnknownUsernames) {
  config_.lockout_threshold = 100;
  AddUser("dave@example.com");
  std::vector<absl::Duration> real, unknown;
  for (int i = 0; i < 8; ++i) {
    real.push_back(sign_in().Authenticate(tenant_, "dave@example.com", "x", ctx_).delay);
    unknown.push_back(sign_in().Authenticate(tenant_, "nobody@example.com", "x", ctx_).delay);
  }
  const absl::Duration ms = absl::Milliseconds(1);
  EXPECT_THAT(real, ElementsAre(0 * ms, 0 * ms, 250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 4000 * ms,
                                5000 * ms));
  EXPECT_EQ(real, unknown);
  // The delay is keyed by the username as typed, case-folded.
  EXPECT_EQ(sign_in().Authenticate(tenant_, "DAVE@example.com", "x", ctx_).delay, 5000 * ms);
  // It holds back a success too (so a fast answer never means success), then resets.
  AuthnAttempt ok = sign_in().Authenticate(tenant_, "dave@example.com", kPassword, ctx_);
  ASSERT_TRUE(ok.result.ok());
  EXPECT_EQ(ok.delay, 5000 * ms);
  EXPECT_EQ(sign_in().Authenticate(tenant_, "dave@example.com", "x", ctx_).delay, 0 * ms);
}

TEST_F(SignInTest, ActiveTotpFactorMakesMfaRequiredThenVerifyStartsTheSession) {
  store::UserRecord user = AddUser("erin@example.com");
  Totp totp = AddTotp(user);

  AuthnAttempt primary = sign_in().Authenticate(tenant_, "erin@example.com", kPassword, ctx_);
  ASSERT_TRUE(primary.result.ok()) << primary.result.status();
  EXPECT_EQ(primary.result->status, AuthnStatus::kMfaRequired);
  EXPECT_EQ(primary.result->expires_at, clock_.Now() + config_.state_token_lifetime);
  ASSERT_THAT(primary.result->factors, SizeIs(1));
  EXPECT_EQ(primary.result->factors[0].id, totp.record.id);
  EXPECT_EQ(primary.result->factors[0].factor_type, kTotpFactorType);
  EXPECT_TRUE(primary.result->session_id.empty());
  ExpectLastEvent(kEventSessionStart, std::string(kOutcomeChallenge), kReasonMfaRequired);
  const std::string state_token = primary.result->token;

  clock_.Advance(absl::Seconds(40));
  AuthnAttempt verified =
      sign_in().VerifyFactor(tenant_, state_token, totp.record.id, CodeNow(totp), ctx_);
  ASSERT_TRUE(verified.result.ok()) << verified.result.status();
  EXPECT_EQ(verified.result->status, AuthnStatus::kSuccess);
  EXPECT_FALSE(verified.result->session_id.empty());
  ExpectLastEvent(kEventAuthViaMfa, "SUCCESS", "");
  ExpectLastEvent(kEventSessionStart, "SUCCESS", "");
  absl::StatusOr<SessionInfo> info = sign_in().ValidateSession(tenant_, verified.result->token);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->session.amr, "pwd otp");
  EXPECT_EQ(info->user.id, user.id);

  // The state token is single use.
  AuthnAttempt again =
      sign_in().VerifyFactor(tenant_, state_token, totp.record.id, CodeNow(totp), ctx_);
  EXPECT_EQ(again.result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(again.result.status()), kErrInvalidToken);
  ExpectLastEvent(kEventAuthViaMfa, "FAILURE", kReasonInvalidToken);
}

TEST_F(SignInTest, WrongPasscodeCountsAsAFailureAndTheStateTokenStaysUsable) {
  config_.lockout_threshold = 10;
  store::UserRecord user = AddUser("frank@example.com");
  Totp totp = AddTotp(user);
  std::string state =
      sign_in().Authenticate(tenant_, "frank@example.com", kPassword, ctx_).result->token;
  std::string good = CodeNow(totp);
  std::string bad = good == "000000" ? "000001" : "000000";
  AuthnAttempt wrong = sign_in().VerifyFactor(tenant_, state, totp.record.id, bad, ctx_);
  EXPECT_EQ(wrong.result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorCodeOf(wrong.result.status()), kErrPasscode);
  ExpectLastEvent(kEventAuthViaMfa, "FAILURE", kReasonInvalidCredentials);
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 1);

  AuthnAttempt right = sign_in().VerifyFactor(tenant_, state, totp.record.id, good, ctx_);
  ASSERT_TRUE(right.result.ok()) << right.result.status();
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 0);
}

TEST_F(SignInTest, ReplayedCodeIsRefusedInALaterSignIn) {
  store::UserRecord user = AddUser("grace@example.com");
  Totp totp = AddTotp(user);
  const std::string code = CodeNow(totp);
  std::string s1 =
      sign_in().Authenticate(tenant_, "grace@example.com", kPassword, ctx_).result->token;
  ASSERT_TRUE(sign_in().VerifyFactor(tenant_, s1, totp.record.id, code, ctx_).result.ok());
  std::string s2 =
      sign_in().Authenticate(tenant_, "grace@example.com", kPassword, ctx_).result->token;
  AuthnAttempt replay = sign_in().VerifyFactor(tenant_, s2, totp.record.id, code, ctx_);
  EXPECT_EQ(ErrorCodeOf(replay.result.status()), kErrPasscode);
  // The next step's code works.
  clock_.Advance(absl::Seconds(30));
  EXPECT_TRUE(sign_in().VerifyFactor(tenant_, s2, totp.record.id, CodeNow(totp), ctx_).result.ok());
}

TEST_F(SignInTest, PasswordStepDoesNotResetFailuresSoPasscodeGuessingLocksOut) {
  store::UserRecord user = AddUser("heidi@example.com");
  Totp totp = AddTotp(user);
  sign_in().Authenticate(tenant_, "heidi@example.com", kWrongPassword, ctx_);
  std::string state =
      sign_in().Authenticate(tenant_, "heidi@example.com", kPassword, ctx_).result->token;
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 1);
  std::string bad = CodeNow(totp) == "123456" ? "654321" : "123456";
  EXPECT_EQ(ErrorCodeOf(
                sign_in().VerifyFactor(tenant_, state, totp.record.id, bad, ctx_).result.status()),
            kErrPasscode);
  EXPECT_EQ(ErrorCodeOf(
                sign_in().VerifyFactor(tenant_, state, totp.record.id, bad, ctx_).result.status()),
            kErrPasscode);
  EXPECT_EQ(GetUser(user.id).status, store::kUserLockedOut);
  ExpectLastEvent(kEventAccountLock, "SUCCESS", "");
  // The transaction died with the lockout, even for the right code.
  AuthnAttempt after = sign_in().VerifyFactor(tenant_, state, totp.record.id, CodeNow(totp), ctx_);
  EXPECT_EQ(ErrorCodeOf(after.result.status()), kErrInvalidToken);
}

TEST_F(SignInTest, StateTokenExpires) {
  store::UserRecord user = AddUser("ivan@example.com");
  Totp totp = AddTotp(user);
  std::string state =
      sign_in().Authenticate(tenant_, "ivan@example.com", kPassword, ctx_).result->token;
  clock_.Advance(config_.state_token_lifetime);
  AuthnAttempt late = sign_in().VerifyFactor(tenant_, state, totp.record.id, CodeNow(totp), ctx_);
  EXPECT_EQ(late.result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(late.result.status()), kErrInvalidToken);
  ExpectLastEvent(kEventAuthViaMfa, "FAILURE", kReasonInvalidToken);
  EXPECT_EQ(Events(kEventAuthViaMfa).back()["actor"]["id"], user.id.value());
  EXPECT_EQ(GetUser(user.id).failed_sign_ins, 0);
}

TEST_F(SignInTest, UnknownStateTokenAndUnknownFactor) {
  store::UserRecord user = AddUser("judy@example.com");
  Totp totp = AddTotp(user);
  AuthnAttempt bogus = sign_in().VerifyFactor(tenant_, "bogus", totp.record.id, "123456", ctx_);
  EXPECT_EQ(ErrorCodeOf(bogus.result.status()), kErrInvalidToken);
  EXPECT_EQ(Events(kEventAuthViaMfa).back()["actor"]["id"], "unknown");

  std::string state =
      sign_in().Authenticate(tenant_, "judy@example.com", kPassword, ctx_).result->token;
  AuthnAttempt other =
      sign_in().VerifyFactor(tenant_, state, FactorId("uftnotmine000000001"), CodeNow(totp), ctx_);
  EXPECT_EQ(other.result.status().code(), absl::StatusCode::kNotFound);
  ExpectLastEvent(kEventAuthViaMfa, "FAILURE", kReasonUnknownFactor);
  // Still usable with the right factor.
  EXPECT_TRUE(
      sign_in().VerifyFactor(tenant_, state, totp.record.id, CodeNow(totp), ctx_).result.ok());
}

TEST_F(SignInTest, PendingFactorIsNotRequired) {
  store::UserRecord user = AddUser("ken@example.com");
  TotpEnrollment pending =
      NewTotpFactor(tenant_, user.id, "acme", user.login, random_, *sealer_, clock_);
  ASSERT_TRUE(
      store_->Write([&](store::Transaction& tx) { return tx.Factors().Insert(pending.record); })
          .ok());
  AuthnAttempt a = sign_in().Authenticate(tenant_, "ken@example.com", kPassword, ctx_);
  ASSERT_TRUE(a.result.ok());
  EXPECT_EQ(a.result->status, AuthnStatus::kSuccess);
}

TEST_F(SignInTest, SessionEndsAfterIdleTimeout) {
  AddUser("lena@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "lena@example.com", kPassword, ctx_).result->token;
  clock_.Advance(config_.session_idle_timeout - absl::Seconds(1));
  ASSERT_TRUE(sign_in().ValidateSession(tenant_, token).ok());  // touches last_active
  clock_.Advance(config_.session_idle_timeout - absl::Seconds(1));
  absl::StatusOr<SessionInfo> info = sign_in().ValidateSession(tenant_, token);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->expires_at, clock_.Now() + config_.session_idle_timeout);
  clock_.Advance(config_.session_idle_timeout);
  absl::StatusOr<SessionInfo> idle = sign_in().ValidateSession(tenant_, token);
  EXPECT_EQ(idle.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorCodeOf(idle.status()), kErrInvalidSession);
}

TEST_F(SignInTest, SweepReclaimsOnlySessionsThatCanNoLongerBeUsed) {
  AddUser("nina@example.com");
  AddUser("olga@example.com");
  std::string stale =
      sign_in().Authenticate(tenant_, "nina@example.com", kPassword, ctx_).result->token;
  clock_.Advance(config_.session_idle_timeout - absl::Minutes(5));
  std::string fresh =
      sign_in().Authenticate(tenant_, "olga@example.com", kPassword, ctx_).result->token;
  clock_.Advance(absl::Minutes(10));  // `stale` is now idle too long; `fresh` is not
  size_t events = Events(kEventSessionStart).size();
  absl::StatusOr<int> swept = sign_in().SweepExpired();
  ASSERT_TRUE(swept.ok()) << swept.status();
  EXPECT_EQ(*swept, 1);
  EXPECT_TRUE(sign_in().ValidateSession(tenant_, fresh).ok());
  EXPECT_EQ(sign_in().SweepExpired().value_or(-1), 0);
  EXPECT_EQ(Events(kEventSessionStart).size(), events);
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, stale).ok());
}

TEST_F(SignInTest, SessionEndsAtItsAbsoluteLifetimeEvenWhenUsed) {
  AddUser("mike@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "mike@example.com", kPassword, ctx_).result->token;
  const absl::Time start = clock_.Now();
  while (clock_.Now() + absl::Hours(1) < start + config_.session_lifetime) {
    clock_.Advance(absl::Hours(1));
    absl::StatusOr<SessionInfo> info = sign_in().ValidateSession(tenant_, token);
    ASSERT_TRUE(info.ok()) << clock_.Now() - start;
    EXPECT_LE(info->expires_at, start + config_.session_lifetime);
  }
  clock_.Set(start + config_.session_lifetime);
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, token).ok());
}

TEST_F(SignInTest, ValidateSessionTouchesAtMostOnceAMinute) {
  AddUser("nina@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "nina@example.com", kPassword, ctx_).result->token;
  const absl::Time start = clock_.Now();
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(sign_in().ValidateSession(tenant_, token)->session.last_active, start);
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(sign_in().ValidateSession(tenant_, token)->session.last_active, clock_.Now());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(sign_in().ValidateSession(tenant_, token)->session.last_active,
            start + absl::Seconds(61));
}

TEST_F(SignInTest, BackgroundUseChecksTheSessionButDoesNotKeepItAlive) {
  AddUser("nora@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "nora@example.com", kPassword, ctx_).result->token;
  const absl::Time start = clock_.Now();
  // A page polling every few seconds while nobody uses it.
  while (clock_.Now() + absl::Minutes(1) < start + config_.session_idle_timeout) {
    clock_.Advance(absl::Minutes(1));
    absl::StatusOr<SessionInfo> polled =
        sign_in().ValidateSession(tenant_, token, SessionUse::kBackground);
    ASSERT_TRUE(polled.ok()) << clock_.Now() - start;
    EXPECT_EQ(polled->session.last_active, start);
    EXPECT_EQ(polled->expires_at, start + config_.session_idle_timeout);
  }
  clock_.Set(start + config_.session_idle_timeout);
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, token, SessionUse::kBackground).ok());
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, token).ok()) << "idle, not only for polls";
}

TEST_F(SignInTest, SessionOfAUserWhoIsNoLongerActiveIsInvalid) {
  store::UserRecord user = AddUser("olga@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "olga@example.com", kPassword, ctx_).result->token;
  store::UserRecord u = GetUser(user.id);
  u.status = std::string(store::kUserSuspended);
  UpdateUser(u);
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, token).ok());
}

TEST_F(SignInTest, EndSessionLogsOutOnce) {
  store::UserRecord user = AddUser("pat@example.com");
  std::string token =
      sign_in().Authenticate(tenant_, "pat@example.com", kPassword, ctx_).result->token;
  ASSERT_TRUE(sign_in().EndSession(tenant_, token, ctx_).ok());
  EXPECT_FALSE(sign_in().ValidateSession(tenant_, token).ok());
  EXPECT_EQ(ErrorCodeOf(sign_in().EndSession(tenant_, token, ctx_)), kErrInvalidSession);
  std::vector<Json> ends = Events(kEventSessionEnd);
  ASSERT_THAT(ends, SizeIs(1));
  EXPECT_EQ(ends[0]["actor"]["id"], user.id.value());
}

class RecoveryTest : public SignInTest {
 protected:
  // As the management API's reset_password leaves the user.
  store::UserRecord StartRecovery(store::UserRecord user, const std::string& token) {
    user = GetUser(user.id);
    user.status = std::string(store::kUserRecovery);
    user.recovery_token_hash = crypto::Sha256Hex(token);
    user.recovery_expires = clock_.Now() + config_.recovery_token_lifetime;
    UpdateUser(user);
    return user;
  }
};

TEST_F(RecoveryTest, RecoveryTokenThenNewPasswordSignsIn) {
  store::UserRecord user = AddUser("sam@example.com");
  std::string old_session =
      sign_in().Authenticate(tenant_, "sam@example.com", kPassword, ctx_).result->token;
  StartRecovery(user, "recovery-token-1");

  absl::StatusOr<RecoveryResult> rec =
      sign_in().VerifyRecoveryToken(tenant_, "recovery-token-1", ctx_);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->user.id, user.id);
  EXPECT_EQ(rec->expires_at, clock_.Now() + config_.state_token_lifetime);
  ExpectLastEvent(kEventVerifyRecovery, "SUCCESS", "");

  // A refused password leaves the state token usable.
  AuthnAttempt weak = sign_in().ResetPassword(tenant_, rec->state_token, "password1", ctx_);
  EXPECT_EQ(ErrorCodeOf(weak.result.status()), kErrPasswordPolicy);
  EXPECT_THAT(ErrorCausesOf(weak.result.status()), SizeIs(1));
  ExpectLastEvent(kEventResetPassword, "FAILURE", kReasonPasswordPolicy);
  EXPECT_EQ(GetUser(user.id).status, store::kUserRecovery);

  const std::string fresh = "a completely new passphrase";
  AuthnAttempt done = sign_in().ResetPassword(tenant_, rec->state_token, fresh, ctx_);
  ASSERT_TRUE(done.result.ok()) << done.result.status();
  EXPECT_EQ(done.result->status, AuthnStatus::kSuccess);
  ExpectLastEvent(kEventResetPassword, "SUCCESS", "");
  EXPECT_EQ(Events(kEventResetPassword).back()["debugContext"]["debugData"]["sessionsEnded"], "1");
  store::UserRecord after = GetUser(user.id);
  EXPECT_EQ(after.status, store::kUserActive);
  EXPECT_TRUE(after.recovery_token_hash.empty());
  EXPECT_FALSE(after.recovery_expires.has_value());
  EXPECT_EQ(after.password_changed, clock_.Now());
  EXPECT_TRUE(hasher_->Verify(after.password_hash, fresh));

  EXPECT_FALSE(sign_in().ValidateSession(tenant_, old_session).ok());
  EXPECT_TRUE(sign_in().ValidateSession(tenant_, done.result->token).ok());
  EXPECT_FALSE(sign_in().Authenticate(tenant_, "sam@example.com", kPassword, ctx_).result.ok());
  EXPECT_TRUE(sign_in().Authenticate(tenant_, "sam@example.com", fresh, ctx_).result.ok());

  // Both tokens are spent.
  EXPECT_EQ(ErrorCodeOf(sign_in().VerifyRecoveryToken(tenant_, "recovery-token-1", ctx_).status()),
            kErrInvalidToken);
  EXPECT_EQ(
      ErrorCodeOf(
          sign_in().ResetPassword(tenant_, rec->state_token, fresh + "!", ctx_).result.status()),
      kErrInvalidToken);
}

TEST_F(RecoveryTest, NewPasswordMayNotBeTheLogin) {
  store::UserRecord user = AddUser("tina.long.login@example.com");
  StartRecovery(user, "rt");
  std::string state = sign_in().VerifyRecoveryToken(tenant_, "rt", ctx_)->state_token;
  AuthnAttempt a = sign_in().ResetPassword(tenant_, state, "Tina.Long.Login", ctx_);
  EXPECT_THAT(ErrorCausesOf(a.result.status()),
              ElementsAre("password: Password cannot be your username"));
}

TEST_F(RecoveryTest, ExpiredOrUnknownRecoveryTokenIsRefused) {
  store::UserRecord user = AddUser("uma@example.com");
  StartRecovery(user, "rt-uma");
  EXPECT_EQ(ErrorCodeOf(sign_in().VerifyRecoveryToken(tenant_, "not-it", ctx_).status()),
            kErrInvalidToken);
  EXPECT_EQ(Events(kEventVerifyRecovery).back()["actor"]["id"], "unknown");
  clock_.Advance(config_.recovery_token_lifetime);
  absl::StatusOr<RecoveryResult> late = sign_in().VerifyRecoveryToken(tenant_, "rt-uma", ctx_);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorCodeOf(late.status()), kErrInvalidToken);
  ExpectLastEvent(kEventVerifyRecovery, "FAILURE", kReasonInvalidToken);
  EXPECT_EQ(Events(kEventVerifyRecovery).back()["actor"]["id"], user.id.value());
}

TEST_F(RecoveryTest, UserWithTotpStillNeedsTheFactorAfterReset) {
  store::UserRecord user = AddUser("vic@example.com");
  Totp totp = AddTotp(user);
  StartRecovery(user, "rt-vic");
  std::string state = sign_in().VerifyRecoveryToken(tenant_, "rt-vic", ctx_)->state_token;
  AuthnAttempt a = sign_in().ResetPassword(tenant_, state, "vic's brand new passphrase", ctx_);
  ASSERT_TRUE(a.result.ok()) << a.result.status();
  EXPECT_EQ(a.result->status, AuthnStatus::kMfaRequired);
  EXPECT_TRUE(sign_in()
                  .VerifyFactor(tenant_, a.result->token, totp.record.id, CodeNow(totp), ctx_)
                  .result.ok());
}

TEST_F(RecoveryTest, StateTokensAreBoundToTheirStep) {
  store::UserRecord user = AddUser("walt@example.com");
  Totp totp = AddTotp(user);
  std::string mfa_state =
      sign_in().Authenticate(tenant_, "walt@example.com", kPassword, ctx_).result->token;
  // A sign-in state token cannot reset a password...
  StartRecovery(user, "rt-walt");
  EXPECT_EQ(ErrorCodeOf(sign_in()
                            .ResetPassword(tenant_, mfa_state, "another fine passphrase", ctx_)
                            .result.status()),
            kErrInvalidToken);
  // ...and a recovery state token cannot stand in for the password before a factor.
  std::string rec_state = sign_in().VerifyRecoveryToken(tenant_, "rt-walt", ctx_)->state_token;
  EXPECT_EQ(ErrorCodeOf(sign_in()
                            .VerifyFactor(tenant_, rec_state, totp.record.id, CodeNow(totp), ctx_)
                            .result.status()),
            kErrInvalidToken);
}

TEST_F(SignInTest, RehashesWhenParametersChanged) {
  crypto::PasswordHasher old_hasher(crypto::Argon2Params{16, 2});
  store::UserRecord user = AddUser("xena@example.com", store::kUserActive, &old_hasher);
  ASSERT_TRUE(hasher_->NeedsRehash(user.password_hash));
  ASSERT_TRUE(sign_in().Authenticate(tenant_, "xena@example.com", kPassword, ctx_).result.ok());
  store::UserRecord after = GetUser(user.id);
  EXPECT_NE(after.password_hash, user.password_hash);
  EXPECT_FALSE(hasher_->NeedsRehash(after.password_hash));
  EXPECT_TRUE(hasher_->Verify(after.password_hash, kPassword));
}

TEST_F(SignInTest, EveryAttemptLeavesExactlyOneOutcomeEventAndNoSecrets) {
  config_.lockout_threshold = 100;
  store::UserRecord user = AddUser("yuri@example.com");
  Totp totp = AddTotp(user);
  std::vector<std::string> secrets = {kPassword, kWrongPassword};

  auto count = [&](const std::string& type) { return Events(type).size(); };

  size_t before = count(std::string(kEventSessionStart));
  sign_in().Authenticate(tenant_, "yuri@example.com", kWrongPassword, ctx_);
  EXPECT_EQ(count(std::string(kEventSessionStart)), before + 1);
  ExpectLastEvent(kEventSessionStart, "FAILURE", kReasonInvalidCredentials);

  sign_in().Authenticate(tenant_, "zed@example.com", kWrongPassword, ctx_);
  EXPECT_EQ(count(std::string(kEventSessionStart)), before + 2);
  ExpectLastEvent(kEventSessionStart, "FAILURE", kReasonUnknownUser);

  AuthnAttempt primary = sign_in().Authenticate(tenant_, "yuri@example.com", kPassword, ctx_);
  secrets.push_back(primary.result->token);
  EXPECT_EQ(count(std::string(kEventSessionStart)), before + 3);
  ExpectLastEvent(kEventSessionStart, std::string(kOutcomeChallenge), kReasonMfaRequired);

  const std::string code = CodeNow(totp);
  const std::string bad = code == "111111" ? "222222" : "111111";
  secrets.push_back(code);
  secrets.push_back(bad);
  size_t mfa_before = count(std::string(kEventAuthViaMfa));
  sign_in().VerifyFactor(tenant_, primary.result->token, totp.record.id, bad, ctx_);
  EXPECT_EQ(count(std::string(kEventAuthViaMfa)), mfa_before + 1);
  ExpectLastEvent(kEventAuthViaMfa, "FAILURE", kReasonInvalidCredentials);
  AuthnAttempt done =
      sign_in().VerifyFactor(tenant_, primary.result->token, totp.record.id, code, ctx_);
  ASSERT_TRUE(done.result.ok());
  secrets.push_back(done.result->token);
  EXPECT_EQ(count(std::string(kEventAuthViaMfa)), mfa_before + 2);
  ExpectLastEvent(kEventAuthViaMfa, "SUCCESS", "");
  ASSERT_TRUE(sign_in().EndSession(tenant_, done.result->token, ctx_).ok());

  for (const store::EventRecord& e : AllEvents()) {
    for (const std::string& s : secrets) {
      EXPECT_EQ(e.json.find(s), std::string::npos) << e.event_type << " contains a secret";
    }
    EXPECT_EQ(e.json.find(crypto::Sha256Hex(done.result->token)), std::string::npos);
  }
}

}  // namespace
}  // namespace custos::authn
