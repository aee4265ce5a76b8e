#include "api/console/console_routes.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "api/console/console_files.h"
#include "api/log/log_routes.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "authn/totp_factor.h"
#include "common/rate_limiter.h"
#include "crypto/hash.h"
#include "crypto/totp.h"
#include "directory/directory.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::api::console {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kPassword[] = "correct horse battery staple";
constexpr char kAcmeToken[] = "acme-admin-token-0123456789";

// One user who can sign in: their id and TOTP secret (empty: password only).
struct Person {
  UserId id;
  std::string login;
  std::string totp_secret;
};

class ConsoleSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    config_.argon2_memory_kib = 8;
    config_.argon2_iterations = 1;
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ = std::make_unique<Services>(
        Services{temp_->store(), config_, clock_, random_, *hasher_, *sealer_});
    sign_in_ = std::make_unique<::custos::authn::SignIn>(temp_->store(), config_, clock_, random_,
                                                         *hasher_, *sealer_);
    services_->sign_in = sign_in_.get();
    directory_ = std::make_unique<directory::Directory>(temp_->store(), config_, clock_, random_,
                                                        *hasher_, *sealer_);
    log_keys_ = std::make_unique<audit::LogKeys>(temp_->store(), *sealer_, clock_, random_);
    log_reader_ = std::make_unique<audit::LogReader>(temp_->store());

    ASSERT_TRUE(
        temp_->store()
            .Write([&](store::Transaction& tx) -> absl::Status {
              for (const auto& [id, name] :
                   {std::pair{acme_, "acme"}, {globex_, "globex"}, {provider_, "provider"}}) {
                if (auto st = tx.Tenants().Insert({id, name, clock_.Now()}); !st.ok()) {
                  return st;
                }
              }
              return tx.ApiTokens().Insert({ApiTokenId("00Tacme"), acme_, "admin",
                                            crypto::Sha256Hex(kAcmeToken), clock_.Now()});
            })
            .ok());

    routes_ = ConsoleRoutes(*services_, *sign_in_);
    // What every admin route is wrapped in; the probe answers who it saw.
    routes_.push_back({"GET", "/t/{tenant}/api/v1/probe",
                       TenantAdmin(*services_,
                                   [](Request&, const store::TenantRecord& t,
                                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                                     return Response::MakeJson(
                                         200, {{"tenant", t.name},
                                               {"actorType", ctx.actor.type},
                                               {"actorId", ctx.actor.id},
                                               {"session", ctx.external_session_id}});
                                   })});
    routes_.push_back(
        {"GET", "/provider/api/v1/probe",
         ProviderAdmin(*services_,
                       [](Request&, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                         return Response::MakeJson(200, {{"actorId", ctx.actor.id}});
                       })});
    for (Route& r : log::LogRoutes(*services_, *log_reader_, *log_keys_)) {
      routes_.push_back(std::move(r));
    }
  }

  void TearDown() override {
    routes_.clear();
    temp_.reset();
  }

  audit::RequestContext SystemContext() {
    audit::RequestContext ctx;
    ctx.actor = audit::SystemPrincipal();
    ctx.request_id = "test-setup";
    return ctx;
  }

  // An ACTIVE user of `tenant` with a password and, when `totp`, an active TOTP factor.
  Person AddPerson(const TenantId& tenant, const std::string& login, bool totp) {
    Person p{UserId(""), login, ""};
    absl::StatusOr<store::UserRecord> user = directory_->CreateUser(
        tenant, SystemContext(),
        {{"login", login}, {"email", login}, {"firstName", "Kim"}, {"lastName", "Admin"}},
        std::string(kPassword), true);
    EXPECT_TRUE(user.ok()) << user.status();
    if (!user.ok()) return p;
    p.id = user->id;
    if (!totp) return p;
    absl::StatusOr<directory::FactorEnrollment> enrolled = directory_->EnrollFactor(
        tenant, SystemContext(), p.id.value(), ::custos::authn::kTotpFactorType,
        ::custos::authn::kTotpProvider, "Custos (test)");
    EXPECT_TRUE(enrolled.ok()) << enrolled.status();
    absl::StatusOr<std::string> secret = sealer_->Open(
        enrolled->factor.sealed_secret, ::custos::authn::TotpAssociatedData(enrolled->factor));
    EXPECT_TRUE(secret.ok());
    p.totp_secret = *secret;
    EXPECT_TRUE(
        directory_
            ->ActivateFactor(tenant, SystemContext(), p.id.value(), enrolled->factor.id.value(),
                             crypto::TotpCode(p.totp_secret, crypto::TotpStep(clock_.Now())))
            .ok());
    return p;
  }

  // Puts `p` in the tenant's console admin group (made on first use).
  void MakeAdmin(const TenantId& tenant, const Person& p) {
    if (!admin_groups_.contains(tenant.value())) {
      absl::StatusOr<store::GroupRecord> group =
          directory_->CreateGroup(tenant, SystemContext(), {{"name", config_.console_admin_group}});
      ASSERT_TRUE(group.ok()) << group.status();
      admin_groups_[tenant.value()] = group->id;
    }
    ASSERT_TRUE(directory_
                    ->AddMember(tenant, SystemContext(), admin_groups_[tenant.value()].value(),
                                p.id.value())
                    .ok());
  }

  // Signs `p` in through the sign-in API (with their second factor when they have one) and
  // returns the session token.
  std::string SessionOf(const TenantId& tenant, const Person& p) {
    ::custos::authn::AuthnAttempt first =
        sign_in_->Authenticate(tenant, p.login, kPassword, audit::RequestContext{});
    EXPECT_TRUE(first.result.ok()) << first.result.status();
    if (!first.result.ok()) return "";
    if (first.result->status == ::custos::authn::AuthnStatus::kSuccess) return first.result->token;
    clock_.Advance(absl::Seconds(30));  // a fresh code: the activation used the last one
    EXPECT_THAT(first.result->factors, SizeIs(1));
    ::custos::authn::AuthnAttempt second = sign_in_->VerifyFactor(
        tenant, first.result->token, first.result->factors[0].id,
        crypto::TotpCode(p.totp_secret, crypto::TotpStep(clock_.Now())), audit::RequestContext{});
    EXPECT_TRUE(second.result.ok()) << second.result.status();
    return second.result.ok() ? second.result->token : "";
  }

  Response Call(std::string_view method, std::string_view pattern,
                absl::flat_hash_map<std::string, std::string> params, std::string authorization,
                absl::flat_hash_map<std::string, std::string> headers = {}) {
    Request request;
    request.headers = std::move(headers);
    request.method = std::string(method);
    request.path = std::string(pattern);
    request.target = request.path;
    request.remote_ip = "192.0.2.7";
    request.request_id = "req-console";
    request.base_url = "https://id.example";
    if (!authorization.empty()) request.headers["authorization"] = std::move(authorization);
    request.path_params = std::move(params);
    for (Route& r : routes_) {
      if (r.method == method && r.pattern == pattern) return r.handler(request);
    }
    ADD_FAILURE() << "no route " << method << " " << pattern;
    return Response();
  }

  Response Session(std::string_view method, const std::string& tenant, const std::string& token) {
    return Call(method, "/t/{tenant}/api/v1/console/session", {{"tenant", tenant}},
                "Bearer " + token);
  }
  Response Probe(const std::string& tenant, const std::string& token) {
    return Call("GET", "/t/{tenant}/api/v1/probe", {{"tenant", tenant}}, "Bearer " + token);
  }
  Response ProviderProbe(const std::string& token) {
    return Call("GET", "/provider/api/v1/probe", {}, "Bearer " + token);
  }

  // The log's events of `type`, oldest first, as JSON.
  std::vector<Json> Events(const TenantId& tenant, std::string_view type) {
    absl::StatusOr<std::vector<store::EventRecord>> events =
        store::ReadResult(temp_->store(), [&](store::Transaction& tx) {
          return tx.Events().Query(tenant, store::EventQuery{.limit = 1000});
        });
    EXPECT_TRUE(events.ok()) << events.status();
    std::vector<Json> out;
    for (const store::EventRecord& e : events.value_or(std::vector<store::EventRecord>{})) {
      if (e.event_type == type) out.push_back(*ParseJson(e.json));
    }
    return out;
  }
  size_t EventCount(const TenantId& tenant) {
    absl::StatusOr<std::vector<store::EventRecord>> events =
        store::ReadResult(temp_->store(), [&](store::Transaction& tx) {
          return tx.Events().Query(tenant, store::EventQuery{.limit = 1000});
        });
    return events.ok() ? events->size() : 0;
  }

  static Json Body(const Response& r) {
    absl::StatusOr<Json> j = ParseJson(r.body);
    return j.ok() ? *j : Json();
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{11};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<::custos::authn::SignIn> sign_in_;
  std::unique_ptr<directory::Directory> directory_;
  std::unique_ptr<audit::LogKeys> log_keys_;
  std::unique_ptr<audit::LogReader> log_reader_;
  std::vector<Route> routes_;
  absl::flat_hash_map<std::string, GroupId> admin_groups_;
  const TenantId acme_{"00oacme0000000000001"};
  const TenantId globex_{"00oglobex00000000001"};
  const TenantId provider_{std::string(store::kProviderLogId)};
};

