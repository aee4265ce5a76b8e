#include "api/security/security_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "crypto/hash.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::api::security {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kAcmeToken[] = "acme-admin-token-0123456789";
constexpr char kProviderToken[] = "provider-admin-token-0123456789";
constexpr char kLogToken[] = "acme-log-token-0123456789";

std::string HeaderOf(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class SecurityRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ = std::make_unique<Services>(
        Services{temp_->store(), config_, clock_, random_, *hasher_, *sealer_});
    routes_ = SecurityRoutes(*services_);
    ASSERT_TRUE(temp_->store()
                    .Write([&](store::Transaction& tx) -> absl::Status {
                      const TenantId provider(std::string(store::kProviderLogId));
                      for (auto [id, name] : {std::pair{acme_, "acme"}, {provider, "provider"}}) {
                        if (auto st = tx.Tenants().Insert({id, name, clock_.Now()}); !st.ok()) {
                          return st;
                        }
                      }
                      store::ApiTokenRecord admin{ApiTokenId("00Tacme"), acme_, "admin",
                                                  crypto::Sha256Hex(kAcmeToken), clock_.Now()};
                      if (auto st = tx.ApiTokens().Insert(admin); !st.ok()) return st;
                      store::ApiTokenRecord log{ApiTokenId("00Tlog"), acme_, "log",
                                                crypto::Sha256Hex(kLogToken), clock_.Now()};
                      log.scope = std::string(store::kScopeLogRead);
                      if (auto st = tx.ApiTokens().Insert(log); !st.ok()) return st;
                      store::ApiTokenRecord ops{ApiTokenId("00Tops"), provider, "secops",
                                                crypto::Sha256Hex(kProviderToken), clock_.Now()};
                      return tx.ApiTokens().Insert(ops);
                    })
                    .ok());
  }

  // Calls the route `pattern`; `params` fills its path parameters, `path` is informational.
  Response Call(std::string_view method, const std::string& pattern, std::string path,
                std::string token, const std::string& body = "",
                absl::flat_hash_map<std::string, std::string> params = {}) {
    Request request;
    request.method = std::string(method);
    request.path = path;
    request.target = path;
    request.body = body;
    request.remote_ip = "192.0.2.1";
    request.request_id = "req-fixed";
    request.base_url = "https://id.example";
    if (!token.empty()) request.headers["authorization"] = "SSWS " + token;
    if (!body.empty()) request.headers["content-type"] = "application/json";
    request.path_params = std::move(params);
    for (Route& r : routes_) {
      if (r.method == method && r.pattern == pattern) return r.handler(request);
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return Response();
  }

  Response Acme(std::string_view method, const std::string& suffix, const std::string& body = "",
                absl::flat_hash_map<std::string, std::string> params = {},
                std::string token = kAcmeToken) {
    params["tenant"] = "acme";
    return Call(method, "/t/{tenant}/api/v1/security" + suffix, "/t/acme/api/v1/security" + suffix,
                token, body, std::move(params));
  }

  static Json Body(const Response& r) {
    absl::StatusOr<Json> j = ParseJson(r.body);
    return j.ok() ? *j : Json();
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{3};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::vector<Route> routes_;
  TenantId acme_{"00oacme0000000000001"};
};

TEST_F(SecurityRoutesTest, ContactsNeedAnAdminTokenOfTheTenant) {
  EXPECT_EQ(Acme("GET", "/contacts", "", {}, "").status, 401);
  EXPECT_EQ(Acme("GET", "/contacts", "", {}, kProviderToken).status, 401);
  EXPECT_EQ(Acme("GET", "/contacts", "", {}, kLogToken).status, 403);
  Response unknown = Call("GET", "/t/{tenant}/api/v1/security/contacts",
                          "/t/nope/api/v1/security/contacts", kAcmeToken, "", {{"tenant", "nope"}});
  EXPECT_EQ(unknown.status, 404);
}

TEST_F(SecurityRoutesTest, WebhookSecretOnlyInTheCreateAnswer) {
  Response created = Acme("POST", "/contacts",
                          R"({"type":"webhook","name":"SOC","url":"https://soc.acme.example/in"})");
  ASSERT_EQ(created.status, 201) << created.body;
  Json c = Body(created);
  EXPECT_THAT(c["secret"].get<std::string>(), StartsWith("whsec_"));
  EXPECT_EQ(c["url"], "https://soc.acme.example/in");
  EXPECT_EQ(c["type"], "webhook");

  Response listed = Acme("GET", "/contacts");
  ASSERT_EQ(listed.status, 200);
  Json items = Body(listed);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_FALSE(items[0].contains("secret"));
  EXPECT_EQ(items[0]["id"], c["id"]);

  EXPECT_EQ(Acme("DELETE", "/contacts/{contactId}", "", {{"contactId", c["id"]}}).status, 204);
  EXPECT_EQ(Acme("DELETE", "/contacts/{contactId}", "", {{"contactId", c["id"]}}).status, 404);
  EXPECT_THAT(Body(Acme("GET", "/contacts")), IsEmpty());
}

TEST_F(SecurityRoutesTest, BadContactBodiesAreValidationErrors) {
  for (std::string body : {
           R"({"type":"webhook","name":"x","address":"https://a.example/"})",
           R"({"type":"email","name":"x","url":"a@b.example"})",
           R"({"type":"webhook","name":"x","url":"http://a.example/"})",
           R"({"type":"email","name":"x","address":"nope"})",
           R"({"type":"email","address":"a@b.example"})",
           R"({"type":"email","name":"x","address":"a@b.example","extra":1})",
           R"({"type":7,"name":"x","address":"a@b.example"})",
       }) {
    Response r = Acme("POST", "/contacts", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Body(r)["errorCode"], "E0000001") << body;
  }
  EXPECT_EQ(Body(Acme("POST", "/contacts", "{not json"))["errorCode"], "E0000003");
}

TEST_F(SecurityRoutesTest, NotificationsListAndAcknowledge) {
  store::IncidentRecord incident{.id = "inc1",
                                 .title = "t",
                                 .status = "NOTIFIED",
                                 .indicators_json = "{}",
                                 .created = clock_.Now(),
                                 .updated = clock_.Now()};
  store::NotificationRecord n{.id = "ntf1",
                              .incident_id = "inc1",
                              .tenant_id = acme_,
                              .contact_id = "sct1",
                              .channel = "webhook",
                              .payload_json = R"({"type":"security.incident.notification"})",
                              .status = "PENDING",
                              .next_attempt = clock_.Now(),
                              .created = clock_.Now()};
  ASSERT_TRUE(temp_->store()
                  .Write([&](store::Transaction& tx) -> absl::Status {
                    if (auto st = tx.Incidents().Insert(incident); !st.ok()) return st;
                    return tx.Incidents().InsertNotification(n);
                  })
                  .ok());
  Json listed = Body(Acme("GET", "/notifications"));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["status"], "PENDING");
  EXPECT_TRUE(listed[0]["acknowledged"].is_null());

  Response acked =
      Acme("POST", "/notifications/{notificationId}/acknowledge", "", {{"notificationId", "ntf1"}});
  ASSERT_EQ(acked.status, 200) << acked.body;
  EXPECT_EQ(Body(acked)["acknowledged"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(Body(acked)["acknowledgedBy"], "00Tacme");
  EXPECT_EQ(
      Acme("POST", "/notifications/{notificationId}/acknowledge", "", {{"notificationId", "ntf9"}})
          .status,
      404);
}

TEST_F(SecurityRoutesTest, StatusFeedIsPublicAndPublishingIsForProviderAdmins) {
  const std::string notices = "/provider/api/v1/status/notices";
  const std::string body = R"({"kind":"security","title":"Incident <1>","body":"Details & more"})";
  EXPECT_EQ(Call("POST", notices, notices, kAcmeToken, body).status, 401);
  Response published = Call("POST", notices, notices, kProviderToken, body);
  ASSERT_EQ(published.status, 201) << published.body;
  const std::string id = Body(published)["id"];
  EXPECT_THAT(id, StartsWith("stn"));

  Response updated =
      Call("PUT", notices + "/{noticeId}", notices + "/" + id, kProviderToken,
           R"({"kind":"security","title":"Incident <1>","body":"Resolved"})", {{"noticeId", id}});
  ASSERT_EQ(updated.status, 200) << updated.body;
  EXPECT_EQ(Body(updated)["body"], "Resolved");
  EXPECT_EQ(Call("PUT", notices + "/{noticeId}", notices + "/stnx", kProviderToken, body,
                 {{"noticeId", "stnx"}})
                .status,
            404);
  EXPECT_EQ(
      Call("POST", notices, notices, kProviderToken, R"({"kind":"outage","title":"t"})").status,
      400);

  Response json = Call("GET", "/status.json", "/status.json", "");
  ASSERT_EQ(json.status, 200);
  EXPECT_EQ(HeaderOf(json, "Cache-Control"), "public, max-age=60");
  ASSERT_THAT(Body(json)["notices"], SizeIs(1));
  EXPECT_EQ(Body(json)["notices"][0]["body"], "Resolved");

  Response atom = Call("GET", "/status.atom", "/status.atom", "");
  ASSERT_EQ(atom.status, 200);
  EXPECT_EQ(HeaderOf(atom, "Content-Type"), "application/atom+xml; charset=utf-8");
  EXPECT_EQ(HeaderOf(atom, "Cache-Control"), "public, max-age=60");
  EXPECT_THAT(atom.body, HasSubstr("<title type=\"text\">Incident &lt;1&gt;</title>"));
  EXPECT_THAT(atom.body, HasSubstr("https://id.example/status.atom"));
}

}  // namespace
}  // namespace custos::api::security
