#include "oidc/token_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/errors.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/password_hasher.h"
#include "crypto/sealer.h"
#include "directory/tenants.h"
#include "oidc/jwt.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/jwk.h"
#include "support/store_replay_cache.h"

namespace custos::oidc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kRedirect[] = "https://payroll.example/cb";
constexpr char kSpaRedirect[] = "https://spa.example/cb";
constexpr char kSession[] = "102session0000000001";
// RFC 7636 appendix B.
constexpr char kVerifier[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr char kChallenge[] = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

// The OAuth error of a status, "ok" when there is none.
std::string ErrorOf(const absl::Status& status) {
  if (status.ok()) return "ok";
  std::optional<OAuthError> error = OAuthErrorOf(status);
  return error ? error->error : "internal: " + std::string(status.message());
}
int HttpOf(const absl::Status& status) {
  std::optional<OAuthError> error = OAuthErrorOf(status);
  return error ? error->http_status : 0;
}

std::string B64(const Json& j) { return crypto::Base64UrlEncode(DumpJson(j)); }

// A client's key pair: signs DPoP proofs and client assertions.
struct ClientKey {
  SigningKey key;
  Json jwk;
  std::string jkt;

  static ClientKey Make(std::string_view kid) {
    absl::StatusOr<SigningKey> key = SigningKey::Generate(kAlgEs256);
    EXPECT_TRUE(key.ok()) << key.status();
    Json jwk = key->PublicJwk(kid);
    return {*key, jwk, support::Thumbprint(*support::ParsePublicJwk(jwk))};
  }

  std::string Compact(const Json& header, const Json& claims) const {
    std::string input = B64(header) + "." + B64(claims);
    absl::StatusOr<std::string> sig = key.Sign(input);
    EXPECT_TRUE(sig.ok()) << sig.status();
    return input + "." + crypto::Base64UrlEncode(*sig);
  }

  std::string Proof(std::string_view method, std::string_view url, absl::Time now,
                    std::string_view jti, std::string_view access_token = {}) const {
    Json claims = {{"jti", std::string(jti)},
                   {"htm", std::string(method)},
                   {"htu", std::string(url)},
                   {"iat", absl::ToUnixSeconds(now)}};
    if (!access_token.empty()) {
      claims["ath"] = crypto::Base64UrlEncode(crypto::Sha256(access_token));
    }
    return Compact({{"typ", "dpop+jwt"}, {"alg", "ES256"}, {"jwk", jwk}}, claims);
  }
};

class TokenServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    config_.argon2_memory_kib = 1024;
    config_.argon2_iterations = 1;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{1024, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    directory_ = std::make_unique<directory::Directory>(*store_, config_, clock_, random_, *hasher_,
                                                        *sealer_);
    keys_ = std::make_unique<KeyManager>(*store_, *sealer_, clock_, random_);
    apps_ = std::make_unique<Apps>(*store_, clock_, random_);
    dpop_ = std::make_unique<support::DpopVerifier>(clock_);
    service_ = std::make_unique<TokenService>(*store_, clock_, random_, *keys_, *apps_, *directory_,
                                              *dpop_);
    ctx_.actor = audit::SystemPrincipal();
    ctx_.request_id = "test";
    directory::Tenants tenants(*store_, clock_, random_);
    tenant_ = *tenants.Create(ctx_, "acme");
    other_ = *tenants.Create(ctx_, "globex");

    auto user = directory_->CreateUser(tenant_.id, ctx_,
                                       {{"login", "ada@acme.test"},
                                        {"email", "ada@acme.test"},
                                        {"firstName", "Ada"},
                                        {"lastName", "Lovelace"},
                                        {"locale", "en_GB"},
                                        {"timezone", "Europe/London"}},
                                       std::string("tiny-bright-lantern"), true);
    ASSERT_TRUE(user.ok()) << user.status();
    user_ = *user;
    // The sign-in session the test codes are issued under.
    ASSERT_TRUE(InsertSession(SessionId(kSession)).ok());
    // The tenant's first signing keys (and their events) before any test counts events.
    ASSERT_TRUE(keys_->Active(tenant_.id).ok());

    assertion_key_ = std::make_unique<ClientKey>(ClientKey::Make("client-key-1"));
    web_ = MakeApp(WebBody("client_secret_basic", {"authorization_code", "refresh_token"}));
    post_ = MakeApp(WebBody("client_secret_post", {"authorization_code"}));
    Json jwt_body = WebBody("private_key_jwt", {"authorization_code", "client_credentials"});
    jwt_body["settings"]["oauthClient"]["jwks"] = {{"keys", {assertion_key_->jwk}}};
    jwt_app_ = MakeApp(jwt_body);
    spa_ = MakeApp({{"label", "Spa"},
                    {"settings",
                     {{"oauthClient",
                       {{"application_type", "browser"},
                        {"redirect_uris", {kSpaRedirect}},
                        {"grant_types", {"authorization_code", "refresh_token"}}}}}}});
    service_app_ = MakeApp(
        {{"label", "Reports"}, {"settings", {{"oauthClient", {{"application_type", "service"}}}}}});
  }
  void TearDown() override {
    service_.reset();
    temp_.reset();
  }

  static Json WebBody(std::string_view method, std::vector<std::string> grants) {
    return {{"label", "Payroll"},
            {"credentials", {{"oauthClient", {{"token_endpoint_auth_method", method}}}}},
            {"settings",
             {{"oauthClient",
               {{"application_type", "web"},
                {"redirect_uris", {kRedirect}},
                {"grant_types", grants},
                {"token_lifetimes", {{"access_token", "1h"}, {"id_token", "30m"}}}}}}}};
  }

  IssuedApp MakeApp(const Json& body) {
    absl::StatusOr<IssuedApp> app = apps_->Create(tenant_.id, ctx_, body);
    EXPECT_TRUE(app.ok()) << app.status();
    return *app;
  }

  std::string Issuer() const { return "https://id.example/t/acme"; }
  std::string TokenUrl() const { return Issuer() + "/oauth2/v1/token"; }

  absl::Status InsertSession(const SessionId& id) {
    return store_->Write([&](store::Transaction& tx) {
      return tx.Sessions().Insert({.id = id,
                                   .tenant_id = tenant_.id,
                                   .user_id = user_.id,
                                   .token_hash = crypto::Sha256Hex(id.value()),
                                   .created = clock_.Now() - absl::Minutes(2),
                                   .last_active = clock_.Now(),
                                   .expires = clock_.Now() + absl::Hours(24 * 365),
                                   .amr = "pwd otp"});
    });
  }

  CodeGrant Grant(const IssuedApp& app, std::string scope = "openid profile email offline_access") {
    CodeGrant g;
    g.client_id = app.app.id;
    g.user_id = user_.id;
    g.session_id = SessionId(kSession);
    g.redirect_uri = app.settings.redirect_uris.at(0);
    g.scope = std::move(scope);
    g.nonce = "n-0S6_WzA2Mj";
    g.auth_time = clock_.Now() - absl::Minutes(2);
    g.amr = "pwd otp";
    return g;
  }

  std::string Code(const CodeGrant& grant) {
    absl::StatusOr<std::string> code = service_->IssueCode(tenant_, ctx_, grant);
    EXPECT_TRUE(code.ok()) << code.status();
    return code.ok() ? *code : "";
  }

  ClientRequest Request(std::map<std::string, std::string> form) {
    ClientRequest r;
    r.form = std::move(form);
    r.method = "POST";
    r.url = TokenUrl();
    return r;
  }
  // client_secret_basic.
  ClientRequest BasicRequest(const IssuedApp& app, std::map<std::string, std::string> form,
                             std::string secret = "") {
    ClientRequest r = Request(std::move(form));
    if (secret.empty()) secret = app.client_secret.value_or("");
    r.authorization = "Basic " + crypto::Base64Encode(app.app.id + ":" + secret);
    return r;
  }
  // private_key_jwt with the registered key.
  std::string Assertion(const IssuedApp& app, Json changes = Json::object()) {
    const int64_t now = absl::ToUnixSeconds(clock_.Now());
    Json claims = {{"iss", app.app.id}, {"sub", app.app.id}, {"aud", TokenUrl()},
                   {"iat", now},        {"exp", now + 60},   {"jti", random_.Token(12)}};
    claims.update(changes);
    for (auto it = claims.begin(); it != claims.end();) {
      it = it->is_null() ? claims.erase(it) : std::next(it);
    }
    absl::StatusOr<std::string> jwt = SignJwt(assertion_key_->key, "client-key-1", "JWT", claims);
    EXPECT_TRUE(jwt.ok()) << jwt.status();
    return *jwt;
  }
  ClientRequest JwtRequest(const IssuedApp& app, std::map<std::string, std::string> form,
                           std::string assertion = "") {
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    form["client_assertion"] = assertion.empty() ? Assertion(app) : assertion;
    return Request(std::move(form));
  }

  // Authenticated the way the app is registered.
  ClientRequest As(const IssuedApp& app, std::map<std::string, std::string> form) {
    const std::string& method = app.app.token_endpoint_auth_method;
    if (method == kAuthBasic) return BasicRequest(app, std::move(form));
    if (method == kAuthPrivateKeyJwt) return JwtRequest(app, std::move(form));
    form["client_id"] = app.app.id;
    if (method == kAuthPost) form["client_secret"] = *app.client_secret;
    return Request(std::move(form));
  }

  absl::StatusOr<Json> Exchange(const IssuedApp& app, const std::string& code,
                                std::map<std::string, std::string> extra = {}) {
    extra["grant_type"] = "authorization_code";
    extra["code"] = code;
    if (!extra.contains("redirect_uri")) extra["redirect_uri"] = app.settings.redirect_uris.at(0);
    return service_->Token(tenant_, Issuer(), ctx_, As(app, extra));
  }
  absl::StatusOr<Json> WebTokens(const std::string& scope = "openid profile email offline_access") {
    return Exchange(web_, Code(Grant(web_, scope)));
  }
  absl::StatusOr<Json> RefreshWith(const IssuedApp& app, const std::string& refresh_token,
                                   std::map<std::string, std::string> extra = {}) {
    extra["grant_type"] = "refresh_token";
    extra["refresh_token"] = refresh_token;
    return service_->Token(tenant_, Issuer(), ctx_, As(app, extra));
  }
  absl::StatusOr<Json> ClientCredentials(const std::string& scope = "",
                                         const std::string& dpop = "") {
    std::map<std::string, std::string> form = {{"grant_type", "client_credentials"}};
    if (!scope.empty()) form["scope"] = scope;
    ClientRequest r = BasicRequest(service_app_, form);
    r.dpop = dpop;
    return service_->Token(tenant_, Issuer(), ctx_, r);
  }
  absl::StatusOr<Json> Introspect(const std::string& token, const IssuedApp* as = nullptr) {
    return service_->Introspect(tenant_, Issuer(), ctx_, As(as ? *as : web_, {{"token", token}}));
  }
  absl::Status Revoke(const IssuedApp& app, const std::string& token) {
    return service_->Revoke(tenant_, Issuer(), ctx_, As(app, {{"token", token}}));
  }

  VerifiedJwt Verify(const std::string& jwt, const store::TenantRecord* tenant = nullptr) {
    const TenantId id = tenant ? tenant->id : tenant_.id;
    absl::StatusOr<VerifiedJwt> v = VerifyJwt(
        jwt, [&](const Json& header) { return keys_->PublicKey(id, header.value("kid", "")); });
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : VerifiedJwt{};
  }

  std::vector<Json> Events(const std::string& type = "") {
    std::vector<Json> out;
    absl::Status st = store_->Read([&](store::Transaction& tx) -> absl::Status {
      auto events = tx.Events().Query(tenant_.id, {.limit = 10000});
      if (!events.ok()) return events.status();
      for (const auto& e : *events) {
        if (type.empty() || e.event_type == type) out.push_back(Json::parse(e.json));
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }
  std::string AllEventText() {
    std::string all;
    for (const Json& e : Events()) all += e.dump();
    return all;
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{11};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<KeyManager> keys_;
  std::unique_ptr<Apps> apps_;
  std::unique_ptr<support::DpopVerifier> dpop_;
  std::unique_ptr<TokenService> service_;
  audit::RequestContext ctx_;
  store::TenantRecord tenant_, other_;
  store::UserRecord user_;
  std::unique_ptr<ClientKey> assertion_key_;
  IssuedApp web_, post_, jwt_app_, spa_, service_app_;
};

// ---- authorization_code ----

TEST_F(TokenServiceTest, CodeExchangeIssuesAccessIdAndRefreshTokens) {
  CodeGrant grant = Grant(web_, "openid profile email offline_access");
  const std::string code = Code(grant);
  absl::StatusOr<Json> tokens = Exchange(web_, code);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)["token_type"], "Bearer");
  EXPECT_EQ((*tokens)["expires_in"], 3600);
  EXPECT_EQ((*tokens)["scope"], "openid profile email offline_access");
  // offline_access, and the app allows the refresh_token grant.
  ASSERT_TRUE(tokens->contains("refresh_token"));

  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  const std::string access_token = (*tokens)["access_token"];
  VerifiedJwt at = Verify(access_token);
  EXPECT_EQ(at.header["typ"], "at+jwt");
  EXPECT_EQ(at.claims["iss"], Issuer());
  EXPECT_EQ(at.claims["aud"], Issuer());
  EXPECT_EQ(at.claims["sub"], user_.id.value());
  EXPECT_EQ(at.claims["client_id"], web_.app.id);
  EXPECT_EQ(at.claims["scope"], "openid profile email offline_access");
  EXPECT_EQ(at.claims["iat"], now);
  EXPECT_EQ(at.claims["exp"], now + 3600);
  EXPECT_EQ(at.claims["auth_time"], absl::ToUnixSeconds(grant.auth_time));
  EXPECT_FALSE(at.claims["jti"].get<std::string>().empty());
  EXPECT_FALSE(at.claims.contains("cnf"));

  EXPECT_EQ(at.header["alg"], "ES256");
  VerifiedJwt id = Verify((*tokens)["id_token"]);
  EXPECT_EQ(id.header["typ"], "JWT");
  EXPECT_EQ(id.header["alg"], "ES256");  // the default id_token_signed_response_alg
  EXPECT_EQ(id.claims["iss"], Issuer());
  EXPECT_EQ(id.claims["sub"], user_.id.value());
  EXPECT_EQ(id.claims["aud"], web_.app.id);
  EXPECT_EQ(id.claims["exp"], now + 1800);  // the app's id_token lifetime
  EXPECT_EQ(id.claims["iat"], now);
  EXPECT_EQ(id.claims["auth_time"], absl::ToUnixSeconds(grant.auth_time));
  EXPECT_EQ(id.claims["nonce"], "n-0S6_WzA2Mj");
  EXPECT_EQ(id.claims["amr"], Json({"pwd", "otp"}));
  EXPECT_EQ(id.claims["sid"], kSession);
  EXPECT_EQ(id.claims["at_hash"],
            crypto::Base64UrlEncode(crypto::Sha256(access_token).substr(0, 16)));
  EXPECT_EQ(id.claims["name"], "Ada Lovelace");
  EXPECT_EQ(id.claims["given_name"], "Ada");
  EXPECT_EQ(id.claims["family_name"], "Lovelace");
  EXPECT_EQ(id.claims["preferred_username"], "ada@acme.test");
  EXPECT_EQ(id.claims["locale"], "en_GB");
  EXPECT_EQ(id.claims["zoneinfo"], "Europe/London");
  EXPECT_EQ(id.claims["email"], "ada@acme.test");
  EXPECT_EQ(id.claims["email_verified"], false);

  std::vector<Json> grants = Events("app.oauth2.as.token.grant");
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(grants[0]["actor"]["id"], user_.id.value());
  EXPECT_EQ(grants[0]["actor"]["type"], "User");
  EXPECT_EQ(grants[0]["debugContext"]["debugData"]["tokens"],
            "access_token id_token refresh_token");
  EXPECT_EQ(Events("app.oauth2.as.authorize.code").size(), 1u);
  const std::string log = AllEventText();
  EXPECT_THAT(log, Not(HasSubstr(code)));
  EXPECT_THAT(log, Not(HasSubstr(access_token)));
  EXPECT_THAT(log, Not(HasSubstr((*tokens)["refresh_token"].get<std::string>())));
  EXPECT_THAT(log, Not(HasSubstr(*web_.client_secret)));
}

TEST_F(TokenServiceTest, ScopeDecidesIdTokenAndClaims) {
  absl::StatusOr<Json> plain = WebTokens("profile");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->contains("id_token"));

  absl::StatusOr<Json> openid = WebTokens("openid");
  ASSERT_TRUE(openid.ok()) << openid.status();
  VerifiedJwt id = Verify((*openid)["id_token"]);
  EXPECT_FALSE(id.claims.contains("email"));
  EXPECT_FALSE(id.claims.contains("name"));

  // Without the refresh_token grant no refresh token is issued, whatever the scope.
  absl::StatusOr<Json> post = Exchange(post_, Code(Grant(post_, "openid offline_access")));
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_FALSE(post->contains("refresh_token"));
}

TEST_F(TokenServiceTest, RefreshTokenOnlyWithOfflineAccess) {
  absl::StatusOr<Json> online = WebTokens("openid profile");
  ASSERT_TRUE(online.ok()) << online.status();
  EXPECT_FALSE(online->contains("refresh_token"));
  EXPECT_EQ(Events("app.oauth2.as.token.grant").back()["debugContext"]["debugData"]["tokens"],
            "access_token id_token");
  absl::StatusOr<Json> offline = WebTokens("openid offline_access");
  ASSERT_TRUE(offline.ok()) << offline.status();
  EXPECT_TRUE(offline->contains("refresh_token"));

  // A public client the same.
  CodeGrant grant = Grant(spa_, "openid");
  grant.code_challenge = kChallenge;
  grant.code_challenge_method = "S256";
  absl::StatusOr<Json> spa =
      Exchange(spa_, Code(grant), {{"client_id", spa_.app.id}, {"code_verifier", kVerifier}});
  ASSERT_TRUE(spa.ok()) << spa.status();
  EXPECT_FALSE(spa->contains("refresh_token"));
}

TEST_F(TokenServiceTest, AppChoosesTheIdTokenSigningAlg) {
  Json body = WebBody("client_secret_basic", {"authorization_code", "refresh_token"});
  body["settings"]["oauthClient"]["id_token_signed_response_alg"] = "EdDSA";
  IssuedApp ed = MakeApp(body);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> es_key = keys_->Active(tenant_.id, kAlgEs256);
  absl::StatusOr<std::shared_ptr<const ActiveKey>> ed_key = keys_->Active(tenant_.id, kAlgEdDsa);
  ASSERT_TRUE(es_key.ok() && ed_key.ok());

  absl::StatusOr<Json> tokens = Exchange(ed, Code(Grant(ed)));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  VerifiedJwt id = Verify((*tokens)["id_token"]);
  EXPECT_EQ(id.header["alg"], "EdDSA");
  EXPECT_EQ(id.header["kid"], (*ed_key)->kid);
  EXPECT_EQ(id.claims["aud"], ed.app.id);
  EXPECT_EQ(id.claims["nonce"], "n-0S6_WzA2Mj");
  EXPECT_FALSE(id.claims.contains("at_hash"));  // OIDC Core names no hash for EdDSA
  // Access tokens stay ES256, whatever the app's ID token alg.
  VerifiedJwt at = Verify((*tokens)["access_token"]);
  EXPECT_EQ(at.header["alg"], "ES256");
  EXPECT_EQ(at.header["kid"], (*es_key)->kid);
  EXPECT_EQ((*Introspect((*tokens)["access_token"]))["active"], true);

  absl::StatusOr<Json> refreshed = RefreshWith(ed, (*tokens)["refresh_token"]);
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(Verify((*refreshed)["id_token"]).header["alg"], "EdDSA");
  EXPECT_EQ(Verify((*refreshed)["access_token"]).header["alg"], "ES256");

  // Back to the default: the next ID token is ES256 again.
  body["settings"]["oauthClient"].erase("id_token_signed_response_alg");
  ASSERT_TRUE(apps_->Replace(tenant_.id, ctx_, ed.app.id, body).ok());
  absl::StatusOr<Json> after = Exchange(ed, Code(Grant(ed)));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Verify((*after)["id_token"]).header["kid"], (*es_key)->kid);
}