TEST_F(ConsoleSessionTest, AnAdminSignsInOnceAndThenReadsWithoutEvents) {
  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);

  Response signed_in = Session("POST", "acme", token);
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  const Json body = Body(signed_in);
  EXPECT_EQ(body["user"]["id"], kim.id.value());
  EXPECT_EQ(body["user"]["login"], "kim@acme.example");
  EXPECT_EQ(body["user"]["displayName"], "Kim Admin");
  EXPECT_EQ(body["tenant"]["name"], "acme");
  EXPECT_EQ(body["provider"], false);
  EXPECT_EQ(body["logOrigin"], "id.example/t/acme");
  EXPECT_TRUE(body["expiresAt"].is_string());

  std::vector<Json> access = Events(acme_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(1));
  EXPECT_EQ(access[0]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(access[0]["actor"]["id"], kim.id.value());
  EXPECT_EQ(access[0]["actor"]["type"], "User");

  // A reload and the admin routes leave nothing in the log; the actor is the user.
  const size_t before = EventCount(acme_);
  Response again = Session("GET", "acme", token);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(Body(again), body);
  Response probe = Probe("acme", token);
  ASSERT_EQ(probe.status, 200) << probe.body;
  EXPECT_EQ(Body(probe)["actorType"], "User");
  EXPECT_EQ(Body(probe)["actorId"], kim.id.value());
  EXPECT_FALSE(Body(probe)["session"].get<std::string>().empty());
  EXPECT_EQ(EventCount(acme_), before);

  // The System Log query and the verifiable log routes take the session too.
  Response keys =
      Call("GET", "/t/{tenant}/api/v1/log/keys", {{"tenant", "acme"}}, "Bearer " + token);
  EXPECT_EQ(keys.status, 200) << keys.body;
  Response checkpoint = Call("GET", "/t/{tenant}/log/{path...}",
                             {{"tenant", "acme"}, {"path", "checkpoint"}}, "Bearer " + token);
  EXPECT_EQ(checkpoint.status, 404) << "authorised; the log has no checkpoint yet";
}

