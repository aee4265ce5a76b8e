// The store conformance suite (store/store_test_suite.h) on a real PostgreSQL server: each test
// gets a new database on the server named by CUSTOS_TEST_POSTGRES (scripts/with-postgres.sh
// starts one; `make test` runs these under it). Without the variable the tests are skipped.

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fmt/format.h"

#include "gtest/gtest.h"
#include "store/postgres/pg.h"
#include "store/postgres/postgres_store.h"
#include "store/postgres/temp_database.h"
#include "store/store_test_suite.h"

namespace custos::store {
namespace {

std::unique_ptr<Store> OpenForSuite(int connections) {
  const std::optional<std::string> url = postgres::TestServerUrl();
  if (!url.has_value()) {
    ADD_FAILURE() << "CUSTOS_TEST_POSTGRES is not set";
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = postgres::OpenTempPostgresStore(*url, connections);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return std::move(store).value();
}

std::string NoServer() {
  return postgres::TestServerUrl().has_value()
             ? ""
             : "CUSTOS_TEST_POSTGRES is not set: no PostgreSQL server to test on "
               "(scripts/with-postgres.sh starts one)";
}

// The default pool, and the smallest, so that transactions queue for a connection.
using conformance::StoreConformanceTest;
INSTANTIATE_TEST_SUITE_P(
    Postgres, StoreConformanceTest,
    ::testing::Values(
        conformance::StoreTestParam{.name = "postgres",
                                    .factory = [](const std::string&) { return OpenForSuite(8); },
                                    .unavailable = NoServer},
        conformance::StoreTestParam{.name = "postgres_two_connections",
                                    .factory = [](const std::string&) { return OpenForSuite(2); },
                                    .unavailable = NoServer}),
    conformance::StoreTestParamName);

// Two processes on one database, as two custos serve nodes: two stores opened on it.
class PostgresLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> url = postgres::TestServerUrl();
    if (!url.has_value()) GTEST_SKIP() << NoServer();
    admin_url_ = *url;
    absl::StatusOr<std::unique_ptr<postgres::TempDatabase>> database =
        postgres::TempDatabase::Create(admin_url_, "lease");
    ASSERT_TRUE(database.ok()) << database.status();
    database_ = *std::move(database);
    for (auto* store : {&first_, &second_}) {
      absl::StatusOr<std::unique_ptr<Store>> opened =
          OpenPostgresStore({.conninfo = database_->url(), .connections = 2});
      ASSERT_TRUE(opened.ok()) << opened.status();
      *store = *std::move(opened);
    }
  }
  void TearDown() override {
    first_.reset();
    second_.reset();
    database_.reset();
  }

  // Runs `sql` on a session of its own on the test database; the first column of its first row.
  std::string Query(const std::string& sql) {
    absl::StatusOr<std::unique_ptr<postgres::Connection>> conn =
        postgres::Connection::Open(database_->url());
    EXPECT_TRUE(conn.ok()) << conn.status();
    if (!conn.ok()) return "";
    absl::StatusOr<postgres::Statement> stmt = (*conn)->Prepare(sql, "test query");
    EXPECT_TRUE(stmt.ok()) << stmt.status();
    if (!stmt.ok()) return "";
    absl::StatusOr<bool> row = stmt->Step();
    EXPECT_TRUE(row.ok()) << row.status();
    return row.ok() && *row ? stmt->Text(0) : "";
  }