TEST_F(TokenServiceTest, CodeIsSingleUseAndReuseRevokesWhatItGave) {
  const std::string code = Code(Grant(web_));
  absl::StatusOr<Json> first = Exchange(web_, code);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string access_token = (*first)["access_token"];
  ASSERT_EQ((*Introspect(access_token))["active"], true);

  absl::StatusOr<Json> again = Exchange(web_, code);
  EXPECT_EQ(ErrorOf(again.status()), "invalid_grant");
  EXPECT_EQ(HttpOf(again.status()), 400);

  EXPECT_EQ((*Introspect(access_token))["active"], false);
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*first)["refresh_token"]).status()), "invalid_grant");
  // The code's reuse; the refresh token it gave was revoked with the family, and presenting it
  // is refused without counting as another reuse.
  std::vector<Json> reuse = Events("app.oauth2.as.token.detect_reuse");
  ASSERT_EQ(reuse.size(), 1u);
  EXPECT_THAT(reuse[0]["displayMessage"].get<std::string>(), HasSubstr("authorization code"));
  EXPECT_EQ(reuse[0]["severity"], "WARN");
  EXPECT_EQ(reuse[0]["outcome"]["reason"], "invalid_grant");
}

TEST_F(TokenServiceTest, CodeRefusals) {
  // Unknown, missing.
  EXPECT_EQ(ErrorOf(Exchange(web_, "no-such-code").status()), "invalid_grant");
  EXPECT_EQ(ErrorOf(Exchange(web_, "").status()), "invalid_request");
  // Another redirect_uri.
  std::string code = Code(Grant(web_));
  EXPECT_EQ(ErrorOf(Exchange(web_, code, {{"redirect_uri", "https://evil.example/cb"}}).status()),
            "invalid_grant");
  // The code is still good for its own redirect_uri: a refusal does not consume it.
  EXPECT_TRUE(Exchange(web_, code).ok());
  // Another client's code.
  code = Code(Grant(post_));
  EXPECT_EQ(ErrorOf(Exchange(web_, code, {{"redirect_uri", kRedirect}}).status()), "invalid_grant");
  // Expired.
  code = Code(Grant(web_));
  clock_.Advance(absl::Minutes(1));
  EXPECT_EQ(ErrorOf(Exchange(web_, code).status()), "invalid_grant");
  // A suspended user's code.
  clock_.Advance(absl::Seconds(1));
  code = Code(Grant(web_));
  ASSERT_TRUE(directory_->Suspend(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ(ErrorOf(Exchange(web_, code).status()), "invalid_grant");

  std::vector<Json> grants = Events("app.oauth2.as.token.grant");
  int failures = std::count_if(grants.begin(), grants.end(),
                               [](const Json& e) { return e["outcome"]["result"] == "FAILURE"; });
  EXPECT_EQ(failures, 6);
}

TEST_F(TokenServiceTest, PkceForPublicClients) {
  CodeGrant grant = Grant(spa_, "openid offline_access");
  grant.code_challenge = kChallenge;
  grant.code_challenge_method = "S256";
  absl::StatusOr<Json> ok =
      Exchange(spa_, Code(grant), {{"client_id", spa_.app.id}, {"code_verifier", kVerifier}});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->contains("refresh_token"));

  auto refused = [&](const CodeGrant& g, std::map<std::string, std::string> extra) {
    extra["client_id"] = spa_.app.id;
    return ErrorOf(Exchange(spa_, Code(g), extra).status());
  };
  std::string wrong(kVerifier);
  wrong[0] = 'e';
  EXPECT_EQ(refused(grant, {{"code_verifier", wrong}}), "invalid_grant");
  EXPECT_EQ(refused(grant, {}), "invalid_grant");
  EXPECT_EQ(refused(grant, {{"code_verifier", "too-short"}}), "invalid_grant");
  CodeGrant no_pkce = Grant(spa_);
  EXPECT_EQ(refused(no_pkce, {{"code_verifier", kVerifier}}), "invalid_grant");
  EXPECT_EQ(refused(no_pkce, {}), "invalid_grant");
  CodeGrant plain = Grant(spa_);
  plain.code_challenge = kVerifier;
  plain.code_challenge_method = "plain";
  EXPECT_EQ(refused(plain, {{"code_verifier", kVerifier}}), "invalid_grant");
}

TEST_F(TokenServiceTest, PkceForConfidentialClients) {
  CodeGrant grant = Grant(web_);
  grant.code_challenge = kChallenge;
  grant.code_challenge_method = "S256";
  EXPECT_TRUE(Exchange(web_, Code(grant), {{"code_verifier", kVerifier}}).ok());
  EXPECT_EQ(ErrorOf(Exchange(web_, Code(grant)).status()), "invalid_grant");
  // A verifier for a code that had no challenge is a downgrade attempt.
  EXPECT_EQ(ErrorOf(Exchange(web_, Code(Grant(web_)), {{"code_verifier", kVerifier}}).status()),
            "invalid_grant");
  CodeGrant plain = Grant(web_);
  plain.code_challenge = kVerifier;
  plain.code_challenge_method = "plain";
  EXPECT_TRUE(Exchange(web_, Code(plain), {{"code_verifier", kVerifier}}).ok());
}

// ---- client authentication ----

TEST_F(TokenServiceTest, ClientAuthenticationMethods) {
  // client_secret_basic with a wrong secret.
  absl::StatusOr<Json> wrong = service_->Token(
      tenant_, Issuer(), ctx_,
      BasicRequest(web_, {{"grant_type", "authorization_code"}, {"code", "x"}}, "not-the-secret"));
  EXPECT_EQ(ErrorOf(wrong.status()), "invalid_client");
  EXPECT_EQ(HttpOf(wrong.status()), 401);
  // client_secret_post for an app registered with client_secret_basic.
  absl::StatusOr<Json> post = service_->Token(tenant_, Issuer(), ctx_,
                                              Request({{"grant_type", "authorization_code"},
                                                       {"code", "x"},
                                                       {"client_id", web_.app.id},
                                                       {"client_secret", *web_.client_secret}}));
  EXPECT_EQ(ErrorOf(post.status()), "invalid_client");
  // Two methods at once.
  absl::StatusOr<Json> both =
      service_->Token(tenant_, Issuer(), ctx_,
                      BasicRequest(web_, {{"grant_type", "authorization_code"},
                                          {"client_id", web_.app.id},
                                          {"client_secret", *web_.client_secret}}));
  EXPECT_EQ(ErrorOf(both.status()), "invalid_request");
  EXPECT_EQ(HttpOf(both.status()), 400);
  // No credentials for a confidential client; an unknown client; nothing at all.
  EXPECT_EQ(ErrorOf(service_
                        ->Token(tenant_, Issuer(), ctx_,
                                Request({{"grant_type", "client_credentials"},
                                         {"client_id", service_app_.app.id}}))
                        .status()),
            "invalid_client");
  EXPECT_EQ(ErrorOf(service_
                        ->Token(tenant_, Issuer(), ctx_,
                                Request({{"grant_type", "client_credentials"},
                                         {"client_id", "0oanosuchclient00001"}}))
                        .status()),
            "invalid_client");
  EXPECT_EQ(
      ErrorOf(service_->Token(tenant_, Issuer(), ctx_, Request({{"grant_type", "refresh_token"}}))
                  .status()),
      "invalid_client");
  // RFC 6749 2.3.1: the id and secret inside Basic are form-urlencoded.
  ClientRequest encoded = Request({{"grant_type", "client_credentials"}});
  encoded.authorization = "Basic " + crypto::Base64Encode("%30" + service_app_.app.id.substr(1) +
                                                          ":" + *service_app_.client_secret);
  ASSERT_EQ(service_app_.app.id[0], '0');
  EXPECT_EQ(ErrorOf(service_->Token(tenant_, Issuer(), ctx_, encoded).status()), "ok");
  // A client of another tenant.
  EXPECT_EQ(ErrorOf(service_
                        ->Token(other_, "https://id.example/t/globex", ctx_,
                                BasicRequest(service_app_, {{"grant_type", "client_credentials"}}))
                        .status()),
            "invalid_client");

  std::vector<Json> refusals = Events("app.oauth2.as.token.grant");
  ASSERT_FALSE(refusals.empty());
  EXPECT_EQ(refusals[0]["outcome"]["result"], "FAILURE");
  EXPECT_EQ(refusals[0]["outcome"]["reason"], "invalid_client");
  EXPECT_EQ(refusals[0]["actor"]["id"], web_.app.id);
  EXPECT_EQ(refusals[0]["debugContext"]["debugData"]["cause"], "bad_secret");
  EXPECT_THAT(AllEventText(), Not(HasSubstr("not-the-secret")));
}

TEST_F(TokenServiceTest, InactiveAppIsRefused) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_TRUE(apps_->SetStatus(tenant_.id, ctx_, web_.app.id, false).ok());
  // The refresh grant reads the app in its transaction: refused at once.
  absl::StatusOr<Json> refreshed = RefreshWith(web_, (*tokens)["refresh_token"]);
  EXPECT_EQ(ErrorOf(refreshed.status()), "invalid_client");
  EXPECT_EQ(HttpOf(refreshed.status()), 401);
  // Anything else too, though the record was cached a moment ago.
  EXPECT_EQ(ErrorOf(Exchange(web_, Code(Grant(web_))).status()), "invalid_client");
}