TEST_F(ConsoleSessionTest, AUserOutsideTheGroupIsRefusedWithAnEvent) {
  const Person lee = AddPerson(acme_, "lee@acme.example", true);
  const std::string token = SessionOf(acme_, lee);

  for (const Response& r : {Session("POST", "acme", token), Probe("acme", token)}) {
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(Body(r)["errorCode"], "E0000006");
    EXPECT_EQ(Body(r)["reason"], "NOT_ADMIN");
  }
  std::vector<Json> access = Events(acme_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(2));
  for (const Json& e : access) {
    EXPECT_EQ(e["outcome"]["result"], "DENY");
    EXPECT_EQ(e["outcome"]["reason"], "NOT_ADMIN");
    EXPECT_EQ(e["actor"]["id"], lee.id.value());
  }
}

TEST_F(ConsoleSessionTest, LeavingTheGroupEndsAdminAccessAtOnce) {
  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);
  ASSERT_EQ(Probe("acme", token).status, 200);
  ASSERT_TRUE(directory_
                  ->RemoveMember(acme_, SystemContext(), admin_groups_[acme_.value()].value(),
                                 kim.id.value())
                  .ok());
  EXPECT_EQ(Probe("acme", token).status, 403);
}

TEST_F(ConsoleSessionTest, ASessionWithoutASecondFactorIsRefused) {
  const Person pat = AddPerson(acme_, "pat@acme.example", false);
  MakeAdmin(acme_, pat);
  const std::string token = SessionOf(acme_, pat);  // password only: amr "pwd"

  Response r = Session("POST", "acme", token);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(Body(r)["errorCode"], "E0000006");
  EXPECT_EQ(Body(r)["reason"], "MFA_REQUIRED");
  EXPECT_EQ(Probe("acme", token).status, 403);
  std::vector<Json> access = Events(acme_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(2));
  EXPECT_EQ(access[0]["outcome"]["reason"], "MFA_REQUIRED");
  EXPECT_EQ(access[0]["actor"]["id"], pat.id.value());
}

