// Integration tests: the real custos binary, a temporary data directory, real HTTP on loopback.
// Each test runs on SQLite, and again (as postgres.ServerTest.*) on a PostgreSQL database of its
// own (TestStore, CMakeLists.txt).

#include <unistd.h>

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "custos_process.h"

namespace custos::testing {
namespace {

using Json = nlohmann::json;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = ::testing::TempDir() + "/custos_it_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(data_dir_);
    if (TestStore::PostgresRequested() && !store::postgres::TestServerUrl()) {
      GTEST_SKIP() << "no PostgreSQL server: CUSTOS_TEST_POSTGRES is unset (make pg-unit sets it)";
    }
    absl::StatusOr<std::unique_ptr<TestStore>> store = TestStore::Open(data_dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    CommandResult tenant = Custos({"admin", "create-tenant", "acme", "--data-dir", data_dir_});
    ASSERT_EQ(tenant.exit_code, 0) << tenant.err;
    CommandResult token =
        Custos({"admin", "create-api-token", "--tenant", "acme", "--data-dir", data_dir_});
    ASSERT_EQ(token.exit_code, 0) << token.err;
    token_ = token.out.substr(0, token.out.find('\n'));
  }
  // The servers of a test are gone by now; the store's database (if any) goes with the fixture.
  void TearDown() override { std::filesystem::remove_all(data_dir_); }

  // `custos ARGS...` on this test's store. Every command and server of a test goes through
  // Custos or Serve, which add the store's arguments.
  CommandResult Custos(const std::vector<std::string>& args) const {
    return RunCustos(store_->With(args));
  }
  ServerProcess Serve(const std::vector<std::string>& extra = {}) const {
    return ServerProcess(data_dir_, store_->With(extra));
  }

  std::vector<std::string> Auth() const { return {"Authorization: SSWS " + token_}; }

  std::vector<std::string> FastArgon() const {
    return {"--set", "password.argon2_memory_kib=1024", "--set", "password.argon2_iterations=1"};
  }

  std::string data_dir_;
  std::unique_ptr<TestStore> store_;
  std::string token_;
};

TEST_F(ServerTest, AdminCommandsPrintTheTokenOnceAndStoreOnlyItsHash) {
  EXPECT_EQ(token_.rfind("cst_", 0), 0u);
  EXPECT_GE(token_.size(), 40u);
  // The store the commands were given, and no other: on PostgreSQL no SQLite file appears.
  std::string db = data_dir_ + "/custos.db";
  if (store_->postgres()) {
    EXPECT_TRUE(std::filesystem::is_directory(db)) << "a SQLite store was made in " << data_dir_;
  } else {
    EXPECT_TRUE(std::filesystem::is_regular_file(db));
  }
  absl::StatusOr<std::vector<std::vector<std::string>>> tokens = store_->Rows(
      "SELECT t.name, a.token_hash FROM api_tokens a JOIN tenants t ON t.id = a.tenant_id");
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0][0], "acme");
  EXPECT_FALSE((*tokens)[0][1].empty());
  EXPECT_EQ((*tokens)[0][1].find(token_), std::string::npos);
  CommandResult dup = Custos({"admin", "create-tenant", "acme", "--data-dir", data_dir_});
  EXPECT_NE(dup.exit_code, 0);
  EXPECT_NE(dup.err.find("already exists"), std::string::npos) << dup.err;
  CommandResult bad = Custos({"admin", "create-tenant", "Not A Name", "--data-dir", data_dir_});
  EXPECT_NE(bad.exit_code, 0);
}