TEST_F(TokenServiceTest, AppChangesTakeEffectAtOnce) {
  const std::map<std::string, std::string> grant = {{"grant_type", "client_credentials"}};
  auto with_secret = [&](const std::string& secret) {
    return ErrorOf(
        service_->Token(tenant_, Issuer(), ctx_, BasicRequest(service_app_, grant, secret))
            .status());
  };
  auto introspect_with = [&](const std::string& secret) {
    return ErrorOf(service_
                       ->Introspect(tenant_, Issuer(), ctx_,
                                    BasicRequest(service_app_, {{"token", "x"}}, secret))
                       .status());
  };
  const std::string first = *service_app_.client_secret;
  ASSERT_EQ(with_secret(first), "ok");  // the app record is cached now
  absl::StatusOr<IssuedApp> rotated = apps_->NewSecret(tenant_.id, ctx_, service_app_.app.id);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  const std::string second = *rotated->client_secret;
  // No time passes: the old secret is refused and the new one accepted at once.
  EXPECT_EQ(with_secret(first), "invalid_client");
  EXPECT_EQ(introspect_with(first), "invalid_client");
  EXPECT_EQ(with_secret(second), "ok");
  EXPECT_EQ(introspect_with(second), "ok");
  ASSERT_TRUE(apps_->SetStatus(tenant_.id, ctx_, service_app_.app.id, false).ok());
  EXPECT_EQ(with_secret(second), "invalid_client");
  EXPECT_EQ(ErrorOf(service_->Revoke(tenant_, Issuer(), ctx_,
                                     BasicRequest(service_app_, {{"token", "x"}}, second))),
            "invalid_client");
  ASSERT_TRUE(apps_->SetStatus(tenant_.id, ctx_, service_app_.app.id, true).ok());
  EXPECT_EQ(with_secret(second), "ok");

  // A change made by another process sharing the store is seen within app_cache_ttl.
  Apps elsewhere(*store_, clock_, random_);
  absl::StatusOr<IssuedApp> third = elsewhere.NewSecret(tenant_.id, ctx_, service_app_.app.id);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(with_secret(second), "ok");
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(with_secret(second), "invalid_client");
  EXPECT_EQ(with_secret(*third->client_secret), "ok");
}