TEST_F(ConsoleSessionTest, UnknownAndExpiredSessionsAre401WithAnEvent) {
  Response unknown = Session("POST", "acme", "not-a-session");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(Body(unknown)["errorCode"], "E0000011");
  Response missing = Call("GET", "/t/{tenant}/api/v1/console/session", {{"tenant", "acme"}}, "");
  EXPECT_EQ(missing.status, 401);

  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);
  ASSERT_EQ(Probe("acme", token).status, 200);
  clock_.Advance(config_.session_idle_timeout + absl::Seconds(1));
  Response expired = Probe("acme", token);
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(Body(expired)["errorCode"], "E0000011");

  std::vector<Json> access = Events(acme_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(3));
  EXPECT_EQ(access[0]["outcome"]["result"], "FAILURE");
  EXPECT_EQ(access[0]["outcome"]["reason"], "INVALID_SESSION");
  EXPECT_EQ(access[0]["actor"]["id"], "unknown");
  EXPECT_EQ(access[1]["outcome"]["reason"], "MISSING_CREDENTIALS");
  EXPECT_EQ(access[2]["outcome"]["reason"], "SESSION_EXPIRED");
  EXPECT_EQ(access[2]["actor"]["id"], kim.id.value()) << "the actor is the user where known";
}

TEST_F(ConsoleSessionTest, AnotherTenantsSessionIsRefused) {
  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);

  EXPECT_EQ(Session("POST", "globex", token).status, 401);
  EXPECT_EQ(Probe("globex", token).status, 401);
  EXPECT_EQ(ProviderProbe(token).status, 401);
  EXPECT_THAT(Events(globex_, kEventAccessAdminApp), SizeIs(2));
  EXPECT_THAT(Events(provider_, kEventAccessAdminApp), SizeIs(1));
  EXPECT_THAT(Events(acme_, kEventAccessAdminApp), IsEmpty());
}