  std::string admin_url_;
  std::unique_ptr<postgres::TempDatabase> database_;
  std::unique_ptr<Store> first_;
  std::unique_ptr<Store> second_;
};

TEST_F(PostgresLeaseTest, OneHolderAcrossProcessesUntilItIsDestroyed) {
  absl::StatusOr<std::unique_ptr<LeaderLease>> lease = first_->TryLead("log-sequencer");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_NE(*lease, nullptr);
  absl::StatusOr<std::unique_ptr<LeaderLease>> refused = second_->TryLead("log-sequencer");
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(*refused, nullptr) << "another process holds it";
  EXPECT_TRUE((*lease)->Held());
  // A session lock of a session of its own, not of a pooled connection.
  EXPECT_EQ(Query("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                  "WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted AND "
                  "a.datname = current_database() AND "
                  "a.application_name = 'custos leader lease'"),
            "1");

  lease->reset();
  absl::StatusOr<std::unique_ptr<LeaderLease>> taken = second_->TryLead("log-sequencer");
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_NE(*taken, nullptr) << "a destroyed lease is free at once";
  EXPECT_TRUE((*taken)->Held());
}

TEST_F(PostgresLeaseTest, ALeaseWhoseSessionEndsIsLostAndFree) {
  absl::StatusOr<std::unique_ptr<LeaderLease>> lease = first_->TryLead("log-sequencer");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_NE(*lease, nullptr);
  // The session ends as when the server notices its client vanished (or an admin kills it).
  EXPECT_EQ(Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND "
                  "application_name = 'custos leader lease'"),
            "1");
  absl::StatusOr<std::unique_ptr<LeaderLease>> taken;
  for (int i = 0; i < 100; ++i) {  // the backend exits just after the call answers
    taken = second_->TryLead("log-sequencer");
    ASSERT_TRUE(taken.ok()) << taken.status();
    if (*taken != nullptr) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(*taken, nullptr) << "the lock died with the session";
  EXPECT_FALSE((*lease)->Held());
  EXPECT_FALSE((*lease)->Held()) << "once lost, always lost";
  EXPECT_TRUE((*taken)->Held());
}

TEST_F(PostgresLeaseTest, AFollowersSessionThatBrokeIsReplaced) {
  absl::StatusOr<std::unique_ptr<LeaderLease>> lease = first_->TryLead("log-sequencer");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_NE(*lease, nullptr);
  absl::StatusOr<std::unique_ptr<LeaderLease>> refused = second_->TryLead("log-sequencer");
  ASSERT_TRUE(refused.ok()) << refused.status();
  ASSERT_EQ(*refused, nullptr);
  // The follower's idle session (kept for its next try) ends, as in a server restart.
  EXPECT_EQ(Query("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND "
                  "application_name = 'custos leader lease' AND pid NOT IN "
                  "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"),
            "1");
  lease->reset();
  absl::StatusOr<std::unique_ptr<LeaderLease>> taken;
  for (int i = 0; i < 100; ++i) {  // the first lease's backend exits just after it is closed
    taken = second_->TryLead("log-sequencer");
    ASSERT_TRUE(taken.ok()) << taken.status();
    if (*taken != nullptr) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_NE(*taken, nullptr);
  EXPECT_TRUE((*taken)->Held());
}

// Every session the store opens, pooled or not, probes its peer on both ends, and the server
// ends one that idles inside a transaction for 10 s (see store/postgres/pg.h).
TEST_F(PostgresLeaseTest, SessionsNoticeAVanishedPeerWithinSeconds) {
  absl::StatusOr<std::unique_ptr<postgres::Connection>> conn =
      postgres::Connection::Open(database_->url());
  ASSERT_TRUE(conn.ok()) << conn.status();
  auto setting = [&](const char* name) -> std::string {
    absl::StatusOr<postgres::Statement> stmt =
        (*conn)->Prepare(fmt::format("SELECT current_setting('{}')", name), "reading a setting");
    EXPECT_TRUE(stmt.ok()) << stmt.status();
    if (!stmt.ok()) return "";
    absl::StatusOr<bool> row = stmt->Step();
    return row.ok() && *row ? stmt->Text(0) : "";
  };
  EXPECT_EQ(setting("idle_in_transaction_session_timeout"), "10s");
  EXPECT_EQ(setting("application_name"), "custos");
  // The server applies its keepalive settings to TCP connections only.
  const char* host = PQhost((*conn)->raw());
  if (host != nullptr && host[0] != '/' && host[0] != '\0') {
    EXPECT_EQ(setting("tcp_keepalives_idle"), "5");
    EXPECT_EQ(setting("tcp_keepalives_interval"), "2");
    EXPECT_EQ(setting("tcp_keepalives_count"), "3");
    const std::string user_timeout = setting("tcp_user_timeout");  // shown in ms, or "10s"
    EXPECT_TRUE(user_timeout == "10000" || user_timeout == "10s") << user_timeout;
  }
  std::map<std::string, std::string> client;
  PQconninfoOption* options = PQconninfo((*conn)->raw());
  ASSERT_NE(options, nullptr);
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) client[o->keyword] = o->val;
  }
  PQconninfoFree(options);
  EXPECT_EQ(client["keepalives"], "1");
  EXPECT_EQ(client["keepalives_idle"], "5");
  EXPECT_EQ(client["keepalives_interval"], "2");
  EXPECT_EQ(client["keepalives_count"], "3");
  EXPECT_EQ(client["tcp_user_timeout"], "10000");
}

// A node stuck in the middle of a write (a stalled process) held the store's write lock, and so
// every node's writes, for a minute; the server now ends its session after 10 s.
TEST_F(PostgresLeaseTest, AWriterStuckInsideItsTransactionLetsTheOthersWriteWithinSeconds) {
  std::atomic<bool> inside{false};
  absl::Status stuck_result;
  std::thread stuck([&] {
    stuck_result = first_->Write([&](Transaction&) {
      inside = true;
      absl::SleepFor(absl::Seconds(15));
      return absl::OkStatus();
    });
  });
  while (!inside.load()) absl::SleepFor(absl::Milliseconds(5));
  const absl::Time start = absl::Now();
  const absl::Status other = second_->Write([](Transaction&) { return absl::OkStatus(); });
  const absl::Duration waited = absl::Now() - start;
  stuck.join();
  EXPECT_TRUE(other.ok()) << other << " after " << waited;
  EXPECT_LT(waited, absl::Seconds(14)) << "the other node waited for the stuck one";
  EXPECT_FALSE(stuck_result.ok()) << "the stuck writer's session was ended: nothing commits";
}

}  // namespace
}  // namespace custos::store