TEST_F(TokenServiceTest, PrivateKeyJwt) {
  std::map<std::string, std::string> form = {{"grant_type", "client_credentials"}};
  const std::string assertion = Assertion(jwt_app_, {{"jti", "jti-once"}});
  absl::StatusOr<Json> ok =
      service_->Token(tenant_, Issuer(), ctx_, JwtRequest(jwt_app_, form, assertion));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(Verify((*ok)["access_token"]).claims["sub"], jwt_app_.app.id);

  auto error_with = [&](const std::string& a) {
    return ErrorOf(
        service_->Token(tenant_, Issuer(), ctx_, JwtRequest(jwt_app_, form, a)).status());
  };
  EXPECT_EQ(error_with(assertion), "invalid_client");  // replayed jti
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"aud", Issuer()}})), "ok");
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"aud", "https://other.example/token"}})),
            "invalid_client");
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"exp", nullptr}})), "invalid_client");
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"exp", now - 1}})), "invalid_client");
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"iat", now - 301}, {"exp", now + 60}})),
            "invalid_client");
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"iss", web_.app.id}})), "invalid_client");
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"jti", nullptr}})), "invalid_client");
  // Signed by a key the app did not register.
  ClientKey stranger = ClientKey::Make("client-key-1");
  absl::StatusOr<std::string> forged = SignJwt(stranger.key, "client-key-1", "JWT",
                                               {{"iss", jwt_app_.app.id},
                                                {"sub", jwt_app_.app.id},
                                                {"aud", TokenUrl()},
                                                {"iat", now},
                                                {"exp", now + 60},
                                                {"jti", "forged-1"}});
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(error_with(*forged), "invalid_client");
  // A secret for an app that uses private_key_jwt.
  EXPECT_EQ(
      ErrorOf(service_->Token(tenant_, Issuer(), ctx_, BasicRequest(jwt_app_, form, "some-secret"))
                  .status()),
      "invalid_client");
  // Once the assertion is too old to be accepted, its jti is forgotten.
  clock_.Advance(absl::Minutes(10));
  EXPECT_EQ(error_with(Assertion(jwt_app_, {{"jti", "jti-once"}})), "ok");
}

