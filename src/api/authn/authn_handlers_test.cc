#include "api/authn/authn_handlers.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "authn/totp_factor.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/totp.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::api::authn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPassword[] = "correct horse battery staple";

std::optional<std::string> HeaderOf(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

class AuthnHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    config_.lockout_threshold = 5;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ =
        std::make_unique<Services>(Services{*store_, config_, clock_, random_, *hasher_, *sealer_});
    sign_in_ = std::make_unique<::custos::authn::SignIn>(*store_, config_, clock_, random_,
                                                         *hasher_, *sealer_);
    routes_ = AuthnRoutes(*services_, *sign_in_);
    tenant_ = TenantId("00otenant0000000001");
    ASSERT_TRUE(store_
                    ->Write([&](store::Transaction& tx) {
                      return tx.Tenants().Insert({tenant_, "acme", clock_.Now()});
                    })
                    .ok());
  }
  void TearDown() override {
    routes_.clear();
    sign_in_.reset();
    temp_.reset();
  }

  store::UserRecord AddUser(const std::string& login) {
    store::UserRecord u;
    u.id = UserId(random_.Id(kUserIdPrefix));
    u.tenant_id = tenant_;
    u.status = std::string(store::kUserActive);
    u.login = login;
    u.profile_json = DumpJson(Json{{"login", login}, {"firstName", "Ada"}, {"lastName", "L"}});
    u.password_hash = *hasher_->Hash(kPassword);
    u.created = u.status_changed = u.last_updated = clock_.Now();
    u.password_changed = clock_.Now();
    EXPECT_TRUE(store_->Write([&](store::Transaction& tx) { return tx.Users().Insert(u); }).ok());
    return u;
  }

  Response Call(std::string_view method, std::string_view pattern, const std::string& body,
                absl::flat_hash_map<std::string, std::string> params = {},
                absl::flat_hash_map<std::string, std::string> headers = {}) {
    Request request;
    request.method = std::string(method);
    request.path = std::string(pattern);
    request.target = request.path;
    request.body = body;
    request.remote_ip = "192.0.2.1";
    request.request_id = "req-fixed";
    request.base_url = base_url_;
    request.headers = std::move(headers);
    if (!body.empty() && !request.headers.contains("content-type")) {
      request.headers["content-type"] = "application/json";
    }
    request.path_params = std::move(params);
    request.path_params["tenant"] = "acme";
    for (Route& r : routes_) {
      if (r.method == method && r.pattern == pattern) return r.handler(request);
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return Response();
  }

  Response SignIn(const std::string& username, const std::string& password) {
    return Call("POST", "/t/{tenant}/api/v1/authn",
                DumpJson(Json{{"username", username}, {"password", password}}));
  }

  static Json Body(const Response& r) { return *ParseJson(r.body); }

  std::unique_ptr<store::TempSqliteStore> temp_;
  std::string base_url_ = "http://127.0.0.1:8080";
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{9};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<::custos::authn::SignIn> sign_in_;
  std::vector<Route> routes_;
  TenantId tenant_;
};

TEST_F(AuthnHandlersTest, RoutesAreTheDocumentedOnes) {
  std::vector<std::string> got;
  for (const Route& r : routes_) got.push_back(r.method + " " + r.pattern);
  EXPECT_THAT(got, ElementsAre("POST /t/{tenant}/api/v1/authn",
                               "POST /t/{tenant}/api/v1/authn/factors/{factorId}/verify",
                               "POST /t/{tenant}/api/v1/authn/recovery/token",
                               "POST /t/{tenant}/api/v1/authn/credentials/reset_password",
                               "GET /t/{tenant}/api/v1/sessions/me",
                               "DELETE /t/{tenant}/api/v1/sessions/me"));
}

TEST_F(AuthnHandlersTest, MissingOrNonStringFieldsAre400WithCauses) {
  Response r = Call("POST", "/t/{tenant}/api/v1/authn", R"({"username": 5})");
  EXPECT_EQ(r.status, 400);
  Json body = Body(r);
  EXPECT_EQ(body["errorCode"], "E0000001");
  EXPECT_EQ(body["errorSummary"], "Api validation failed: username, password");
  EXPECT_EQ(body["errorCauses"], Json::parse(R"([{"errorSummary": "username: must be a string"},
                            {"errorSummary": "password: The field cannot be left blank"}])"));

  EXPECT_EQ(Body(Call("POST", "/t/{tenant}/api/v1/authn", "{not json"))["errorCode"], "E0000003");
  EXPECT_EQ(Call("POST", "/t/{tenant}/api/v1/authn", "[]").status, 400);
  EXPECT_EQ(Body(Call("POST", "/t/{tenant}/api/v1/authn/factors/{factorId}/verify",
                      R"({"stateToken": "x"})", {{"factorId", "uft1"}}))["errorCauses"],
            Json::parse(R"([{"errorSummary": "passCode: The field cannot be left blank"}])"));
}

