#include "api/management/apps_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::api::management {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAdminToken[] = "admin-token-0123456789";
constexpr char kLogToken[] = "log-token-0123456789";
const std::string kApps = "/t/{tenant}/api/v1/apps";
const std::string kApp = kApps + "/{appId}";

std::vector<std::string> HeadersOf(const Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

Json WebApp(std::string label = "Payroll") {
  return {{"name", "oidc_client"},
          {"label", label},
          {"signOnMode", "OPENID_CONNECT"},
          {"settings",
           {{"oauthClient",
             {{"application_type", "web"},
              {"redirect_uris", {"https://payroll.example/cb"}},
              {"grant_types", {"authorization_code", "refresh_token"}}}}}}};
}

class AppsRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ =
        std::make_unique<Services>(Services{*store_, config_, clock_, random_, *hasher_, *sealer_});
    apps_ = std::make_unique<oidc::Apps>(*store_, clock_, random_);
    routes_ = AppsRoutes(*services_, *apps_);
    ASSERT_TRUE(
        store_
            ->Write([&](store::Transaction& tx) -> absl::Status {
              if (auto st = tx.Tenants().Insert({tenant_, "acme", clock_.Now()}); !st.ok()) {
                return st;
              }
              store::ApiTokenRecord admin{ApiTokenId("00Tadmin"), tenant_, "admin",
                                          crypto::Sha256Hex(kAdminToken), clock_.Now()};
              if (auto st = tx.ApiTokens().Insert(admin); !st.ok()) return st;
              store::ApiTokenRecord log{ApiTokenId("00Tlog"), tenant_, "log",
                                        crypto::Sha256Hex(kLogToken), clock_.Now()};
              log.scope = std::string(store::kScopeLogRead);
              return tx.ApiTokens().Insert(log);
            })
            .ok());
  }
  void TearDown() override {
    routes_.clear();
    apps_.reset();
    temp_.reset();
  }

  Response Call(std::string_view method, const std::string& pattern, const std::string& body = "",
                std::string app_id = "", absl::flat_hash_map<std::string, std::string> query = {},
                std::string token = kAdminToken) {
    Request request;
    request.method = std::string(method);
    request.path = "/t/acme/api/v1/apps" + (app_id.empty() ? "" : "/" + app_id);
    request.target = request.path;
    request.query = std::move(query);
    request.body = body;
    request.remote_ip = "192.0.2.1";
    request.request_id = "req-fixed";
    request.base_url = "https://id.example";
    if (!token.empty()) request.headers["authorization"] = "SSWS " + token;
    if (!body.empty()) request.headers["content-type"] = "application/json";
    request.path_params["tenant"] = tenant_name_;
    if (!app_id.empty()) request.path_params["appId"] = app_id;
    for (Route& r : routes_) {
      if (r.method == method && r.pattern == pattern) return r.handler(request);
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return Response();
  }

  static Json Body(const Response& r) {
    absl::StatusOr<Json> j = ParseJson(r.body);
    return j.ok() ? *j : Json();
  }

  std::string Create(const Json& app = WebApp()) {
    Response r = Call("POST", kApps, DumpJson(app));
    EXPECT_EQ(r.status, 200) << r.body;
    return Body(r).value("id", std::string());
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{11};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<oidc::Apps> apps_;
  std::vector<Route> routes_;
  TenantId tenant_{"00oacme0000000000001"};
  std::string tenant_name_ = "acme";
};

TEST_F(AppsRoutesTest, RoutesAreTheDocumentedOnes) {
  std::vector<std::string> got;
  for (const Route& r : routes_) got.push_back(r.method + " " + r.pattern);
  EXPECT_THAT(
      got, ElementsAre("POST /t/{tenant}/api/v1/apps", "GET /t/{tenant}/api/v1/apps",
                       "GET /t/{tenant}/api/v1/apps/{appId}", "PUT /t/{tenant}/api/v1/apps/{appId}",
                       "DELETE /t/{tenant}/api/v1/apps/{appId}",
                       "POST /t/{tenant}/api/v1/apps/{appId}/lifecycle/activate",
                       "POST /t/{tenant}/api/v1/apps/{appId}/lifecycle/deactivate",
                       "POST /t/{tenant}/api/v1/apps/{appId}/credentials/secrets"));
}

TEST_F(AppsRoutesTest, NeedsAnAdminTokenOfAnExistingTenant) {
  EXPECT_EQ(Call("GET", kApps, "", "", {}, "").status, 401);
  EXPECT_EQ(Call("GET", kApps, "", "", {}, "wrong").status, 401);
  Response log_only = Call("POST", kApps, DumpJson(WebApp()), "", {}, kLogToken);
  EXPECT_EQ(log_only.status, 403);
  EXPECT_EQ(Body(log_only)["errorCode"], "E0000006");
  tenant_name_ = "nobody";
  EXPECT_EQ(Call("GET", kApps).status, 404);
}

TEST_F(AppsRoutesTest, CreateShowsTheSecretOnceThenNever) {
  Response created = Call("POST", kApps, DumpJson(WebApp()));
  ASSERT_EQ(created.status, 200) << created.body;
  Json app = Body(created);
  const std::string id = app["id"];
  ASSERT_TRUE(app["credentials"]["oauthClient"].contains("client_secret"));
  const std::string secret = app["credentials"]["oauthClient"]["client_secret"];
  EXPECT_EQ(app["credentials"]["oauthClient"]["client_id"], id);
  EXPECT_EQ(app["status"], "ACTIVE");
  EXPECT_EQ(app["_links"]["self"]["href"], "https://id.example/t/acme/api/v1/apps/" + id);

  Response got = Call("GET", kApp, "", id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_FALSE(Body(got)["credentials"]["oauthClient"].contains("client_secret"));
  EXPECT_THAT(got.body, Not(HasSubstr(secret)));
  Response listed = Call("GET", kApps);
  EXPECT_THAT(listed.body, Not(HasSubstr(secret)));

  Response rotated = Call("POST", kApp + "/credentials/secrets", "", id);
  ASSERT_EQ(rotated.status, 200) << rotated.body;
  std::string second = Body(rotated)["credentials"]["oauthClient"]["client_secret"];
  EXPECT_NE(second, secret);
  EXPECT_THAT(Call("GET", kApp, "", id).body, Not(HasSubstr(second)));
}

TEST_F(AppsRoutesTest, BadInputIsA400NamingTheMemberAndStoresNothing) {
  Json bad = WebApp();
  bad["settings"]["oauthClient"]["redirect_uris"] = {"http://payroll.example/cb"};
  Response r = Call("POST", kApps, DumpJson(bad));
  EXPECT_EQ(r.status, 400);
  Json body = Body(r);
  EXPECT_EQ(body["errorCode"], "E0000001");
  ASSERT_FALSE(body["errorCauses"].empty());
  EXPECT_THAT(body["errorCauses"][0]["errorSummary"].get<std::string>(),
              StartsWith("settings.oauthClient.redirect_uris[0]: "));

  Json unknown = WebApp();
  unknown["visibility"] = Json::object();
  r = Call("POST", kApps, DumpJson(unknown));
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Body(r)["errorCauses"][0]["errorSummary"].get<std::string>(),
              StartsWith("visibility: "));

  EXPECT_EQ(Body(Call("POST", kApps, "not json"))["errorCode"], "E0000003");
  EXPECT_EQ(Body(Call("POST", kApps, "[]"))["errorCode"], "E0000001");
  EXPECT_EQ(Body(Call("GET", kApps, "", "", {{"limit", "0"}}))["errorCode"], "E0000001");
  EXPECT_EQ(Body(Call("GET", kApps, "", "", {{"limit", "201"}}))["errorCode"], "E0000001");
  EXPECT_EQ(Body(Call("GET", kApps)), Json::array());
}

TEST_F(AppsRoutesTest, ListPagesWithLinkHeaders) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(Create(WebApp("App " + std::to_string(i))));
  std::sort(ids.begin(), ids.end());
  Response first = Call("GET", kApps, "", "", {{"limit", "2"}});
  ASSERT_EQ(first.status, 200) << first.body;
  Json page = Body(first);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]["id"], ids[0]);
  EXPECT_EQ(page[1]["id"], ids[1]);
  std::vector<std::string> links = HeadersOf(first, "Link");
  ASSERT_EQ(links.size(), 2u);
  EXPECT_THAT(links[1], HasSubstr("after=" + ids[1]));
  EXPECT_THAT(links[1], HasSubstr("rel=\"next\""));

  Response second = Call("GET", kApps, "", "", {{"limit", "2"}, {"after", ids[1]}});
  ASSERT_EQ(Body(second).size(), 1u);
  EXPECT_EQ(Body(second)[0]["id"], ids[2]);
  EXPECT_EQ(HeadersOf(second, "Link").size(), 1u);  // self only: the last page

  // Exactly `limit` apps left: no next link.
  Response all = Call("GET", kApps, "", "", {{"limit", "3"}});
  EXPECT_EQ(Body(all).size(), 3u);
  EXPECT_EQ(HeadersOf(all, "Link").size(), 1u);
}