// Two processes on one store: with the store-backed cache an assertion accepted by one service
// is a replay at the other; with each its own memory it is not (what the cache is for).
TEST_F(TokenServiceTest, AssertionReplayRefusedAcrossServicesSharingTheStore) {
  support::StoreDpopReplayCache shared_a(*store_, clock_, "oidc.client_assertion");
  support::StoreDpopReplayCache shared_b(*store_, clock_, "oidc.client_assertion");
  TokenService node_a(*store_, clock_, random_, *keys_, *apps_, *directory_, *dpop_,
                      TokenOptions{.assertion_replay_cache = &shared_a});
  TokenService node_b(*store_, clock_, random_, *keys_, *apps_, *directory_, *dpop_,
                      TokenOptions{.assertion_replay_cache = &shared_b});
  TokenService alone(*store_, clock_, random_, *keys_, *apps_, *directory_, *dpop_);
  std::map<std::string, std::string> form = {{"grant_type", "client_credentials"}};
  const std::string assertion = Assertion(jwt_app_, {{"jti", "jti-shared"}});
  auto result = [&](TokenService& service) {
    return ErrorOf(
        service.Token(tenant_, Issuer(), ctx_, JwtRequest(jwt_app_, form, assertion)).status());
  };
  EXPECT_EQ(result(node_a), "ok");
  EXPECT_EQ(result(node_b), "invalid_client");
  EXPECT_EQ(result(node_a), "invalid_client");
  EXPECT_EQ(result(alone), "ok");  // its own memory has not seen it
}

// ---- refresh_token ----

TEST_F(TokenServiceTest, RefreshRotatesAndNarrows) {
  absl::StatusOr<Json> tokens = WebTokens("openid profile offline_access");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string first = (*tokens)["refresh_token"];
  clock_.Advance(absl::Minutes(5));
  absl::StatusOr<Json> second = RefreshWith(web_, first, {{"scope", "openid"}});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*second)["refresh_token"], first);
  EXPECT_EQ((*second)["scope"], "openid");
  VerifiedJwt id = Verify((*second)["id_token"]);
  EXPECT_FALSE(id.claims.contains("nonce"));
  EXPECT_EQ(id.claims["sid"], kSession);
  EXPECT_EQ(Verify((*second)["access_token"]).claims["scope"], "openid");

  // The new refresh token keeps the original scope.
  absl::StatusOr<Json> third = RefreshWith(web_, (*second)["refresh_token"]);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)["scope"], "openid profile offline_access");

  EXPECT_EQ(
      ErrorOf(RefreshWith(web_, (*third)["refresh_token"], {{"scope", "openid email"}}).status()),
      "invalid_scope");
  EXPECT_EQ(ErrorOf(RefreshWith(web_, "unknown-refresh-token").status()), "invalid_grant");
  EXPECT_EQ(ErrorOf(RefreshWith(web_, "").status()), "invalid_request");
}

TEST_F(TokenServiceTest, RotatedRefreshTokenReuseRevokesFamily) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string first = (*tokens)["refresh_token"];
  absl::StatusOr<Json> second = RefreshWith(web_, first);
  ASSERT_TRUE(second.ok()) << second.status();

  absl::StatusOr<Json> reused = RefreshWith(web_, first);
  EXPECT_EQ(ErrorOf(reused.status()), "invalid_grant");
  // The family is gone: the newest refresh token and every access token of the grant.
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*second)["refresh_token"]).status()), "invalid_grant");
  EXPECT_EQ((*Introspect((*second)["access_token"]))["active"], false);
  EXPECT_EQ((*Introspect((*tokens)["access_token"]))["active"], false);
  std::vector<Json> reuse = Events("app.oauth2.as.token.detect_reuse");
  ASSERT_EQ(reuse.size(), 1u);  // the rotated token; the newest was revoked with the family
  EXPECT_EQ(reuse[0]["severity"], "WARN");
  EXPECT_EQ(reuse[0]["actor"]["id"], web_.app.id);
  EXPECT_EQ(reuse[0]["actor"]["type"], "PublicClientApp");
  EXPECT_EQ(reuse[0]["actor"]["alternateId"], "Payroll");
}

