#include "oidc/apps.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/errors.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::oidc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

// RFC 7517 appendix A.1 (P-256) and RFC 8037 appendix A.2 (Ed25519) public keys.
const Json kEcKey = {{"kty", "EC"},
                     {"crv", "P-256"},
                     {"x", "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"},
                     {"y", "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
                     {"kid", "ec-1"}};
const Json kEdKey = {{"kty", "OKP"},
                     {"crv", "Ed25519"},
                     {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
                     {"kid", "ed-1"}};

Json WebBody() {
  return {
      {"name", "oidc_client"},
      {"label", "Payroll"},
      {"signOnMode", "OPENID_CONNECT"},
      {"credentials", {{"oauthClient", {{"token_endpoint_auth_method", "client_secret_basic"}}}}},
      {"settings",
       {{"oauthClient",
         {{"application_type", "web"},
          {"redirect_uris", {"https://payroll.example/cb"}},
          {"post_logout_redirect_uris", {"https://payroll.example/"}},
          {"response_types", {"code"}},
          {"grant_types", {"authorization_code", "refresh_token"}}}}}}};
}

Json BodyOfType(std::string_view type) {
  Json body = {{"label", std::string(type) + " app"},
               {"settings", {{"oauthClient", {{"application_type", std::string(type)}}}}}};
  if (type == "native") {
    body["settings"]["oauthClient"]["redirect_uris"] = {"com.example.app:/oauth/cb",
                                                        "http://127.0.0.1:53123/cb"};
  } else if (type != "service") {
    body["settings"]["oauthClient"]["redirect_uris"] = {"https://" + std::string(type) +
                                                        ".example/cb"};
  }
  return body;
}

Json& OAuthSettings(Json& body) { return body["settings"]["oauthClient"]; }

class AppsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    apps_ = std::make_unique<Apps>(*store_, clock_, random_);
    ctx_.actor = audit::SystemPrincipal();
    ctx_.request_id = "test";
    ASSERT_TRUE(
        store_
            ->Write([&](store::Transaction& tx) -> absl::Status {
              if (auto st = tx.Tenants().Insert({tenant_, "acme", clock_.Now()}); !st.ok()) {
                return st;
              }
              return tx.Tenants().Insert({other_, "globex", clock_.Now()});
            })
            .ok());
  }
  void TearDown() override {
    apps_.reset();
    temp_.reset();
  }

  std::vector<store::EventRecord> Events(const TenantId& tenant) {
    std::vector<store::EventRecord> out;
    EXPECT_TRUE(store_
                    ->Read([&](store::Transaction& tx) -> absl::Status {
                      auto events = tx.Events().Query(tenant, {.limit = 1000});
                      if (!events.ok()) return events.status();
                      out = *std::move(events);
                      return absl::OkStatus();
                    })
                    .ok());
    return out;
  }

  std::vector<std::string> EventTypes(const TenantId& tenant) {
    std::vector<std::string> types;
    for (const auto& e : Events(tenant)) types.push_back(e.event_type);
    return types;
  }

  Json LastEvent() {
    std::vector<store::EventRecord> events = Events(tenant_);
    if (events.empty()) return Json();
    return *ParseJson(events.back().json);
  }

  std::vector<store::AppRecord> StoredApps(const TenantId& tenant) {
    auto apps = store::ReadResult(*store_, [&](store::Transaction& tx) {
      return tx.Oidc().ListApps(tenant, {"", 1000});
    });
    EXPECT_TRUE(apps.ok()) << apps.status();
    return apps.ok() ? *apps : std::vector<store::AppRecord>{};
  }

  IssuedApp MustCreate(const Json& body) {
    absl::StatusOr<IssuedApp> issued = apps_->Create(tenant_, ctx_, body);
    EXPECT_TRUE(issued.ok()) << issued.status() << ": "
                             << fmt::format("{}", fmt::join(ErrorCausesOf(issued.status()), " | "));
    return issued.ok() ? *std::move(issued) : IssuedApp{};
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<Apps> apps_;
  audit::RequestContext ctx_;
  TenantId tenant_{"00oacme0000000000001"};
  TenantId other_{"00oglobex00000000001"};
};

TEST_F(AppsTest, WebAppGetsASecretShownOnceAndOnlyItsHashIsStored) {
  IssuedApp issued = MustCreate(WebBody());
  ASSERT_TRUE(issued.client_secret.has_value());
  // 32 random bytes, base64url without padding.
  std::optional<std::string> raw = crypto::Base64UrlDecode(*issued.client_secret);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_THAT(issued.app.id, StartsWith("0oa"));
  EXPECT_EQ(issued.app.status, store::kAppActive);
  EXPECT_EQ(issued.app.application_type, "web");
  EXPECT_EQ(issued.app.token_endpoint_auth_method, kAuthBasic);

  std::vector<store::AppRecord> stored = StoredApps(tenant_);
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].client_secret_hash, crypto::Sha256Hex(*issued.client_secret));
  EXPECT_THAT(stored[0].settings_json, Not(HasSubstr(*issued.client_secret)));

  Json first = AppView(issued.app, issued.settings, issued.client_secret, "");
  EXPECT_EQ(first["credentials"]["oauthClient"]["client_secret"], *issued.client_secret);
  EXPECT_EQ(first["credentials"]["oauthClient"]["client_id"], issued.app.id);

  absl::StatusOr<store::AppRecord> again = apps_->Get(tenant_, issued.app.id);
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<AppSettings> settings = SettingsOf(*again);
  ASSERT_TRUE(settings.ok()) << settings.status();
  Json later = AppView(*again, *settings, std::nullopt, "https://id.example/t/acme");
  EXPECT_FALSE(later["credentials"]["oauthClient"].contains("client_secret"));
  EXPECT_THAT(DumpJson(later), Not(HasSubstr(*issued.client_secret)));
  EXPECT_EQ(later["label"], "Payroll");
  EXPECT_EQ(later["name"], "oidc_client");
  EXPECT_EQ(later["signOnMode"], "OPENID_CONNECT");
  const Json& oauth = later["settings"]["oauthClient"];
  EXPECT_EQ(oauth["application_type"], "web");
  EXPECT_EQ(oauth["redirect_uris"], Json({"https://payroll.example/cb"}));
  EXPECT_EQ(oauth["post_logout_redirect_uris"], Json({"https://payroll.example/"}));
  EXPECT_EQ(oauth["response_types"], Json({"code"}));
  EXPECT_EQ(oauth["grant_types"], Json({"authorization_code", "refresh_token"}));
  EXPECT_EQ(oauth["token_lifetimes"],
            Json({{"access_token", "1h"}, {"id_token", "1h"}, {"refresh_token", "720h"}}));
  EXPECT_FALSE(oauth.contains("jwks"));
  EXPECT_EQ(oauth["id_token_signed_response_alg"], "ES256");
  EXPECT_EQ(later["_links"]["self"]["href"],
            "https://id.example/t/acme/api/v1/apps/" + issued.app.id);
  EXPECT_EQ(later["_links"]["deactivate"]["href"],
            "https://id.example/t/acme/api/v1/apps/" + issued.app.id + "/lifecycle/deactivate");

  std::vector<store::EventRecord> events = Events(tenant_);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event_type, "application.lifecycle.create");
  EXPECT_THAT(events[0].json, HasSubstr(issued.app.id));
  EXPECT_THAT(events[0].json, Not(HasSubstr(*issued.client_secret)));
}

