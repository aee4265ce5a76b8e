#include "api/oidc/oidc_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "crypto/password_hasher.h"
#include "crypto/sealer.h"
#include "directory/directory.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/dpop.h"

namespace custos::api::oidc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

namespace co = custos::oidc;

constexpr char kRedirect[] = "https://payroll.example/cb";
const std::string kAuthorize = "/t/{tenant}/oauth2/v1/authorize";

std::string HeaderOf(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class OidcRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store_ = &temp_->store();
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ =
        std::make_unique<Services>(Services{*store_, config_, clock_, random_, *hasher_, *sealer_});
    directory_ = std::make_unique<directory::Directory>(*store_, config_, clock_, random_, *hasher_,
                                                        *sealer_);
    keys_ = std::make_unique<co::KeyManager>(*store_, *sealer_, clock_, random_);
    apps_ = std::make_unique<co::Apps>(*store_, clock_, random_);
    dpop_ = std::make_unique<support::DpopVerifier>(clock_);
    tokens_ = std::make_unique<co::TokenService>(*store_, clock_, random_, *keys_, *apps_,
                                                 *directory_, *dpop_);
    sign_in_ = std::make_unique<::custos::authn::SignIn>(*store_, config_, clock_, random_,
                                                         *hasher_, *sealer_);
    routes_ = OidcRoutes(*services_, {*keys_, *apps_, *tokens_, *sign_in_});
    ASSERT_TRUE(store_
                    ->Write([&](store::Transaction& tx) {
                      return tx.Tenants().Insert({tenant_, "acme", clock_.Now()});
                    })
                    .ok());
    ctx_.actor = audit::SystemPrincipal();
    absl::StatusOr<co::IssuedApp> app = apps_->Create(
        tenant_, ctx_,
        {{"label", "Payroll"},
         {"settings",
          {{"oauthClient", {{"application_type", "web"}, {"redirect_uris", {kRedirect}}}}}}});
    ASSERT_TRUE(app.ok()) << app.status();
    client_id_ = app->app.id;
  }
  void TearDown() override {
    routes_.clear();
    tokens_.reset();
    temp_.reset();
  }

  // GET /authorize with `query` as the raw query string.
  Response Get(const std::string& query) {
    Request request = Base("GET");
    request.target = request.path + "?" + query;
    // What the HTTP layer's parse keeps: the first value of each name.
    for (absl::string_view pair : absl::StrSplit(query, '&')) {
      std::vector<std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
      request.query.emplace(kv[0], kv.size() > 1 ? kv[1] : "");
    }
    return Call(request);
  }
  Response Post(const std::string& form) {
    Request request = Base("POST");
    request.target = request.path;
    request.body = form;
    request.headers["content-type"] = "application/x-www-form-urlencoded";
    return Call(request);
  }

  Request Base(std::string method) {
    Request request;
    request.method = std::move(method);
    request.path = "/t/acme/oauth2/v1/authorize";
    request.remote_ip = "192.0.2.1";
    request.request_id = "req-fixed";
    request.base_url = "https://id.example";
    request.path_params["tenant"] = "acme";
    return request;
  }
  Response Call(Request& request) {
    for (Route& r : routes_) {
      if (r.method == request.method && r.pattern == kAuthorize) return r.handler(request);
    }
    ADD_FAILURE() << "no route";
    return Response();
  }

  std::string Valid() const {
    return "response_type=code&client_id=" + client_id_ +
           "&redirect_uri=https%3A%2F%2Fpayroll.example%2Fcb&state=s1";
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  store::Store* store_ = nullptr;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{5};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<co::KeyManager> keys_;
  std::unique_ptr<co::Apps> apps_;
  std::unique_ptr<support::DpopVerifier> dpop_;
  std::unique_ptr<co::TokenService> tokens_;
  std::unique_ptr<::custos::authn::SignIn> sign_in_;
  std::vector<Route> routes_;
  audit::RequestContext ctx_;
  TenantId tenant_{"00otenant0000000001"};
  std::string client_id_;
};

TEST_F(OidcRoutesTest, AValidRequestShowsTheSignInPage) {
  Response r = Get(Valid() + "&scope=openid");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.body, HasSubstr("Sign in to acme"));
}

TEST_F(OidcRoutesTest, ARepeatedParameterIsSentBackAsInvalidRequest) {
  for (const std::string& query :
       {Valid() + "&scope=openid&scope=openid+email", Valid() + "&scope=openid&state=s2",
        Valid() + "&scope=openid&nonce=a&nonce=b", Valid() + "&scope=openid&response_type=code",
        Valid() + "&scope=openid&request_uri=x&request_uri=y"}) {
    Response r = Get(query);
    ASSERT_EQ(r.status, 302) << query << ": " << r.body;
    const std::string location = HeaderOf(r, "Location");
    EXPECT_THAT(location, StartsWith(std::string(kRedirect) + "?error=invalid_request&"));
    EXPECT_THAT(location, HasSubstr("%20is%20repeated")) << location;
    EXPECT_THAT(location, HasSubstr("&state=s1&")) << "the first state is echoed";
  }
  Response r = Get(Valid() + "&scope=openid&scope=email");
  EXPECT_THAT(HeaderOf(r, "Location"), HasSubstr("error_description=scope%20is%20repeated"));
  // The same in a POSTed form.
  r = Post(Valid() + "&scope=openid&prompt=login&prompt=none");
  ASSERT_EQ(r.status, 302) << r.body;
  EXPECT_THAT(HeaderOf(r, "Location"), HasSubstr("error_description=prompt%20is%20repeated"));
  // Parameters that are not ours are ignored, repeated or not.
  EXPECT_EQ(Get(Valid() + "&scope=openid&utm=1&utm=2").status, 200);
}

TEST_F(OidcRoutesTest, ARepeatedClientIdOrRedirectUriIsAnErrorPage) {
  const std::string redirect = "redirect_uri=https%3A%2F%2Fpayroll.example%2Fcb";
  for (const std::string& query : {
           Valid() + "&scope=openid&client_id=" + client_id_,
           Valid() + "&scope=openid&client_id=0oaother",
           Valid() + "&scope=openid&" + redirect,
       }) {
    Response r = Get(query);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(HeaderOf(r, "Location"), "") << query;
    EXPECT_THAT(r.body, HasSubstr("more than one")) << query;
    EXPECT_THAT(r.body, Not(HasSubstr("Sign in to")));
  }
  Response r = Post(Valid() + "&scope=openid&" + redirect);
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("more than one redirect_uri"));
}

}  // namespace
}  // namespace custos::api::oidc