TEST_F(TokenServiceTest, ClearingTheUsersSessionsRevokesTheirRefreshTokens) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string refresh = (*tokens)["refresh_token"];
  ASSERT_EQ((*Introspect(refresh))["active"], true);

  // An admin clears the user's sessions: the directory revokes the refresh tokens with them.
  ASSERT_TRUE(directory_->ClearSessions(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ(*Introspect(refresh), Json({{"active", false}}));
  absl::StatusOr<Json> refused = RefreshWith(web_, refresh);
  EXPECT_EQ(ErrorOf(refused.status()), "invalid_grant");
  EXPECT_EQ(Events("app.oauth2.as.token.grant").back()["outcome"]["reason"], "invalid_grant");
  EXPECT_TRUE(Events("app.oauth2.as.token.detect_reuse").empty())
      << "a token revoked on purpose is not a stolen one";

  // A new sign-in gives refresh tokens that outlive the session they were issued under
  // (offline_access): only the token's own lifetime, a revocation or the user bounds them.
  const SessionId next("102session0000000002");
  ASSERT_TRUE(store_
                  ->Write([&](store::Transaction& tx) {
                    return tx.Sessions().Insert({.id = next,
                                                 .tenant_id = tenant_.id,
                                                 .user_id = user_.id,
                                                 .token_hash = "hash-of-next",
                                                 .created = clock_.Now(),
                                                 .last_active = clock_.Now(),
                                                 .expires = clock_.Now() + absl::Hours(2),
                                                 .amr = "pwd"});
                  })
                  .ok());
  CodeGrant grant = Grant(web_);
  grant.session_id = next;
  absl::StatusOr<Json> fresh = Exchange(web_, Code(grant));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  clock_.Advance(absl::Hours(3));  // the session has ended by itself
  absl::StatusOr<Json> rotated = RefreshWith(web_, (*fresh)["refresh_token"]);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ((*Introspect((*rotated)["refresh_token"]))["active"], true);
}

TEST_F(TokenServiceTest, UserWhoIsNoLongerActiveLosesTokens) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string access = (*tokens)["access_token"];
  const std::string refresh = (*tokens)["refresh_token"];
  const std::string userinfo = Issuer() + "/oauth2/v1/userinfo";
  auto validate = [&](const std::string& token) {
    return ErrorOf(
        service_->ValidateAccessToken(tenant_, Issuer(), "Bearer", token, "", "GET", userinfo)
            .status());
  };
  ASSERT_EQ(validate(access), "ok");

  ASSERT_TRUE(directory_->Suspend(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ(*Introspect(access), Json({{"active", false}}));
  EXPECT_EQ(validate(access), "invalid_token");
  EXPECT_EQ(*Introspect(refresh), Json({{"active", false}}));
  EXPECT_EQ(ErrorOf(RefreshWith(web_, refresh).status()), "invalid_grant");
  // Unsuspending brings none of it back: the suspension ended the user's tokens.
  ASSERT_TRUE(directory_->Unsuspend(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ(validate(access), "invalid_token");
  EXPECT_EQ(*Introspect(access), Json({{"active", false}}));
  EXPECT_EQ(ErrorOf(RefreshWith(web_, refresh).status()), "invalid_grant");
  // Tokens issued after the unsuspend work (a second later: iat has whole seconds).
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(InsertSession(SessionId("102session0000000004")).ok());
  CodeGrant after = Grant(web_);
  after.session_id = SessionId("102session0000000004");
  absl::StatusOr<Json> renewed = Exchange(web_, Code(after));
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(validate((*renewed)["access_token"]), "ok");

  // A client_credentials token has no user: unaffected.
  absl::StatusOr<Json> service = ClientCredentials();
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*Introspect((*service)["access_token"]))["active"], true);

  // Deactivation (suspension ended the old session; a new one).
  ASSERT_TRUE(InsertSession(SessionId("102session0000000003")).ok());
  CodeGrant grant = Grant(web_);
  grant.session_id = SessionId("102session0000000003");
  absl::StatusOr<Json> again = Exchange(web_, Code(grant));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(directory_->DeleteUser(tenant_.id, ctx_, user_.id.value()).ok());  // deactivates
  EXPECT_EQ((*Introspect((*again)["access_token"]))["active"], false);
  EXPECT_EQ(validate((*again)["access_token"]), "invalid_token");
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*again)["refresh_token"]).status()), "invalid_grant");
}

TEST_F(TokenServiceTest, LockedOutUserIsRefusedButKeepsTheFamily) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_TRUE(store_
                  ->Write([&](store::Transaction& tx) -> absl::Status {
                    absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant_.id, user_.id);
                    if (!user.ok()) return user.status();
                    user->status = std::string(store::kUserLockedOut);
                    return tx.Users().Update(*user);
                  })
                  .ok());
  EXPECT_EQ((*Introspect((*tokens)["access_token"]))["active"], false);
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*tokens)["refresh_token"]).status()), "invalid_grant");
  EXPECT_TRUE(Events("app.oauth2.as.token.revoke").empty());
  // As the user's session, the family works again after the unlock.
  ASSERT_TRUE(directory_->Unlock(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ((*Introspect((*tokens)["access_token"]))["active"], true);
  EXPECT_TRUE(RefreshWith(web_, (*tokens)["refresh_token"]).ok());
}

TEST_F(TokenServiceTest, RefreshTokenOfAnotherClientOrExpired) {
  CodeGrant grant = Grant(spa_, "openid offline_access");
  grant.code_challenge = kChallenge;
  grant.code_challenge_method = "S256";
  absl::StatusOr<Json> spa =
      Exchange(spa_, Code(grant), {{"client_id", spa_.app.id}, {"code_verifier", kVerifier}});
  ASSERT_TRUE(spa.ok()) << spa.status();
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*spa)["refresh_token"]).status()), "invalid_grant");
  // Still good for its own client: a foreign client's attempt is no reuse.
  absl::StatusOr<Json> own = RefreshWith(spa_, (*spa)["refresh_token"]);
  ASSERT_TRUE(own.ok()) << own.status();
  // Rotation keeps the family's absolute expiry (30 days by default).
  clock_.Advance(absl::Hours(24 * 30));
  EXPECT_EQ(ErrorOf(RefreshWith(spa_, (*own)["refresh_token"]).status()), "invalid_grant");
}

// ---- client_credentials ----

TEST_F(TokenServiceTest, ClientCredentials) {
  const size_t events = Events().size();
  absl::StatusOr<Json> tokens = ClientCredentials("reports:read reports:write");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)["token_type"], "Bearer");
  EXPECT_FALSE(tokens->contains("id_token"));
  EXPECT_FALSE(tokens->contains("refresh_token"));
  VerifiedJwt at = Verify((*tokens)["access_token"]);
  EXPECT_EQ(at.claims["sub"], service_app_.app.id);
  EXPECT_EQ(at.claims["client_id"], service_app_.app.id);
  EXPECT_EQ(at.claims["scope"], "reports:read reports:write");
  EXPECT_FALSE(at.claims.contains("auth_time"));
  EXPECT_EQ(Events().size(), events + 1);  // one write: the event
  std::vector<Json> grants = Events("app.oauth2.as.token.grant");
  EXPECT_EQ(grants.back()["actor"]["id"], service_app_.app.id);
  EXPECT_EQ(grants.back()["actor"]["type"], "PublicClientApp");

  EXPECT_TRUE(ClientCredentials().ok());
  EXPECT_EQ(ErrorOf(ClientCredentials("openid").status()), "invalid_scope");
  EXPECT_EQ(ErrorOf(ClientCredentials("reports offline_access").status()), "invalid_scope");
  EXPECT_EQ(ErrorOf(ClientCredentials("bad\"scope").status()), "invalid_scope");

  // A web app that does not list the grant; a grant type nobody supports; none at all.
  EXPECT_EQ(ErrorOf(service_
                        ->Token(tenant_, Issuer(), ctx_,
                                BasicRequest(web_, {{"grant_type", "client_credentials"}}))
                        .status()),
            "unauthorized_client");
  EXPECT_EQ(
      ErrorOf(
          service_->Token(tenant_, Issuer(), ctx_, BasicRequest(web_, {{"grant_type", "password"}}))
              .status()),
      "unsupported_grant_type");
  EXPECT_EQ(ErrorOf(service_->Token(tenant_, Issuer(), ctx_, BasicRequest(web_, {})).status()),
            "invalid_request");
  // A public client cannot use it.
  EXPECT_EQ(ErrorOf(service_
                        ->Token(tenant_, Issuer(), ctx_,
                                Request({{"grant_type", "client_credentials"},
                                         {"client_id", spa_.app.id}}))
                        .status()),
            "unauthorized_client");
}

// ---- DPoP ----

TEST_F(TokenServiceTest, DpopBindsAccessTokens) {
  ClientKey device = ClientKey::Make("device");
  absl::StatusOr<Json> tokens =
      ClientCredentials("", device.Proof("POST", TokenUrl(), clock_.Now(), "p1"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)["token_type"], "DPoP");
  const std::string token = (*tokens)["access_token"];
  EXPECT_EQ(Verify(token).claims["cnf"]["jkt"], device.jkt);

  absl::StatusOr<Json> bad = ClientCredentials(
      "", device.Proof("POST", "https://id.example/elsewhere", clock_.Now(), "p2"));
  EXPECT_EQ(ErrorOf(bad.status()), "invalid_dpop_proof");
  EXPECT_EQ(HttpOf(bad.status()), 400);

  const std::string userinfo = Issuer() + "/oauth2/v1/userinfo";
  auto validate = [&](std::string_view scheme, const std::string& proof) {
    return service_->ValidateAccessToken(tenant_, Issuer(), scheme, token, proof, "GET", userinfo);
  };
  absl::StatusOr<AccessToken> ok =
      validate("DPoP", device.Proof("GET", userinfo, clock_.Now(), "u1", token));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->subject, service_app_.app.id);
  EXPECT_EQ(ErrorOf(validate("Bearer", "").status()), "invalid_token");
  absl::StatusOr<AccessToken> missing = validate("DPoP", "");
  EXPECT_EQ(ErrorOf(missing.status()), "invalid_dpop_proof");
  EXPECT_EQ(HttpOf(missing.status()), 401);
  // A proof without the token's hash, and one by another key.
  EXPECT_EQ(ErrorOf(validate("DPoP", device.Proof("GET", userinfo, clock_.Now(), "u2")).status()),
            "invalid_dpop_proof");
  ClientKey thief = ClientKey::Make("thief");
  absl::StatusOr<AccessToken> stolen =
      validate("DPoP", thief.Proof("GET", userinfo, clock_.Now(), "u3", token));
  EXPECT_EQ(ErrorOf(stolen.status()), "invalid_token");
  EXPECT_EQ(HttpOf(stolen.status()), 401);
  // A replayed proof.
  EXPECT_EQ(
      ErrorOf(validate("DPoP", device.Proof("GET", userinfo, clock_.Now(), "u1", token)).status()),
      "invalid_dpop_proof");

  std::vector<Json> grants = Events("app.oauth2.as.token.grant");
  EXPECT_EQ(grants.back()["outcome"]["reason"], "invalid_dpop_proof");
}