TEST_F(AppsTest, EachApplicationTypeGetsItsAuthMethodGrantsAndSecret) {
  IssuedApp web = MustCreate(BodyOfType("web"));
  EXPECT_EQ(web.app.token_endpoint_auth_method, kAuthBasic);
  EXPECT_THAT(web.settings.grant_types, ElementsAre("authorization_code"));
  EXPECT_THAT(web.settings.response_types, ElementsAre("code"));
  EXPECT_FALSE(web.settings.IsPublic());
  EXPECT_TRUE(web.client_secret.has_value());

  IssuedApp browser = MustCreate(BodyOfType("browser"));
  EXPECT_EQ(browser.app.token_endpoint_auth_method, kAuthNone);
  EXPECT_TRUE(browser.settings.IsPublic());
  EXPECT_FALSE(browser.client_secret.has_value());
  EXPECT_THAT(browser.app.client_secret_hash, IsEmpty());

  Json native_body = BodyOfType("native");
  OAuthSettings(native_body)["grant_types"] = {"authorization_code", "refresh_token"};
  IssuedApp native = MustCreate(native_body);
  EXPECT_EQ(native.app.token_endpoint_auth_method, kAuthNone);
  EXPECT_TRUE(native.settings.IsPublic());
  EXPECT_FALSE(native.client_secret.has_value());
  EXPECT_THAT(native.settings.redirect_uris,
              ElementsAre("com.example.app:/oauth/cb", "http://127.0.0.1:53123/cb"));
  EXPECT_TRUE(native.settings.Allows(kGrantRefreshToken));

  IssuedApp service = MustCreate(BodyOfType("service"));
  EXPECT_EQ(service.app.token_endpoint_auth_method, kAuthBasic);
  EXPECT_THAT(service.settings.grant_types, ElementsAre("client_credentials"));
  EXPECT_THAT(service.settings.response_types, IsEmpty());
  EXPECT_FALSE(service.settings.Allows(kGrantAuthorizationCode));
  EXPECT_TRUE(service.client_secret.has_value());

  Json post_body = BodyOfType("service");
  post_body["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "client_secret_post";
  EXPECT_TRUE(MustCreate(post_body).client_secret.has_value());

  Json jwt_body = BodyOfType("web");
  jwt_body["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
  OAuthSettings(jwt_body)["jwks"] = {{"keys", {kEcKey, kEdKey}}};
  OAuthSettings(jwt_body)["grant_types"] = {"authorization_code", "client_credentials"};
  IssuedApp jwt = MustCreate(jwt_body);
  EXPECT_EQ(jwt.app.token_endpoint_auth_method, kAuthPrivateKeyJwt);
  EXPECT_FALSE(jwt.client_secret.has_value());
  EXPECT_THAT(jwt.app.client_secret_hash, IsEmpty());
  Json view = AppView(jwt.app, jwt.settings, std::nullopt, "");
  ASSERT_EQ(view["settings"]["oauthClient"]["jwks"]["keys"].size(), 2u);
  EXPECT_EQ(view["settings"]["oauthClient"]["jwks"]["keys"][0]["alg"], "ES256");
  EXPECT_EQ(view["settings"]["oauthClient"]["jwks"]["keys"][1]["alg"], "EdDSA");

  EXPECT_EQ(StoredApps(tenant_).size(), 6u);
  std::vector<std::string> types = EventTypes(tenant_);
  EXPECT_EQ(std::count(types.begin(), types.end(), "application.lifecycle.create"), 6);
}

TEST_F(AppsTest, LoopbackHttpAndLifetimeBoundsAreAccepted) {
  Json body = WebBody();
  OAuthSettings(body)["redirect_uris"] = {"http://127.0.0.1:8080/cb", "http://[::1]/cb",
                                          "http://localhost:3000/cb", "https://app.example/cb?x=1"};
  OAuthSettings(body)["token_lifetimes"] = {
      {"access_token", "5m"}, {"id_token", "24h"}, {"refresh_token", "2160h"}};
  IssuedApp issued = MustCreate(body);
  EXPECT_EQ(issued.settings.access_token_lifetime, absl::Minutes(5));
  EXPECT_EQ(issued.settings.id_token_lifetime, absl::Hours(24));
  EXPECT_EQ(issued.settings.refresh_token_lifetime, absl::Hours(24 * 90));
  absl::StatusOr<AppSettings> stored = SettingsOf(StoredApps(tenant_).at(0));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->refresh_token_lifetime, absl::Hours(24 * 90));
  EXPECT_EQ(stored->redirect_uris, issued.settings.redirect_uris);

  OAuthSettings(body)["token_lifetimes"] = {{"refresh_token", "1h"}};
  EXPECT_EQ(MustCreate(body).settings.refresh_token_lifetime, absl::Hours(1));
}

struct Refusal {
  std::string name;
  std::function<void(Json&)> change;
  std::string member;  // the cause must start with "<member>:"
};

TEST_F(AppsTest, InvalidBodiesAreRefusedNamingTheMemberAndNothingIsStored) {
  auto set = [](std::string key, Json value) {
    return [key, value](Json& b) { OAuthSettings(b)[key] = value; };
  };
  auto method = [](std::string m) {
    return [m](Json& b) { b["credentials"]["oauthClient"]["token_endpoint_auth_method"] = m; };
  };
  const std::string s = "settings.oauthClient.";
  const std::vector<Refusal> cases = {
      {"unknown top-level member", [](Json& b) { b["features"] = Json::array(); }, "features"},
      {"unknown settings member", set("pkce_required", true), s + "pkce_required"},
      {"unknown credentials member",
       [](Json& b) { b["credentials"]["oauthClient"]["autoKeyRotation"] = true; },
       "credentials.oauthClient.autoKeyRotation"},
      {"label missing", [](Json& b) { b.erase("label"); }, "label"},
      {"label empty", [](Json& b) { b["label"] = ""; }, "label"},
      {"label not a string", [](Json& b) { b["label"] = 5; }, "label"},
      {"other app name", [](Json& b) { b["name"] = "bookmark"; }, "name"},
      {"other sign-on mode", [](Json& b) { b["signOnMode"] = "SAML_2_0"; }, "signOnMode"},
      {"settings missing", [](Json& b) { b.erase("settings"); }, "settings.oauthClient"},
      {"application_type unknown", set("application_type", "spa"), s + "application_type"},
      {"application_type missing", [](Json& b) { OAuthSettings(b).erase("application_type"); },
       s + "application_type"},
      {"application_type null", set("application_type", nullptr), s + "application_type"},
      {"redirect with fragment", set("redirect_uris", {"https://a.example/cb#x"}),
       s + "redirect_uris[0]"},
      {"redirect over http", set("redirect_uris", {"http://a.example/cb"}), s + "redirect_uris[0]"},
      {"redirect relative", set("redirect_uris", {"/cb"}), s + "redirect_uris[0]"},
      {"redirect without host", set("redirect_uris", {"https:///cb"}), s + "redirect_uris[0]"},
      {"redirect with user info", set("redirect_uris", {"https://u@a.example/cb"}),
       s + "redirect_uris[0]"},
      {"custom scheme on a web app", set("redirect_uris", {"com.example.app:/cb"}),
       s + "redirect_uris[0]"},
      {"second redirect bad",
       set("redirect_uris", {"https://a.example/cb", "https://b.example/cb two"}),
       s + "redirect_uris[1]"},
      {"redirect_uris not strings", set("redirect_uris", {1}), s + "redirect_uris"},
      {"redirect_uris missing with authorization_code",
       [](Json& b) { OAuthSettings(b).erase("redirect_uris"); }, s + "redirect_uris"},
      {"post-logout over http", set("post_logout_redirect_uris", {"http://a.example/"}),
       s + "post_logout_redirect_uris[0]"},
      {"unsupported grant", set("grant_types", {"authorization_code", "implicit"}),
       s + "grant_types"},
      {"grant listed twice", set("grant_types", {"authorization_code", "authorization_code"}),
       s + "grant_types"},
      {"no grants", set("grant_types", Json::array()), s + "grant_types"},
      {"refresh_token without authorization_code",
       [](Json& b) {
         OAuthSettings(b)["grant_types"] = {"client_credentials", "refresh_token"};
         OAuthSettings(b)["response_types"] = Json::array();
       },
       s + "grant_types"},
      {"response_types token", set("response_types", {"token"}), s + "response_types"},
      {"response_types empty with authorization_code", set("response_types", Json::array()),
       s + "response_types"},
      {"auth method unknown", method("tls_client_auth"),
       "credentials.oauthClient.token_endpoint_auth_method"},
      {"none for a web app", method("none"), "credentials.oauthClient.token_endpoint_auth_method"},
      {"private_key_jwt without jwks", method("private_key_jwt"), s + "jwks"},
      {"jwks without private_key_jwt", set("jwks", {{"keys", {kEcKey}}}), s + "jwks"},
      {"client_secret supplied",
       [](Json& b) { b["credentials"]["oauthClient"]["client_secret"] = "mine"; },
       "credentials.oauthClient.client_secret"},
      {"client_id supplied on create",
       [](Json& b) { b["credentials"]["oauthClient"]["client_id"] = "0oamine"; },
       "credentials.oauthClient.client_id"},
      {"access token lifetime too short", set("token_lifetimes", {{"access_token", "4m"}}),
       s + "token_lifetimes.access_token"},
      {"id token lifetime too long", set("token_lifetimes", {{"id_token", "25h"}}),
       s + "token_lifetimes.id_token"},
      {"refresh token lifetime too long", set("token_lifetimes", {{"refresh_token", "2161h"}}),
       s + "token_lifetimes.refresh_token"},
      {"refresh token lifetime too short", set("token_lifetimes", {{"refresh_token", "59m"}}),
       s + "token_lifetimes.refresh_token"},
      {"lifetime not a duration", set("token_lifetimes", {{"access_token", "soon"}}),
       s + "token_lifetimes.access_token"},
      {"lifetime not a string", set("token_lifetimes", {{"access_token", 3600}}),
       s + "token_lifetimes.access_token"},
      {"unknown lifetime", set("token_lifetimes", {{"session", "1h"}}),
       s + "token_lifetimes.session"},
      {"ID token alg RS256", set("id_token_signed_response_alg", "RS256"),
       s + "id_token_signed_response_alg"},
      {"ID token alg none", set("id_token_signed_response_alg", "none"),
       s + "id_token_signed_response_alg"},
      {"ID token alg in lower case", set("id_token_signed_response_alg", "eddsa"),
       s + "id_token_signed_response_alg"},
      {"ID token alg not a string", set("id_token_signed_response_alg", 256),
       s + "id_token_signed_response_alg"},
  };
  for (const Refusal& c : cases) {
    Json body = WebBody();
    c.change(body);
    absl::StatusOr<IssuedApp> issued = apps_->Create(tenant_, ctx_, body);
    ASSERT_FALSE(issued.ok()) << c.name;
    EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(ErrorCodeOf(issued.status()), kErrValidation) << c.name;
    std::vector<std::string> causes = ErrorCausesOf(issued.status());
    EXPECT_TRUE(
        std::any_of(causes.begin(), causes.end(),
                    [&](const std::string& cause) { return cause.starts_with(c.member + ": "); }))
        << c.name << ": causes were " << fmt::format("{}", fmt::join(causes, " | "));
  }
  EXPECT_THAT(StoredApps(tenant_), IsEmpty());
  EXPECT_THAT(Events(tenant_), IsEmpty());
}

TEST_F(AppsTest, TypeSpecificRulesAreRefusedNamingTheMember) {
  const std::string grants = "settings.oauthClient.grant_types";
  const std::string method = "credentials.oauthClient.token_endpoint_auth_method";
  struct TypeCase {
    std::string type;
    std::function<void(Json&)> change;
    std::string member;
  };
  const std::vector<TypeCase> cases = {
      {"browser",
       [](Json& b) {
         OAuthSettings(b)["grant_types"] = {"authorization_code", "client_credentials"};
       },
       grants},
      {"native", [](Json& b) { OAuthSettings(b)["grant_types"] = {"client_credentials"}; }, grants},
      {"service",
       [](Json& b) {
         OAuthSettings(b)["grant_types"] = {"authorization_code"};
         OAuthSettings(b)["redirect_uris"] = {"https://svc.example/cb"};
       },
       grants},
      {"service",
       [](Json& b) {
         OAuthSettings(b)["grant_types"] = {"client_credentials", "refresh_token"};
       },
       grants},
      {"browser",
       [](Json& b) {
         b["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "client_secret_basic";
       },
       method},
      {"native",
       [](Json& b) {
         b["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
       },
       method},
      {"service",
       [](Json& b) { b["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "none"; },
       method},
      {"browser", [](Json& b) { OAuthSettings(b)["redirect_uris"] = {"com.example.app:/cb"}; },
       "settings.oauthClient.redirect_uris[0]"},
      {"native", [](Json& b) { OAuthSettings(b)["redirect_uris"] = {"javascript:alert(1)"}; },
       "settings.oauthClient.redirect_uris[0]"},
      {"service", [](Json& b) { OAuthSettings(b)["response_types"] = {"code"}; },
       "settings.oauthClient.response_types"},
  };
  for (const TypeCase& c : cases) {
    Json body = BodyOfType(c.type);
    c.change(body);
    absl::StatusOr<IssuedApp> issued = apps_->Create(tenant_, ctx_, body);
    ASSERT_FALSE(issued.ok()) << c.type << " " << DumpJson(body);
    EXPECT_EQ(ErrorCodeOf(issued.status()), kErrValidation);
    std::vector<std::string> causes = ErrorCausesOf(issued.status());
    EXPECT_TRUE(
        std::any_of(causes.begin(), causes.end(),
                    [&](const std::string& cause) { return cause.starts_with(c.member + ": "); }))
        << c.type << " " << DumpJson(body) << ": " << fmt::format("{}", fmt::join(causes, " | "));
  }
  EXPECT_THAT(StoredApps(tenant_), IsEmpty());
  EXPECT_THAT(Events(tenant_), IsEmpty());
}

TEST_F(AppsTest, PrivateKeyJwtNeedsAnEs256OrEdDsaPublicKey) {
  const std::string keys = "settings.oauthClient.jwks.keys";
  Json ec_private = kEcKey;
  ec_private["d"] = "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE";
  Json rsa = {{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}, {"kid", "r"}};
  Json rs256_ec = kEcKey;
  rs256_ec["alg"] = "RS256";
  Json wrong_alg = kEdKey;
  wrong_alg["alg"] = "ES256";
  Json enc = kEcKey;
  enc["use"] = "enc";
  Json ec_no_kid = kEcKey;
  ec_no_kid.erase("kid");
  struct JwksCase {
    std::string name;
    Json jwks;
    std::string member;
  };
  const std::vector<JwksCase> cases = {
      {"no keys", {{"keys", Json::array()}}, keys},
      {"not an object", Json::array(), "settings.oauthClient.jwks"},
      {"RSA key", {{"keys", {rsa}}}, keys + "[0]"},
      {"RS256 alg", {{"keys", {rs256_ec}}}, keys + "[0]"},
      {"private key", {{"keys", {ec_private}}}, keys + "[0]"},
      {"alg not matching the key", {{"keys", {kEcKey, wrong_alg}}}, keys + "[1].alg"},
      {"encryption key", {{"keys", {enc}}}, keys + "[0].use"},
      {"two keys, one without kid", {{"keys", {ec_no_kid, kEdKey}}}, keys + "[0].kid"},
      {"kid twice", {{"keys", {kEcKey, kEcKey}}}, keys + "[1].kid"},
  };
  for (const JwksCase& c : cases) {
    Json body = WebBody();
    body["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
    OAuthSettings(body)["jwks"] = c.jwks;
    absl::StatusOr<IssuedApp> issued = apps_->Create(tenant_, ctx_, body);
    ASSERT_FALSE(issued.ok()) << c.name;
    std::vector<std::string> causes = ErrorCausesOf(issued.status());
    EXPECT_TRUE(
        std::any_of(causes.begin(), causes.end(),
                    [&](const std::string& cause) { return cause.starts_with(c.member + ": "); }))
        << c.name << ": " << fmt::format("{}", fmt::join(causes, " | "));
  }
  EXPECT_THAT(StoredApps(tenant_), IsEmpty());

  // One key needs no kid.
  Json body = WebBody();
  body["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
  OAuthSettings(body)["jwks"] = {{"keys", {ec_no_kid}}};
  EXPECT_TRUE(apps_->Create(tenant_, ctx_, body).ok());
}

TEST_F(AppsTest, ClientKeyFindsTheKeyByKid) {
  Json body = WebBody();
  body["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
  OAuthSettings(body)["jwks"] = {{"keys", {kEcKey, kEdKey}}};
  IssuedApp issued = MustCreate(body);
  absl::StatusOr<AppSettings> settings = SettingsOf(StoredApps(tenant_).at(0));
  ASSERT_TRUE(settings.ok()) << settings.status();

  absl::StatusOr<support::PublicJwk> ed = ClientKey(*settings, {{"alg", "EdDSA"}, {"kid", "ed-1"}});
  ASSERT_TRUE(ed.ok()) << ed.status();
  EXPECT_EQ(ed->kind, support::JwkKind::kEd25519);
  absl::StatusOr<support::PublicJwk> ec = ClientKey(*settings, {{"alg", "ES256"}, {"kid", "ec-1"}});
  ASSERT_TRUE(ec.ok()) << ec.status();
  EXPECT_EQ(ec->kind, support::JwkKind::kEcP256);
  EXPECT_TRUE(absl::IsNotFound(ClientKey(*settings, {{"kid", "other"}}).status()));
  // Two keys and no kid: which one is meant is unknown.
  EXPECT_TRUE(absl::IsNotFound(ClientKey(*settings, {{"alg", "ES256"}}).status()));

  // A client_secret app has no keys.
  IssuedApp plain = MustCreate(WebBody());
  EXPECT_TRUE(absl::IsNotFound(ClientKey(plain.settings, {{"kid", "ec-1"}}).status()));
}

TEST_F(AppsTest, IdTokenSigningAlgIsChosenPerApp) {
  Json body = WebBody();
  OAuthSettings(body)["id_token_signed_response_alg"] = "EdDSA";
  IssuedApp issued = MustCreate(body);
  EXPECT_EQ(issued.settings.id_token_signed_response_alg, "EdDSA");
  absl::StatusOr<store::AppRecord> stored = apps_->Get(tenant_, issued.app.id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  absl::StatusOr<AppSettings> settings = SettingsOf(*stored);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->id_token_signed_response_alg, "EdDSA");
  Json view = AppView(*stored, *settings, std::nullopt, "");
  EXPECT_EQ(view["settings"]["oauthClient"]["id_token_signed_response_alg"], "EdDSA");

  // What GET shows goes back unchanged; leaving the member out of a PUT means the default.
  ASSERT_TRUE(apps_->Replace(tenant_, ctx_, issued.app.id, view).ok());
  EXPECT_EQ(SettingsOf(*apps_->Get(tenant_, issued.app.id))->id_token_signed_response_alg, "EdDSA");
  OAuthSettings(view).erase("id_token_signed_response_alg");
  ASSERT_TRUE(apps_->Replace(tenant_, ctx_, issued.app.id, view).ok());
  EXPECT_EQ(SettingsOf(*apps_->Get(tenant_, issued.app.id))->id_token_signed_response_alg, "ES256");

  // Apps stored before the setting existed sign with ES256; a stored value of another alg is
  // corrupt, not silently ES256.
  store::AppRecord old = *stored;
  Json text = *ParseJson(old.settings_json);
  text.erase("id_token_signed_response_alg");
  old.settings_json = DumpJson(text);
  EXPECT_EQ(SettingsOf(old)->id_token_signed_response_alg, "ES256");
  text["id_token_signed_response_alg"] = "RS256";
  old.settings_json = DumpJson(text);
  EXPECT_EQ(SettingsOf(old).status().code(), absl::StatusCode::kInternal);
}

TEST_F(AppsTest, EveryWriteMovesTheGeneration) {
  uint64_t seen = apps_->Generation();
  auto moved = [&]() {
    const uint64_t now = apps_->Generation();
    const bool changed = now != seen;
    seen = now;
    return changed;
  };
  IssuedApp issued = MustCreate(WebBody());
  EXPECT_TRUE(moved()) << "create";
  ASSERT_TRUE(apps_->Get(tenant_, issued.app.id).ok());
  EXPECT_FALSE(moved()) << "a read";
  ASSERT_TRUE(apps_->NewSecret(tenant_, ctx_, issued.app.id).ok());
  EXPECT_TRUE(moved()) << "new secret";
  Json body = WebBody();
  body["label"] = "Payroll 2";
  ASSERT_TRUE(apps_->Replace(tenant_, ctx_, issued.app.id, body).ok());
  EXPECT_TRUE(moved()) << "replace";
  ASSERT_TRUE(apps_->SetStatus(tenant_, ctx_, issued.app.id, false).ok());
  EXPECT_TRUE(moved()) << "deactivate";
  ASSERT_TRUE(apps_->Delete(tenant_, ctx_, issued.app.id).ok());
  EXPECT_TRUE(moved()) << "delete";
}

TEST_F(AppsTest, CorruptStoredSettingsAreAnInternalError) {
  store::AppRecord app = MustCreate(WebBody()).app;
  app.settings_json = "{\"redirect_uris\": 5}";
  EXPECT_EQ(SettingsOf(app).status().code(), absl::StatusCode::kInternal);
  app.settings_json = "not json";
  EXPECT_EQ(SettingsOf(app).status().code(), absl::StatusCode::kInternal);
}

TEST_F(AppsTest, LifecycleAndDeleteOnlyWhenInactive) {
  IssuedApp issued = MustCreate(WebBody());
  const std::string id = issued.app.id;

  absl::Status active_delete = apps_->Delete(tenant_, ctx_, id);
  EXPECT_EQ(active_delete.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorCodeOf(active_delete), kErrWrongStatus);
  EXPECT_TRUE(apps_->Get(tenant_, id).ok());
  Json refused = LastEvent();
  EXPECT_EQ(refused["eventType"], "application.lifecycle.delete");
  EXPECT_EQ(refused["outcome"]["result"], "FAILURE");

  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<store::AppRecord> inactive = apps_->SetStatus(tenant_, ctx_, id, false);
  ASSERT_TRUE(inactive.ok()) << inactive.status();
  EXPECT_EQ(inactive->status, store::kAppInactive);
  EXPECT_EQ(inactive->last_updated, clock_.Now());
  EXPECT_EQ(apps_->Get(tenant_, id)->status, store::kAppInactive);
  EXPECT_EQ(LastEvent()["eventType"], "application.lifecycle.deactivate");
  absl::StatusOr<AppSettings> settings = SettingsOf(*inactive);
  ASSERT_TRUE(settings.ok());
  EXPECT_TRUE(AppView(*inactive, *settings, std::nullopt, "https://x/t/acme")["_links"].contains(
      "activate"));

  // Asking again changes nothing and records nothing.
  size_t events = Events(tenant_).size();
  EXPECT_TRUE(apps_->SetStatus(tenant_, ctx_, id, false).ok());
  EXPECT_EQ(Events(tenant_).size(), events);

  ASSERT_TRUE(apps_->SetStatus(tenant_, ctx_, id, true).ok());
  EXPECT_EQ(apps_->Get(tenant_, id)->status, store::kAppActive);
  EXPECT_EQ(LastEvent()["eventType"], "application.lifecycle.activate");

  ASSERT_TRUE(apps_->SetStatus(tenant_, ctx_, id, false).ok());
  ASSERT_TRUE(apps_->Delete(tenant_, ctx_, id).ok());
  absl::StatusOr<store::AppRecord> gone = apps_->Get(tenant_, id);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorCodeOf(gone.status()), kErrNotFound);
  Json deleted = LastEvent();
  EXPECT_EQ(deleted["eventType"], "application.lifecycle.delete");
  EXPECT_EQ(deleted["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(deleted["target"][0]["id"], id);
  EXPECT_EQ(deleted["target"][0]["type"], "AppInstance");

  EXPECT_EQ(ErrorCodeOf(apps_->Delete(tenant_, ctx_, id)), kErrNotFound);
  EXPECT_EQ(ErrorCodeOf(apps_->SetStatus(tenant_, ctx_, id, true).status()), kErrNotFound);
}

TEST_F(AppsTest, NewSecretReplacesTheOldOneAndIsShownOnce) {
  IssuedApp issued = MustCreate(WebBody());
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<IssuedApp> rotated = apps_->NewSecret(tenant_, ctx_, issued.app.id);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_TRUE(rotated->client_secret.has_value());
  EXPECT_NE(*rotated->client_secret, *issued.client_secret);
  EXPECT_EQ(rotated->settings.redirect_uris, issued.settings.redirect_uris);
  store::AppRecord stored = StoredApps(tenant_).at(0);
  EXPECT_EQ(stored.client_secret_hash, crypto::Sha256Hex(*rotated->client_secret));
  EXPECT_EQ(stored.last_updated, clock_.Now());
  Json event = LastEvent();
  EXPECT_EQ(event["eventType"], "application.client_secret.rotate");
  EXPECT_EQ(event["outcome"]["result"], "SUCCESS");
  EXPECT_THAT(DumpJson(event), Not(HasSubstr(*rotated->client_secret)));

  // A public client has no secret to rotate; the refusal is recorded.
  IssuedApp browser = MustCreate(BodyOfType("browser"));
  absl::StatusOr<IssuedApp> refused = apps_->NewSecret(tenant_, ctx_, browser.app.id);
  EXPECT_EQ(ErrorCodeOf(refused.status()), kErrValidation);
  EXPECT_THAT(ErrorCausesOf(refused.status()),
              ElementsAre(StartsWith("credentials.oauthClient.token_endpoint_auth_method: ")));
  EXPECT_EQ(LastEvent()["outcome"]["result"], "FAILURE");
  EXPECT_THAT(apps_->Get(tenant_, browser.app.id)->client_secret_hash, IsEmpty());
  EXPECT_EQ(ErrorCodeOf(apps_->NewSecret(tenant_, ctx_, "0oanope").status()), kErrNotFound);
}

TEST_F(AppsTest, ReplaceChangesLabelSettingsAndAuthMethod) {
  IssuedApp issued = MustCreate(WebBody());
  const std::string id = issued.app.id;

  // What GET shows can be sent back (client_id, id, status, _links are read-only).
  absl::StatusOr<AppSettings> settings = SettingsOf(issued.app);
  ASSERT_TRUE(settings.ok());
  Json round_trip = AppView(issued.app, *settings, std::nullopt, "https://id.example/t/acme");
  round_trip["label"] = "Payroll (EU)";
  round_trip["settings"]["oauthClient"]["redirect_uris"] = {"https://eu.payroll.example/cb"};
  clock_.Advance(absl::Minutes(1));
  absl::StatusOr<IssuedApp> replaced = apps_->Replace(tenant_, ctx_, id, round_trip);
  ASSERT_TRUE(replaced.ok()) << replaced.status() << " "
                             << fmt::format("{}", fmt::join(ErrorCausesOf(replaced.status()), "|"));
  EXPECT_EQ(replaced->app.label, "Payroll (EU)");
  EXPECT_THAT(replaced->settings.redirect_uris, ElementsAre("https://eu.payroll.example/cb"));
  EXPECT_FALSE(replaced->client_secret.has_value());  // the old secret still holds
  EXPECT_EQ(replaced->app.created, issued.app.created);
  EXPECT_EQ(replaced->app.last_updated, clock_.Now());
  store::AppRecord stored = StoredApps(tenant_).at(0);
  EXPECT_EQ(stored.client_secret_hash, crypto::Sha256Hex(*issued.client_secret));
  EXPECT_EQ(stored.label, "Payroll (EU)");
  EXPECT_EQ(LastEvent()["eventType"], "application.lifecycle.update");

  // To private_key_jwt: the secret is dropped.
  Json to_jwt = WebBody();
  to_jwt["credentials"]["oauthClient"]["token_endpoint_auth_method"] = "private_key_jwt";
  OAuthSettings(to_jwt)["jwks"] = {{"keys", {kEdKey}}};
  replaced = apps_->Replace(tenant_, ctx_, id, to_jwt);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_FALSE(replaced->client_secret.has_value());
  EXPECT_THAT(StoredApps(tenant_).at(0).client_secret_hash, IsEmpty());
  EXPECT_EQ(StoredApps(tenant_).at(0).token_endpoint_auth_method, kAuthPrivateKeyJwt);

  // Back to a secret: a new one is issued, never the old one.
  replaced = apps_->Replace(tenant_, ctx_, id, WebBody());
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  ASSERT_TRUE(replaced->client_secret.has_value());
  EXPECT_NE(*replaced->client_secret, *issued.client_secret);
  EXPECT_EQ(StoredApps(tenant_).at(0).client_secret_hash,
            crypto::Sha256Hex(*replaced->client_secret));

  // To a public client: no secret at all.
  Json to_browser = BodyOfType("browser");
  replaced = apps_->Replace(tenant_, ctx_, id, to_browser);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_EQ(replaced->app.application_type, "browser");
  EXPECT_THAT(StoredApps(tenant_).at(0).client_secret_hash, IsEmpty());

  // Refusals change nothing.
  size_t events = Events(tenant_).size();
  Json bad = WebBody();
  OAuthSettings(bad)["redirect_uris"] = {"https://x.example/#frag"};
  EXPECT_EQ(ErrorCodeOf(apps_->Replace(tenant_, ctx_, id, bad).status()), kErrValidation);
  Json other_id = WebBody();
  other_id["credentials"]["oauthClient"]["client_id"] = "0oaother";
  EXPECT_THAT(ErrorCausesOf(apps_->Replace(tenant_, ctx_, id, other_id).status()),
              ElementsAre(StartsWith("credentials.oauthClient.client_id: ")));
  EXPECT_EQ(StoredApps(tenant_).at(0).application_type, "browser");
  EXPECT_EQ(Events(tenant_).size(), events);
  EXPECT_EQ(ErrorCodeOf(apps_->Replace(tenant_, ctx_, "0oanope", WebBody()).status()),
            kErrNotFound);
}

TEST_F(AppsTest, TenantsDoNotSeeEachOthersApps) {
  IssuedApp issued = MustCreate(WebBody());
  EXPECT_EQ(ErrorCodeOf(apps_->Get(other_, issued.app.id).status()), kErrNotFound);
  EXPECT_EQ(ErrorCodeOf(apps_->SetStatus(other_, ctx_, issued.app.id, false).status()),
            kErrNotFound);
  EXPECT_EQ(ErrorCodeOf(apps_->NewSecret(other_, ctx_, issued.app.id).status()), kErrNotFound);
  EXPECT_THAT(*apps_->List(other_, {"", 10}), IsEmpty());
  EXPECT_THAT(Events(other_), IsEmpty());
}

TEST_F(AppsTest, ListPagesInIdOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(MustCreate(WebBody()).app.id);
  std::sort(ids.begin(), ids.end());
  absl::StatusOr<std::vector<store::AppRecord>> first = apps_->List(tenant_, {"", 2});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, ids[0]);
  EXPECT_EQ((*first)[1].id, ids[1]);
  absl::StatusOr<std::vector<store::AppRecord>> second = apps_->List(tenant_, {ids[1], 2});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].id, ids[2]);
  EXPECT_EQ(ErrorCodeOf(apps_->List(tenant_, {"", 0}).status()), kErrValidation);
}

}  // namespace
}  // namespace custos::oidc