TEST_F(AppsRoutesTest, ReplaceLifecycleAndDelete) {
  const std::string id = Create();
  Json app = Body(Call("GET", kApp, "", id));
  app["label"] = "Payroll (EU)";
  Response put = Call("PUT", kApp, DumpJson(app), id);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(Body(put)["label"], "Payroll (EU)");
  EXPECT_FALSE(Body(put)["credentials"]["oauthClient"].contains("client_secret"));

  Response refused = Call("DELETE", kApp, "", id);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(Body(refused)["errorCode"], "E0000038");

  Response deactivated = Call("POST", kApp + "/lifecycle/deactivate", "", id);
  EXPECT_EQ(deactivated.status, 200);
  EXPECT_EQ(Body(deactivated), Json::object());
  EXPECT_EQ(Body(Call("GET", kApp, "", id))["status"], "INACTIVE");
  EXPECT_EQ(Call("POST", kApp + "/lifecycle/activate", "", id).status, 200);
  EXPECT_EQ(Body(Call("GET", kApp, "", id))["status"], "ACTIVE");
  EXPECT_EQ(Call("POST", kApp + "/lifecycle/deactivate", "", id).status, 200);

  EXPECT_EQ(Call("DELETE", kApp, "", id).status, 204);
  Response gone = Call("GET", kApp, "", id);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(Body(gone)["errorCode"], "E0000007");
  EXPECT_EQ(Call("PUT", kApp, DumpJson(WebApp()), id).status, 404);
  EXPECT_EQ(Call("POST", kApp + "/credentials/secrets", "", id).status, 404);
  EXPECT_EQ(Call("POST", kApp + "/lifecycle/activate", "", id).status, 404);
  EXPECT_THAT(Body(Call("GET", kApps)), IsEmpty());
}

}  // namespace
}  // namespace custos::api::management