// A replay cache whose store does not answer.
class UnavailableReplayCache final : public support::DpopReplayCache {
 public:
  absl::StatusOr<std::optional<support::DpopError>> Remember(const std::string&, const std::string&,
                                                             absl::Time) override {
    return absl::UnavailableError("replay_keys: connection to server at 10.0.0.5 was lost");
  }
};

// When the replay cache cannot answer, a proof is refused (fail closed) as the server's failure,
// for the client to retry, not as the client's bad proof; the store's error stays in the server
// log.
TEST_F(TokenServiceTest, ADpopProofTheReplayCacheCannotCheckIsRefusedAsTheServersFailure) {
  ClientKey device = ClientKey::Make("device");
  absl::StatusOr<Json> tokens =
      ClientCredentials("", device.Proof("POST", TokenUrl(), clock_.Now(), "p1"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string token = (*tokens)["access_token"];

  UnavailableReplayCache broken;
  support::DpopVerifier dpop(clock_, {}, &broken);
  TokenService node(*store_, clock_, random_, *keys_, *apps_, *directory_, dpop);
  ClientRequest request = BasicRequest(service_app_, {{"grant_type", "client_credentials"}});
  request.dpop = device.Proof("POST", TokenUrl(), clock_.Now(), "p2");
  absl::StatusOr<Json> refused = node.Token(tenant_, Issuer(), ctx_, request);
  EXPECT_EQ(ErrorOf(refused.status()), "temporarily_unavailable");
  EXPECT_EQ(HttpOf(refused.status()), 503);
  EXPECT_THAT(std::string(refused.status().message()), Not(HasSubstr("10.0.0.5")));

  const std::string userinfo = Issuer() + "/oauth2/v1/userinfo";
  absl::StatusOr<AccessToken> access = node.ValidateAccessToken(
      tenant_, Issuer(), "DPoP", token, device.Proof("GET", userinfo, clock_.Now(), "u1", token),
      "GET", userinfo);
  ASSERT_FALSE(access.ok()) << "a proof that cannot be checked for replay is not accepted";
  EXPECT_EQ(access.status().code(), absl::StatusCode::kUnavailable) << access.status();
  EXPECT_EQ(ErrorOf(access.status()).rfind("internal: ", 0), 0u)
      << "not invalid_dpop_proof (401): the proof is not to blame";
  EXPECT_THAT(std::string(access.status().message()), Not(HasSubstr("10.0.0.5")));
}

TEST_F(TokenServiceTest, DpopBoundRefreshTokenOfPublicClient) {
  ClientKey device = ClientKey::Make("device");
  CodeGrant grant = Grant(spa_, "openid offline_access");
  grant.code_challenge = kChallenge;
  grant.code_challenge_method = "S256";
  grant.dpop_jkt = device.jkt;
  const std::string code = Code(grant);
  // The code is bound to the key named at the authorization request.
  ClientKey other = ClientKey::Make("other");
  ClientRequest wrong = Request({{"grant_type", "authorization_code"},
                                 {"code", code},
                                 {"redirect_uri", kSpaRedirect},
                                 {"client_id", spa_.app.id},
                                 {"code_verifier", kVerifier}});
  wrong.dpop = other.Proof("POST", TokenUrl(), clock_.Now(), "c0");
  EXPECT_EQ(ErrorOf(service_->Token(tenant_, Issuer(), ctx_, wrong).status()),
            "invalid_dpop_proof");
  ClientRequest right = wrong;
  right.dpop = device.Proof("POST", TokenUrl(), clock_.Now(), "c1");
  absl::StatusOr<Json> tokens = service_->Token(tenant_, Issuer(), ctx_, right);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ((*tokens)["token_type"], "DPoP");
  const std::string refresh = (*tokens)["refresh_token"];

  auto refresh_with = [&](const std::string& proof) {
    ClientRequest r = Request(
        {{"grant_type", "refresh_token"}, {"refresh_token", refresh}, {"client_id", spa_.app.id}});
    r.dpop = proof;
    return service_->Token(tenant_, Issuer(), ctx_, r);
  };
  EXPECT_EQ(ErrorOf(refresh_with("").status()), "invalid_dpop_proof");
  EXPECT_EQ(ErrorOf(refresh_with(other.Proof("POST", TokenUrl(), clock_.Now(), "r1")).status()),
            "invalid_dpop_proof");
  absl::StatusOr<Json> refreshed =
      refresh_with(device.Proof("POST", TokenUrl(), clock_.Now(), "r2"));
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(Verify((*refreshed)["access_token"]).claims["cnf"]["jkt"], device.jkt);
  // The refused attempts did not rotate it: no reuse was detected.
  EXPECT_TRUE(Events("app.oauth2.as.token.detect_reuse").empty());
}

// ---- introspection ----

TEST_F(TokenServiceTest, IntrospectsAccessTokens) {
  absl::StatusOr<Json> tokens = WebTokens("openid profile");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string token = (*tokens)["access_token"];
  const size_t events = Events().size();
  absl::StatusOr<Json> info = Introspect(token, &post_);  // any confidential client may ask
  ASSERT_TRUE(info.ok()) << info.status();
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  EXPECT_EQ((*info)["active"], true);
  EXPECT_EQ((*info)["scope"], "openid profile");
  EXPECT_EQ((*info)["client_id"], web_.app.id);
  EXPECT_EQ((*info)["sub"], user_.id.value());
  EXPECT_EQ((*info)["exp"], now + 3600);
  EXPECT_EQ((*info)["iat"], now);
  EXPECT_EQ((*info)["iss"], Issuer());
  EXPECT_EQ((*info)["token_type"], "Bearer");
  EXPECT_EQ((*info)["jti"], Verify(token).claims["jti"]);
  EXPECT_FALSE(info->contains("cnf"));
  EXPECT_EQ(Events().size(), events);  // a successful introspection writes nothing

  EXPECT_EQ(*Introspect("garbage"), Json({{"active", false}}));
  EXPECT_EQ(*Introspect("a.b.c"), Json({{"active", false}}));
  EXPECT_EQ(*Introspect((*tokens)["id_token"]), Json({{"active", false}}));  // not an at+jwt
  // Another tenant's token.
  store::TenantRecord acme = tenant_;
  tenant_ = other_;
  IssuedApp globex = MakeApp(
      {{"label", "Globex"}, {"settings", {{"oauthClient", {{"application_type", "service"}}}}}});
  absl::StatusOr<Json> foreign = service_->Token(
      other_, Issuer(), ctx_, BasicRequest(globex, {{"grant_type", "client_credentials"}}));
  ASSERT_TRUE(foreign.ok()) << foreign.status();
  tenant_ = acme;
  EXPECT_EQ((*Introspect((*foreign)["access_token"]))["active"], false);
  // Expired.
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ((*Introspect(token))["active"], false);
}

TEST_F(TokenServiceTest, IntrospectsDpopAndRefreshTokens) {
  ClientKey device = ClientKey::Make("device");
  absl::StatusOr<Json> bound =
      ClientCredentials("", device.Proof("POST", TokenUrl(), clock_.Now(), "p1"));
  ASSERT_TRUE(bound.ok()) << bound.status();
  absl::StatusOr<Json> info = Introspect((*bound)["access_token"]);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["token_type"], "DPoP");
  EXPECT_EQ((*info)["cnf"]["jkt"], device.jkt);

  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string refresh = (*tokens)["refresh_token"];
  info = Introspect(refresh);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ((*info)["active"], true);
  EXPECT_EQ((*info)["client_id"], web_.app.id);
  EXPECT_EQ((*info)["sub"], user_.id.value());
  EXPECT_EQ((*info)["scope"], "openid profile email offline_access");
  EXPECT_EQ((*info)["exp"], absl::ToUnixSeconds(clock_.Now() + absl::Hours(24 * 30)));
  ASSERT_TRUE(RefreshWith(web_, refresh).ok());
  EXPECT_EQ(*Introspect(refresh), Json({{"active", false}}));  // rotated
}

TEST_F(TokenServiceTest, IntrospectionNeedsAnAuthenticatedConfidentialClient) {
  absl::StatusOr<Json> tokens = ClientCredentials();
  ASSERT_TRUE(tokens.ok());
  absl::StatusOr<Json> info = service_->Introspect(
      tenant_, Issuer(), ctx_, BasicRequest(web_, {{"token", (*tokens)["access_token"]}}, "wrong"));
  EXPECT_EQ(ErrorOf(info.status()), "invalid_client");
  EXPECT_EQ(HttpOf(info.status()), 401);
  info = service_->Introspect(
      tenant_, Issuer(), ctx_,
      Request({{"token", (*tokens)["access_token"]}, {"client_id", spa_.app.id}}));
  EXPECT_EQ(ErrorOf(info.status()), "invalid_client");
  EXPECT_EQ(ErrorOf(service_->Introspect(tenant_, Issuer(), ctx_, BasicRequest(web_, {})).status()),
            "invalid_request");
  std::vector<Json> refused = Events("app.oauth2.as.token.introspect");
  ASSERT_EQ(refused.size(), 3u);
  EXPECT_EQ(refused[0]["outcome"]["result"], "FAILURE");
  EXPECT_EQ(refused[0]["outcome"]["reason"], "invalid_client");
}

// ---- revocation ----

TEST_F(TokenServiceTest, RevokesAccessTokens) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string token = (*tokens)["access_token"];
  // Another client's token: 200, and nothing revoked.
  EXPECT_TRUE(Revoke(post_, token).ok());
  EXPECT_EQ((*Introspect(token))["active"], true);
  // The client's own.
  EXPECT_TRUE(Revoke(web_, token).ok());
  EXPECT_EQ((*Introspect(token))["active"], false);
  const std::string userinfo = Issuer() + "/oauth2/v1/userinfo";
  EXPECT_EQ(
      ErrorOf(service_->ValidateAccessToken(tenant_, Issuer(), "Bearer", token, "", "GET", userinfo)
                  .status()),
      "invalid_token");
  // Only that token: the refresh token still works.
  EXPECT_TRUE(RefreshWith(web_, (*tokens)["refresh_token"]).ok());
  // Unknown tokens are no error.
  EXPECT_TRUE(Revoke(web_, "unknown").ok());
  EXPECT_TRUE(Revoke(web_, "a.b.c").ok());
  // An unauthenticated client is.
  absl::Status refused =
      service_->Revoke(tenant_, Issuer(), ctx_, BasicRequest(web_, {{"token", token}}, "wrong"));
  EXPECT_EQ(ErrorOf(refused), "invalid_client");
  EXPECT_EQ(HttpOf(refused), 401);

  std::vector<Json> revokes = Events("app.oauth2.as.token.revoke");
  ASSERT_EQ(revokes.size(), 3u);
  EXPECT_EQ(revokes[0]["outcome"]["result"], "FAILURE");  // the other client's attempt
  EXPECT_EQ(revokes[1]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(revokes[2]["outcome"]["reason"], "invalid_client");
}

TEST_F(TokenServiceTest, RevokingARefreshTokenEndsItsGrant) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  absl::StatusOr<Json> next = RefreshWith(web_, (*tokens)["refresh_token"]);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(Revoke(post_, (*next)["refresh_token"]).ok());  // not post_'s: ignored
  EXPECT_EQ((*Introspect((*next)["refresh_token"]))["active"], true);
  EXPECT_TRUE(Revoke(web_, (*next)["refresh_token"]).ok());
  EXPECT_EQ((*Introspect((*next)["refresh_token"]))["active"], false);
  EXPECT_EQ((*Introspect((*next)["access_token"]))["active"], false);
  EXPECT_EQ((*Introspect((*tokens)["access_token"]))["active"], false);
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*next)["refresh_token"]).status()), "invalid_grant");
}