TEST_F(ConsoleSessionTest, OnlyTheSecurityTeamPassesProviderAdminRoutes) {
  // An operator: a provider user with a second factor, not in the group.
  const Person op = AddPerson(provider_, "sam@contractor.example", true);
  const std::string op_token = SessionOf(provider_, op);
  Response refused = ProviderProbe(op_token);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(Body(refused)["reason"], "NOT_ADMIN");
  EXPECT_EQ(
      Call("GET", "/provider/log/{path...}", {{"path", "checkpoint"}}, "Bearer " + op_token).status,
      403);
  std::vector<Json> access = Events(provider_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(2));
  EXPECT_EQ(access[0]["actor"]["id"], op.id.value());

  const Person sec = AddPerson(provider_, "riley@provider.example", true);
  MakeAdmin(provider_, sec);
  const std::string token = SessionOf(provider_, sec);
  Response session = Session("POST", "provider", token);
  ASSERT_EQ(session.status, 200) << session.body;
  EXPECT_EQ(Body(session)["provider"], true);
  EXPECT_EQ(Body(session)["logOrigin"], "id.example/provider");
  Response probe = ProviderProbe(token);
  EXPECT_EQ(probe.status, 200) << probe.body;
  EXPECT_EQ(Body(probe)["actorId"], sec.id.value());
  EXPECT_EQ(
      Call("GET", "/provider/log/{path...}", {{"path", "checkpoint"}}, "Bearer " + token).status,
      404)
      << "authorised; the provider log has no checkpoint yet";
  // The security team is no admin of a customer tenant.
  EXPECT_EQ(Probe("acme", token).status, 401);
}

TEST_F(ConsoleSessionTest, BackgroundPollsDoNotKeepAnUnattendedSessionAlive) {
  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);
  ASSERT_EQ(Session("POST", "acme", token).status, 200);
  const absl::flat_hash_map<std::string, std::string> background = {{"x-custos-background", "1"}};
  const std::string bearer = "Bearer " + token;
  // What the console polls on its own, each marked as such.
  auto poll = [&]() {
    std::vector<int> statuses;
    for (const Response& r :
         {Call("GET", "/t/{tenant}/api/v1/probe", {{"tenant", "acme"}}, bearer, background),
          Call("GET", "/t/{tenant}/api/v1/console/session", {{"tenant", "acme"}}, bearer,
               background),
          Call("GET", "/t/{tenant}/api/v1/log/keys", {{"tenant", "acme"}}, bearer, background),
          Call("GET", "/t/{tenant}/log/{path...}", {{"tenant", "acme"}, {"path", "checkpoint"}},
               bearer, background)}) {
      statuses.push_back(r.status);
    }
    return statuses;
  };
  // Polled for the whole idle timeout, nobody at the keyboard: still signed in until it ends.
  const absl::Time start = clock_.Now();
  while (clock_.Now() + absl::Minutes(1) < start + config_.session_idle_timeout) {
    clock_.Advance(absl::Minutes(1));
    ASSERT_THAT(poll(), ElementsAre(200, 200, 200, 404)) << clock_.Now() - start;
  }
  clock_.Set(start + config_.session_idle_timeout);
  EXPECT_THAT(poll(), ElementsAre(401, 401, 401, 401));
  std::vector<Json> access = Events(acme_, kEventAccessAdminApp);
  ASSERT_FALSE(access.empty());
  EXPECT_EQ(access.back()["outcome"]["reason"], "SESSION_EXPIRED");

  // The same polls without the header are the admin's activity and keep a session alive.
  const std::string other = SessionOf(acme_, kim);
  const absl::Time signed_in = clock_.Now();
  while (clock_.Now() < signed_in + config_.session_idle_timeout + absl::Hours(1)) {
    clock_.Advance(absl::Minutes(10));
    ASSERT_EQ(Probe("acme", other).status, 200) << clock_.Now() - signed_in;
  }
}

TEST_F(ConsoleSessionTest, AnOverlongBearerOnTheProviderLogIsARefusedConsoleSession) {
  const std::string overlong = "Bearer " + std::string(300, 'a');
  Response r = Call("GET", "/provider/log/{path...}", {{"path", "checkpoint"}}, overlong);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(Body(r)["errorCode"], "E0000011");
  std::vector<Json> access = Events(provider_, kEventAccessAdminApp);
  ASSERT_THAT(access, SizeIs(1));
  EXPECT_EQ(access[0]["outcome"]["result"], "FAILURE");
  EXPECT_EQ(access[0]["outcome"]["reason"], "INVALID_SESSION");
  EXPECT_THAT(Events(provider_, "system.provider_token.verify"), IsEmpty());
  // The tenant admin routes decide the same way.
  EXPECT_EQ(Call("GET", "/t/{tenant}/api/v1/probe", {{"tenant", "acme"}}, overlong).status, 401);
  ASSERT_THAT(Events(acme_, kEventAccessAdminApp), SizeIs(1));
  EXPECT_EQ(Events(acme_, kEventAccessAdminApp)[0]["outcome"]["reason"], "INVALID_SESSION");
}