TEST_F(AuthnHandlersTest, UnknownFieldsAreIgnored) {
  AddUser("ada@example.com");
  Response r = Call("POST", "/t/{tenant}/api/v1/authn",
                    R"({"username": "ada@example.com", "password": "correct horse battery staple",
                        "options": {"warnBeforePasswordExpired": true}, "context": {}})");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(AuthnHandlersTest, ABodyThatIsNotDeclaredJsonIsRefused) {
  // A cross-site HTML form can post text/plain but not application/json: refusing it stops
  // a forged sign-in (login CSRF).
  Response r = Call("POST", "/t/{tenant}/api/v1/authn", R"({"username": "a", "password": "b"})", {},
                    {{"content-type", "text/plain"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("E0000003"), std::string::npos) << r.body;
}

TEST_F(AuthnHandlersTest, UnknownTenantIs404) {
  Request request;
  request.method = "POST";
  request.path_params["tenant"] = "nope";
  request.body = R"({"username": "a", "password": "b"})";
  Response r = routes_[0].handler(request);
  EXPECT_EQ(r.status, 404);
}

TEST_F(AuthnHandlersTest, WrongPasswordAndUnknownUserAreByteIdentical) {
  AddUser("ada@example.com");
  Response wrong = SignIn("ada@example.com", "not the password at all");
  Response unknown = SignIn("nobody@example.com", "not the password at all");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(wrong.body, unknown.body);
  EXPECT_EQ(wrong.headers, unknown.headers);
  Json body = Body(wrong);
  EXPECT_EQ(body["errorCode"], "E0000004");
  EXPECT_EQ(body["errorSummary"], "Authentication failed");
  EXPECT_EQ(body["errorCauses"], Json::array());
  EXPECT_FALSE(HeaderOf(wrong, "Set-Cookie").has_value());
}

TEST_F(AuthnHandlersTest, SuccessReturnsSessionTokenUserAndCookie) {
  store::UserRecord user = AddUser("ada@example.com");
  Response r = SignIn("ada@example.com", kPassword);
  ASSERT_EQ(r.status, 200) << r.body;
  Json body = Body(r);
  EXPECT_EQ(body["status"], "SUCCESS");
  const std::string token = body["sessionToken"];
  EXPECT_EQ(token.size(), 43u);
  EXPECT_EQ(body["expiresAt"], "2026-01-01T02:00:00.000Z");  // idle timeout 2h
  EXPECT_EQ(body["_embedded"]["user"], Json({{"id", user.id.value()},
                                             {"passwordChanged", "2026-01-01T00:00:00.000Z"},
                                             {"profile",
                                              {{"login", "ada@example.com"},
                                               {"firstName", "Ada"},
                                               {"lastName", "L"},
                                               {"locale", nullptr},
                                               {"timeZone", nullptr}}}}));
  EXPECT_EQ(HeaderOf(r, "Set-Cookie"),
            "custos_sid=" + token + "; Path=/t/acme; HttpOnly; SameSite=Lax");
  EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store");
  EXPECT_EQ(r.delay, absl::ZeroDuration());

  base_url_ = "https://login.example.com";
  Response secure = SignIn("ada@example.com", kPassword);
  EXPECT_THAT(*HeaderOf(secure, "Set-Cookie"), HasSubstr("; SameSite=Lax; Secure"));
}

TEST_F(AuthnHandlersTest, MfaRequiredThenVerifyGivesSession) {
  store::UserRecord user = AddUser("ada@example.com");
  ::custos::authn::TotpEnrollment e = ::custos::authn::NewTotpFactor(
      tenant_, user.id, "acme", user.login, random_, *sealer_, clock_);
  e.record.status = std::string(store::kFactorActive);
  ASSERT_TRUE(
      store_->Write([&](store::Transaction& tx) { return tx.Factors().Insert(e.record); }).ok());

  Response primary = SignIn("ada@example.com", kPassword);
  ASSERT_EQ(primary.status, 200) << primary.body;
  EXPECT_FALSE(HeaderOf(primary, "Set-Cookie").has_value());
  Json body = Body(primary);
  EXPECT_EQ(body["status"], "MFA_REQUIRED");
  EXPECT_FALSE(body.contains("sessionToken"));
  EXPECT_EQ(body["expiresAt"], "2026-01-01T00:05:00.000Z");
  EXPECT_EQ(body["_embedded"]["user"]["id"], user.id.value());
  const std::string factor_id = e.record.id.value();
  EXPECT_EQ(body["_embedded"]["factors"],
            Json::array({{{"id", factor_id},
                          {"factorType", "token:software:totp"},
                          {"provider", "GOOGLE"},
                          {"vendorName", "GOOGLE"},
                          {"profile", {{"credentialId", "ada@example.com"}}},
                          {"_links",
                           {{"verify",
                             {{"href", "http://127.0.0.1:8080/t/acme/api/v1/authn/factors/" +
                                           factor_id + "/verify"},
                              {"hints", {{"allow", {"POST"}}}}}}}}}}));

  std::string secret = *crypto::Base32Decode(e.secret_base32);
  std::string code = crypto::TotpCode(secret, crypto::TotpStep(clock_.Now()));
  Response verified = Call("POST", "/t/{tenant}/api/v1/authn/factors/{factorId}/verify",
                           DumpJson(Json{{"stateToken", body["stateToken"]}, {"passCode", code}}),
                           {{"factorId", factor_id}});
  ASSERT_EQ(verified.status, 200) << verified.body;
  EXPECT_EQ(Body(verified)["status"], "SUCCESS");
  EXPECT_TRUE(HeaderOf(verified, "Set-Cookie").has_value());

  Response replay = Call("POST", "/t/{tenant}/api/v1/authn/factors/{factorId}/verify",
                         DumpJson(Json{{"stateToken", body["stateToken"]}, {"passCode", code}}),
                         {{"factorId", factor_id}});
  EXPECT_EQ(replay.status, 401);
  EXPECT_EQ(Body(replay)["errorCode"], "E0000011");
}

TEST_F(AuthnHandlersTest, WrongPasscodeIs403E0000068) {
  store::UserRecord user = AddUser("ada@example.com");
  ::custos::authn::TotpEnrollment e = ::custos::authn::NewTotpFactor(
      tenant_, user.id, "acme", user.login, random_, *sealer_, clock_);
  e.record.status = std::string(store::kFactorActive);
  ASSERT_TRUE(
      store_->Write([&](store::Transaction& tx) { return tx.Factors().Insert(e.record); }).ok());
  std::string state = Body(SignIn("ada@example.com", kPassword))["stateToken"];
  std::string code =
      crypto::TotpCode(*crypto::Base32Decode(e.secret_base32), crypto::TotpStep(clock_.Now()));
  Response r =
      Call("POST", "/t/{tenant}/api/v1/authn/factors/{factorId}/verify",
           DumpJson(Json{{"stateToken", state}, {"passCode", code == "000000" ? "1" : "0"}}),
           {{"factorId", e.record.id.value()}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Body(r)["errorCode"], "E0000068");
}

TEST_F(AuthnHandlersTest, ResponsesCarryTheProgressiveDelay) {
  AddUser("ada@example.com");
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 4; ++i) delays.push_back(SignIn("ada@example.com", "wrong guess").delay);
  EXPECT_THAT(delays, ElementsAre(absl::ZeroDuration(), absl::ZeroDuration(),
                                  absl::Milliseconds(250), absl::Milliseconds(500)));
}

TEST_F(AuthnHandlersTest, SessionsMeByCookieOrBearerThenLogout) {
  store::UserRecord user = AddUser("ada@example.com");
  Response signed_in = SignIn("ada@example.com", kPassword);
  const std::string token = Body(signed_in)["sessionToken"];

  Response by_cookie = Call("GET", "/t/{tenant}/api/v1/sessions/me", "", {},
                            {{"cookie", "theme=dark; custos_sid=" + token + "; other=1"}});
  ASSERT_EQ(by_cookie.status, 200) << by_cookie.body;
  Json me = Body(by_cookie);
  EXPECT_EQ(me["userId"], user.id.value());
  EXPECT_EQ(me["login"], "ada@example.com");
  EXPECT_EQ(me["status"], "ACTIVE");
  EXPECT_EQ(me["amr"], Json::array({"pwd"}));
  EXPECT_EQ(me["mfaActive"], false);
  EXPECT_TRUE(std::string(me["id"]).starts_with("102"));

  Response by_bearer =
      Call("GET", "/t/{tenant}/api/v1/sessions/me", "", {}, {{"authorization", "Bearer " + token}});
  EXPECT_EQ(by_bearer.status, 200);

  Response none = Call("GET", "/t/{tenant}/api/v1/sessions/me", "");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(Body(none)["errorSummary"], "Not found: Resource not found: me (Session)");
  EXPECT_EQ(Call("GET", "/t/{tenant}/api/v1/sessions/me", "", {},
                 {{"authorization", "Bearer not-a-session"}})
                .status,
            404);

  Response out = Call("DELETE", "/t/{tenant}/api/v1/sessions/me", "", {},
                      {{"authorization", "Bearer " + token}});
  EXPECT_EQ(out.status, 204);
  EXPECT_EQ(HeaderOf(out, "Set-Cookie"),
            "custos_sid=; Path=/t/acme; Max-Age=0; HttpOnly; SameSite=Lax");
  EXPECT_EQ(
      Call("GET", "/t/{tenant}/api/v1/sessions/me", "", {}, {{"authorization", "Bearer " + token}})
          .status,
      404);
  EXPECT_EQ(Call("DELETE", "/t/{tenant}/api/v1/sessions/me", "", {},
                 {{"authorization", "Bearer " + token}})
                .status,
            404);
}

TEST_F(AuthnHandlersTest, BackgroundChecksOfSessionsMeDoNotKeepTheSessionAlive) {
  AddUser("ada@example.com");
  const std::string token = Body(SignIn("ada@example.com", kPassword))["sessionToken"];
  auto me = [&](bool background) {
    absl::flat_hash_map<std::string, std::string> headers = {{"authorization", "Bearer " + token}};
    if (background) headers["x-custos-background"] = "1";
    return Call("GET", "/t/{tenant}/api/v1/sessions/me", "", {}, headers);
  };
  clock_.Advance(config_.session_idle_timeout - absl::Minutes(1));
  ASSERT_EQ(me(/*background=*/true).status, 200);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(me(/*background=*/true).status, 404) << "the poll did not restart the idle timeout";
  EXPECT_EQ(me(/*background=*/false).status, 404);
}

TEST_F(AuthnHandlersTest, RecoveryTokenThenResetPassword) {
  store::UserRecord user = AddUser("ada@example.com");
  user.status = std::string(store::kUserRecovery);
  user.recovery_token_hash = crypto::Sha256Hex("the-recovery-token");
  user.recovery_expires = clock_.Now() + absl::Hours(1);
  ASSERT_TRUE(store_->Write([&](store::Transaction& tx) { return tx.Users().Update(user); }).ok());

  Response bad =
      Call("POST", "/t/{tenant}/api/v1/authn/recovery/token", R"({"recoveryToken": "guess"})");
  EXPECT_EQ(bad.status, 401);
  EXPECT_EQ(Body(bad)["errorCode"], "E0000011");

  Response rec = Call("POST", "/t/{tenant}/api/v1/authn/recovery/token",
                      R"({"recoveryToken": "the-recovery-token"})");
  ASSERT_EQ(rec.status, 200) << rec.body;
  Json body = Body(rec);
  EXPECT_EQ(body["status"], "PASSWORD_RESET");
  EXPECT_EQ(body["recoveryType"], "PASSWORD");
  EXPECT_EQ(body["_embedded"]["user"]["id"], user.id.value());
  EXPECT_EQ(body["_embedded"]["policy"]["complexity"]["minLength"], 8);
  EXPECT_EQ(body["_links"]["next"]["name"], "resetPassword");
  EXPECT_EQ(body["_links"]["next"]["href"],
            "http://127.0.0.1:8080/t/acme/api/v1/authn/credentials/reset_password");

  Response weak =
      Call("POST", "/t/{tenant}/api/v1/authn/credentials/reset_password",
           DumpJson(Json{{"stateToken", body["stateToken"]}, {"newPassword", "short"}}));
  EXPECT_EQ(weak.status, 400);
  EXPECT_EQ(Body(weak)["errorCode"], "E0000080");
  EXPECT_THAT(Body(weak)["errorCauses"], SizeIs(1));

  Response done = Call("POST", "/t/{tenant}/api/v1/authn/credentials/reset_password",
                       DumpJson(Json{{"stateToken", body["stateToken"]},
                                     {"newPassword", "a much better passphrase"}}));
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_EQ(Body(done)["status"], "SUCCESS");
  EXPECT_EQ(SignIn("ada@example.com", "a much better passphrase").status, 200);
}

}  // namespace
}  // namespace custos::api::authn