TEST_F(TokenServiceTest, RevokeSessionEndsItsRefreshTokens) {
  absl::StatusOr<Json> tokens = WebTokens();
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_TRUE(service_->RevokeSession(tenant_, ctx_, SessionId("102othersession00001")).ok());
  EXPECT_TRUE(Events("app.oauth2.as.token.revoke").empty());  // nothing was revoked
  EXPECT_TRUE(service_->RevokeSession(tenant_, ctx_, SessionId(kSession)).ok());
  EXPECT_EQ(Events("app.oauth2.as.token.revoke").size(), 1u);
  EXPECT_EQ(ErrorOf(RefreshWith(web_, (*tokens)["refresh_token"]).status()), "invalid_grant");
}

// ---- userinfo ----

TEST_F(TokenServiceTest, ValidatesBearerTokensAndReadsClaims) {
  absl::StatusOr<Json> tokens = WebTokens("openid email");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const std::string token = (*tokens)["access_token"];
  const std::string userinfo = Issuer() + "/oauth2/v1/userinfo";
  absl::StatusOr<AccessToken> access =
      service_->ValidateAccessToken(tenant_, Issuer(), "Bearer", token, "", "GET", userinfo);
  ASSERT_TRUE(access.ok()) << access.status();
  EXPECT_EQ(access->subject, user_.id.value());
  EXPECT_THAT(access->scopes, ElementsAre("openid", "email"));
  EXPECT_EQ(ErrorOf(service_
                        ->ValidateAccessToken(tenant_, "https://id.example/t/globex", "Bearer",
                                              token, "", "GET", userinfo)
                        .status()),
            "invalid_token");
  EXPECT_EQ(
      ErrorOf(service_->ValidateAccessToken(tenant_, Issuer(), "DPoP", token, "", "GET", userinfo)
                  .status()),
      "invalid_token");

  absl::StatusOr<Json> claims = service_->UserClaims(tenant_, user_.id, access->scopes);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(
      *claims,
      Json({{"sub", user_.id.value()}, {"email", "ada@acme.test"}, {"email_verified", false}}));
  ASSERT_TRUE(directory_->Suspend(tenant_.id, ctx_, user_.id.value()).ok());
  EXPECT_EQ(ErrorOf(service_->UserClaims(tenant_, user_.id, access->scopes).status()),
            "invalid_token");

  clock_.Advance(absl::Hours(1));
  absl::StatusOr<AccessToken> expired =
      service_->ValidateAccessToken(tenant_, Issuer(), "Bearer", token, "", "GET", userinfo);
  EXPECT_EQ(ErrorOf(expired.status()), "invalid_token");
  EXPECT_EQ(HttpOf(expired.status()), 401);
}

TEST(OAuthErrorTest, RoundTrips) {
  absl::Status status = MakeOAuthError("invalid_client", "client authentication failed", 401);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  std::optional<OAuthError> error = OAuthErrorOf(status);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->error, "invalid_client");
  EXPECT_EQ(error->description, "client authentication failed");
  EXPECT_EQ(error->http_status, 401);
  EXPECT_FALSE(OAuthErrorOf(absl::InternalError("disk")).has_value());
  EXPECT_EQ(OAuthErrorOf(MakeOAuthError("invalid_grant", "x"))->http_status, 400);
}

}  // namespace
}  // namespace custos::oidc