TEST_F(ConsoleSessionTest, SignOutEndsTheSession) {
  const Person kim = AddPerson(acme_, "kim@acme.example", true);
  MakeAdmin(acme_, kim);
  const std::string token = SessionOf(acme_, kim);
  Response out = Session("DELETE", "acme", token);
  EXPECT_EQ(out.status, 204) << out.body;
  std::vector<Json> ended = Events(acme_, "user.session.end");
  ASSERT_THAT(ended, SizeIs(1));
  EXPECT_EQ(ended[0]["actor"]["id"], kim.id.value());
  EXPECT_EQ(Session("GET", "acme", token).status, 401);
  EXPECT_EQ(Probe("acme", token).status, 401);
}

TEST_F(ConsoleSessionTest, ApiTokensStillWork) {
  Response r = Call("GET", "/t/{tenant}/api/v1/probe", {{"tenant", "acme"}},
                    std::string("SSWS ") + kAcmeToken);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["actorType"], "ApiToken");
}

TEST_F(ConsoleSessionTest, RefusalsCountAgainstTheRefusalLimit) {
  RateLimiter limiter({.rate_per_second = 1, .burst = 2, .per = absl::Hours(1)}, clock_);
  services_->refused_auth_limiter = &limiter;
  EXPECT_EQ(Probe("acme", "guess-1").status, 401);
  EXPECT_EQ(Probe("acme", "guess-2").status, 401);
  Response limited = Probe("acme", "guess-3");
  EXPECT_EQ(limited.status, 429);
  EXPECT_THAT(Events(acme_, kEventAccessAdminApp), SizeIs(2)) << "beyond the limit, no event";
  services_->refused_auth_limiter = nullptr;
}

TEST_F(ConsoleSessionTest, TheFileRoutesServeTheConfiguredDirectory) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("custos-console-routes-{}", ::getpid());
  std::filesystem::create_directories(dir / "assets");
  std::ofstream(dir / "index.html") << "<!doctype html><title>Custos</title>";
  std::ofstream(dir / "assets" / "app-1.js") << "1";
  config_.console_dir = dir.string();
  routes_ = ConsoleRoutes(*services_, *sign_in_);

  Response bare = Call("GET", "/console", {}, "");
  EXPECT_EQ(bare.status, 301);
  EXPECT_THAT(bare.headers,
              ::testing::Contains(std::pair<std::string, std::string>("Location", "/console/")));
  EXPECT_THAT(bare.headers, ::testing::Contains(std::pair<std::string, std::string>(
                                "Content-Security-Policy", std::string(kConsoleCsp))));
  Response root = Call("GET", "/console/", {}, "");
  EXPECT_EQ(root.status, 200);
  EXPECT_THAT(root.body, HasSubstr("<title>Custos</title>"));
  Response asset = Call("GET", "/console/{path...}", {{"path", "assets/app-1.js"}}, "");
  EXPECT_EQ(asset.status, 200);
  EXPECT_EQ(asset.body, "1");
  EXPECT_EQ(Call("GET", "/console/{path...}", {{"path", "../index.html"}}, "").status, 404);
  std::filesystem::remove_all(dir);
}

TEST_F(ConsoleSessionTest, AnUnknownTenantIs404BeforeAnyAuthentication) {
  EXPECT_EQ(Session("POST", "nope", "x").status, 404);
  EXPECT_EQ(Probe("nope", "x").status, 404);
}

}  // namespace
}  // namespace custos::api::console