TEST_F(ServerTest, HealthReadinessAndMetrics) {
  ServerProcess server = Serve();
  ASSERT_TRUE(server.started()) << server.Stderr();
  EXPECT_EQ(Http("GET", server.base_url() + "/healthz").status, 200);
  EXPECT_EQ(Http("GET", server.base_url() + "/readyz").status, 200);
  Http("GET", server.base_url() + "/t/acme/api/v1/users", "", Auth());
  HttpResult metrics = Http("GET", server.base_url() + "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("custos_http_requests_total"), std::string::npos);
  EXPECT_NE(metrics.body.find("/t/{tenant}/api/v1/users"), std::string::npos);
  EXPECT_NE(metrics.body.find("custos_store_transaction_seconds"), std::string::npos);
  EXPECT_EQ(server.Stop(SIGTERM), 0);
}

TEST_F(ServerTest, UsersSurviveARestartAndAuthIsRequired) {
  std::string id;
  {
    ServerProcess server = Serve(FastArgon());
    ASSERT_TRUE(server.started()) << server.Stderr();
    std::string url = server.base_url() + "/t/acme/api/v1/users";
    EXPECT_EQ(Http("GET", url).status, 401);
    EXPECT_EQ(Http("GET", url, "", {"Authorization: SSWS cst_wrong"}).status, 401);
    Json user = {{"profile",
                  {{"login", "ada@acme.test"},
                   {"email", "ada@acme.test"},
                   {"firstName", "Ada"},
                   {"lastName", "Lovelace"}}},
                 {"credentials", {{"password", {{"value", "tiny-bright-lantern"}}}}}};
    HttpResult created = Http("POST", url, user.dump(), Auth());
    ASSERT_EQ(created.status, 200) << created.body;
    id = Json::parse(created.body)["id"];
    EXPECT_EQ(Json::parse(created.body)["status"], "ACTIVE");
    EXPECT_EQ(created.body.find("tiny-bright-lantern"), std::string::npos);
    EXPECT_EQ(server.Stop(SIGTERM), 0);
    EXPECT_EQ(server.Stderr().find("tiny-bright-lantern"), std::string::npos);
    EXPECT_EQ(server.Stderr().find(token_), std::string::npos);
  }
  ServerProcess again = Serve(FastArgon());
  ASSERT_TRUE(again.started()) << again.Stderr();
  HttpResult got = Http("GET", again.base_url() + "/t/acme/api/v1/users/" + id, "", Auth());
  EXPECT_EQ(got.status, 200);
  HttpResult signin = Http("POST", again.base_url() + "/t/acme/api/v1/authn",
                           R"({"username":"ada@acme.test","password":"tiny-bright-lantern"})");
  EXPECT_EQ(signin.status, 200) << signin.body;
  EXPECT_EQ(Json::parse(signin.body)["status"], "SUCCESS");
}

TEST_F(ServerTest, ConfigurationErrorsStopTheStartWithAClearMessage) {
  CommandResult r =
      Custos({"serve", "--data-dir", data_dir_, "--set", "authn.lockout_threshold=500"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("authn.lockout_threshold"), std::string::npos) << r.err;
  r = Custos({"serve", "--data-dir", data_dir_, "--set", "server.nope=1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("unknown setting"), std::string::npos) << r.err;
}

TEST_F(ServerTest, GracefulShutdownLetsConcurrentRequestsFinish) {
  ServerProcess server = Serve();
  ASSERT_TRUE(server.started()) << server.Stderr();
  // A request that is surely in flight when SIGTERM arrives, even on a loaded machine: after
  // three failures on its username its answer is held back for a second (progressive delay).
  const std::string failing = R"({"username":"nobody@acme.test","password":"tiny-bright-lantern"})";
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Http("POST", server.base_url() + "/t/acme/api/v1/authn", failing).status, 401);
  }
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, error_answers{0};
  for (int i = 0; i < 4; ++i) {
    // Until the server is gone, so that requests are in flight when SIGTERM arrives.
    clients.emplace_back([&] {
      for (int j = 0; j < 100000; ++j) {
        HttpResult r = Http("GET", server.base_url() + "/t/acme/api/v1/logs", "", Auth());
        // No answer at all is expected once the listener has closed; an error answer is not.
        if (r.status == 200) {
          ok++;
        } else if (r.status != 0) {
          error_answers++;
        } else {
          return;
        }
      }
    });
  }
  HttpResult slow;
  std::thread signer(
      [&] { slow = Http("POST", server.base_url() + "/t/acme/api/v1/authn", failing); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int code = server.Stop(SIGTERM);
  signer.join();
  for (auto& t : clients) t.join();
  EXPECT_EQ(code, 0);
  EXPECT_EQ(slow.status, 401) << "the in-flight sign-in was cut off (curl code " << slow.curl_code
                              << ")";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(error_answers.load(), 0);
}

}  // namespace
}  // namespace custos::testing
