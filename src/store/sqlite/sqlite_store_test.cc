#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite/migrations.h"
#include "store/store_test_suite.h"

namespace custos::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<Store> OpenForSuite(const std::string& dir, bool synchronous_full,
                                    int read_connections) {
  absl::StatusOr<std::unique_ptr<Store>> store =
      OpenSqliteStore({.path = dir + "/custos.db",
                       .synchronous_full = synchronous_full,
                       .read_connections = read_connections});
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return std::move(store).value();
}

// The default configuration, and the smallest pool with the faster sync mode, so that readers
// queue for one connection.
using conformance::StoreConformanceTest;
INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformanceTest,
                         ::testing::Values(conformance::StoreTestParam{"sqlite",
                                                                       [](const std::string& dir) {
                                                                         return OpenForSuite(
                                                                             dir, true, 4);
                                                                       }},
                                           conformance::StoreTestParam{"sqlite_one_reader",
                                                                       [](const std::string& dir) {
                                                                         return OpenForSuite(
                                                                             dir, false, 1);
                                                                       }}),
                         conformance::StoreTestParamName);

const absl::Time kT0 = absl::FromUnixMicros(1767225600000000);

// A raw connection, for looking at the file the way another program would.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "opening " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  sqlite3* get() { return db_; }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (error != nullptr ? error : "?");
    }
    sqlite3_free(error);
  }

  // Each row's columns joined with '|'.
  std::vector<std::string> Query(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return rows;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (i > 0) row += "|";
        const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
        row += text != nullptr ? text : "NULL";
      }
      rows.push_back(row);
    }
    sqlite3_finalize(stmt);
    return rows;
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = (std::filesystem::path(::testing::TempDir()) /
            fmt::format("custos_sqlite_{}_{}_{}", ::getpid(), counter++,
                        ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/custos.db";
  }
  void TearDown() override {
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
  }

  std::unique_ptr<Store> Open() {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path_});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  std::string dir_;
  std::string path_;
};

TenantRecord Acme() {
  return TenantRecord{.id = TenantId("00oACME"), .name = "acme", .created = kT0};
}

UserRecord User(std::string id, std::string profile = "{}") {
  return UserRecord{.id = UserId(id),
                    .tenant_id = TenantId("00oACME"),
                    .status = std::string(kUserActive),
                    .login = id + "@example.com",
                    .profile_json = std::move(profile),
                    .created = kT0,
                    .status_changed = kT0,
                    .last_updated = kT0};
}

TEST_F(SqliteStoreTest, MigrationsAreAppliedOnceAndRecorded) {
  ASSERT_GE(sqlite::LatestSchemaVersion(), 1);
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  store->Close();

  std::vector<std::string> first;
  {
    RawDb db(path_);
    first = db.Query("SELECT version, applied_at FROM schema_migrations ORDER BY version");
    ASSERT_EQ(first.size(), static_cast<size_t>(sqlite::LatestSchemaVersion()));
    EXPECT_THAT(first.front(), ::testing::MatchesRegex("1\\|20[0-9-]+T[0-9:.]+Z"));
    EXPECT_THAT(db.Query("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
                         "('tenants', 'users', 'groups', 'events') ORDER BY name"),
                ElementsAre("events", "groups", "tenants", "users"));
  }

  store = Open();
  ASSERT_NE(store, nullptr);
  store->Close();
  RawDb db(path_);
  EXPECT_EQ(db.Query("SELECT version, applied_at FROM schema_migrations ORDER BY version"), first)
      << "reopening applies nothing again";
}

TEST_F(SqliteStoreTest, OnlyPendingStepsRunAndAFailedStepIsRolledBack) {
  RawDb db(path_);
  // Step 1 has no IF NOT EXISTS: running it twice would fail.
  const sqlite::Migration v1{1, "one", "CREATE TABLE a (x INTEGER)"};
  const sqlite::Migration v2{2, "two", "CREATE TABLE b (x INTEGER); INSERT INTO b VALUES (7)"};
  const sqlite::Migration bad{3, "three",
                              "CREATE TABLE c (x INTEGER); INSERT INTO nope VALUES (1)"};

  const sqlite::Migration only_v1[] = {v1};
  ASSERT_TRUE(sqlite::ApplyMigrations(db.get(), only_v1).ok());
  const sqlite::Migration up_to_v2[] = {v1, v2};
  const absl::Status second = sqlite::ApplyMigrations(db.get(), up_to_v2);
  ASSERT_TRUE(second.ok()) << second;
  EXPECT_THAT(db.Query("SELECT x FROM b"), ElementsAre("7"));

  const sqlite::Migration up_to_bad[] = {v1, v2, bad};
  const absl::Status failed = sqlite::ApplyMigrations(db.get(), up_to_bad);
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(failed.message()), HasSubstr("migration 3"));
  EXPECT_THAT(db.Query("SELECT version FROM schema_migrations ORDER BY version"),
              ElementsAre("1", "2"));
  EXPECT_TRUE(db.Query("SELECT name FROM sqlite_master WHERE name = 'c'").empty())
      << "the failed step left nothing behind";

  const sqlite::Migration gap[] = {v1, bad};
  EXPECT_EQ(sqlite::ApplyMigrations(db.get(), gap).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  store->Close();
  {
    RawDb db(path_);
    db.Exec(fmt::format("INSERT INTO schema_migrations (version, applied_at) VALUES ({}, 'x')",
                        sqlite::LatestSchemaVersion() + 1));
  }
  absl::StatusOr<std::unique_ptr<Store>> refused = OpenSqliteStore({.path = path_});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(fmt::format("version {} is newer", sqlite::LatestSchemaVersion() + 1)));
}

TEST_F(SqliteStoreTest, ReopenKeepsDataAndSeqKeepsIncreasing) {
  int64_t first_seq = 0;
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store
                    ->Write([&](Transaction& tx) -> absl::Status {
                      RETURN_IF_ERROR(tx.Tenants().Insert(Acme()));
                      RETURN_IF_ERROR(tx.Users().Insert(User("00uADA")));
                      ASSIGN_OR_RETURN(first_seq,
                                       tx.Events().Append({.tenant_id = TenantId("00oACME"),
                                                           .uuid = "e1",
                                                           .published = kT0,
                                                           .event_type = "user.lifecycle.create",
                                                           .json = "{}"}));
                      return absl::OkStatus();
                    })
                    .ok());
    store->Close();
  }
  EXPECT_FALSE(std::filesystem::exists(path_ + "-wal") &&
               std::filesystem::file_size(path_ + "-wal") > 0)
      << "Close checkpoints the WAL into the database file";

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  int64_t second_seq = 0;
  ASSERT_TRUE(store
                  ->Write([&](Transaction& tx) -> absl::Status {
                    ASSIGN_OR_RETURN(second_seq,
                                     tx.Events().Append({.tenant_id = TenantId("00oACME"),
                                                         .uuid = "e2",
                                                         .published = kT0,
                                                         .event_type = "user.session.start",
                                                         .json = "{}"}));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_GT(second_seq, first_seq);
  const absl::Status read = store->Read([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(UserRecord user,
                     tx.Users().GetByLogin(TenantId("00oACME"), "00uada@EXAMPLE.com"));
    EXPECT_EQ(user.id, UserId("00uADA"));
    ASSIGN_OR_RETURN(TenantRecord tenant, tx.Tenants().GetByName("acme"));
    EXPECT_EQ(tenant.created, kT0);
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
}

// A database written by a binary that knew only schema version 1 keeps every row when version 2
// makes room for the verifiable log, and its events are the first ones the sequencer takes.
TEST_F(SqliteStoreTest, VersionOneDatabaseMigratesKeepingEveryRow) {
  {
    RawDb db(path_);
    ASSERT_TRUE(sqlite::ApplyMigrations(db.get(), sqlite::SchemaMigrations().first(1)).ok());
    db.Exec("PRAGMA foreign_keys=ON");
    db.Exec(R"sql(
      INSERT INTO tenants (id, name, created) VALUES ('00oACME', 'acme', 1767225600000000);
      INSERT INTO api_tokens (tenant_id, id, name, token_hash, created, last_used)
        VALUES ('00oACME', '00TOLD', 'terraform', 'aa11', 1767225600000001, 1767225600000002);
      INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES
        ('00oACME', 'e1', 1767225600000010, 'user.lifecycle.create', '{"n":1}'),
        ('00oACME', 'e2', 1767225600000020, 'user.session.start', '{"n":2}'),
        ('00oACME', 'e3', 1767225600000030, 'user.session.end', '{"n":3}'),
        ('00oACME', 'e4', 1767225600000040, 'user.session.end', '{"n":4}');
      DELETE FROM events WHERE uuid = 'e4';
    )sql");
    ASSERT_THAT(db.Query("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
                ElementsAre("4"));
  }

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  const absl::Status read = store->Read([](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(TenantRecord tenant, tx.Tenants().Get(TenantId("00oACME")));
    EXPECT_EQ(tenant.name, "acme");
    EXPECT_EQ(tenant.created, kT0);
    EXPECT_FALSE(tenant.log_public);
    ASSIGN_OR_RETURN(ApiTokenRecord token, tx.ApiTokens().FindByHash(TenantId("00oACME"), "aa11"));
    EXPECT_EQ(token.id, ApiTokenId("00TOLD"));
    EXPECT_EQ(token.name, "terraform");
    EXPECT_EQ(token.last_used, kT0 + absl::Microseconds(2));
    EXPECT_EQ(token.scope, kScopeAdmin) << "tokens from before scopes keep full rights";

    ASSIGN_OR_RETURN(std::vector<EventRecord> events,
                     tx.Events().Query(TenantId("00oACME"), EventQuery{}));
    ASSIGN_OR_RETURN(std::vector<EventRecord> waiting, tx.Logs().Unsequenced(100));
    for (const std::vector<EventRecord>* list : {&events, &waiting}) {
      EXPECT_EQ(list->size(), 3u);
      for (size_t i = 0; i < list->size(); ++i) {
        const EventRecord& e = (*list)[i];
        EXPECT_EQ(e.seq, static_cast<int64_t>(i) + 1);
        EXPECT_EQ(e.tenant_id, TenantId("00oACME"));
        EXPECT_EQ(e.uuid, fmt::format("e{}", i + 1));
        EXPECT_EQ(e.published, kT0 + absl::Microseconds(10 * (i + 1)));
        EXPECT_EQ(e.json, fmt::format(R"({{"n":{}}})", i + 1));
        EXPECT_FALSE(e.log_index.has_value());
      }
    }
    EXPECT_EQ(events[1].event_type, "user.session.start");
    return absl::OkStatus();
  });
  ASSERT_TRUE(read.ok()) << read;

  int64_t next_seq = 0;
  absl::Status refused;
  ASSERT_TRUE(store
                  ->Write([&](Transaction& tx) -> absl::Status {
                    ASSIGN_OR_RETURN(next_seq,
                                     tx.Events().Append({.tenant_id = TenantId("00oACME"),
                                                         .uuid = "e5",
                                                         .published = kT0,
                                                         .event_type = "user.session.start",
                                                         .json = "{}"}));
                    RETURN_IF_ERROR(tx.Events()
                                        .Append({.tenant_id = TenantId(std::string(kProviderLogId)),
                                                 .uuid = "p1",
                                                 .published = kT0,
                                                 .event_type = "support.access.request",
                                                 .json = "{}"})
                                        .status());
                    refused = tx.Events()
                                  .Append({.tenant_id = TenantId("00oNOPE"),
                                           .uuid = "x1",
                                           .published = kT0,
                                           .event_type = "user.session.start",
                                           .json = "{}"})
                                  .status();
                    return tx.Logs().AddEntries({{.seq = 1, .log_id = "00oACME", .index = 0},
                                                 {.seq = 2, .log_id = "00oACME", .index = 1}});
                  })
                  .ok());
  EXPECT_EQ(next_seq, 5) << "seq continues after the highest ever given, even a deleted one";
  EXPECT_EQ(refused.code(), absl::StatusCode::kNotFound)
      << "the events table lost its foreign key; the store still refuses unknown tenants";
  absl::StatusOr<std::vector<EventRecord>> waiting =
      ReadResult(*store, [](Transaction& tx) { return tx.Logs().Unsequenced(100); });
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  std::vector<std::string> uuids;
  for (const EventRecord& e : *waiting) uuids.push_back(fmt::format("{}:{}", e.seq, e.uuid));
  EXPECT_THAT(uuids, ElementsAre("3:e3", "5:e5", "6:p1"));
  store->Close();

  RawDb db(path_);
  EXPECT_THAT(db.Query("SELECT version FROM schema_migrations ORDER BY version"),
              ElementsAre("1", "2", "3", "4", "5", "6", "7"));
  EXPECT_THAT(db.Query("SELECT name, seq FROM sqlite_sequence ORDER BY name"),
              ElementsAre("events|6"));
  EXPECT_THAT(db.Query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                       "'events' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name"),
              ElementsAre("events_by_tenant_published", "events_by_tenant_seq"));
  EXPECT_THAT(db.Query("SELECT name FROM sqlite_master WHERE name LIKE '%events_new%'"),
              ::testing::IsEmpty());
  EXPECT_THAT(db.Query("PRAGMA foreign_key_check"), ::testing::IsEmpty());
  EXPECT_THAT(db.Query("PRAGMA integrity_check"), ElementsAre("ok"));
}

// Tenants of a database from before the support plane (schema version 3) keep every field and
// need the tenant's approval for support access, and the support plane works on that database.
TEST_F(SqliteStoreTest, VersionThreeDatabaseKeepsItsTenantsUnderApprovalRequired) {
  {
    RawDb db(path_);
    ASSERT_TRUE(sqlite::ApplyMigrations(db.get(), sqlite::SchemaMigrations().first(3)).ok());
    db.Exec(R"sql(
      INSERT INTO tenants (id, name, created, log_public) VALUES
        ('00oACME', 'acme', 1767225600000000, 1),
        ('00oGLOBEX', 'globex', 1767225600000001, 0);
    )sql");
  }

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::vector<TenantRecord>> tenants =
      ReadResult(*store, [](Transaction& tx) { return tx.Tenants().List(); });
  ASSERT_TRUE(tenants.ok()) << tenants.status();
  ASSERT_EQ(tenants->size(), 2u);
  EXPECT_EQ((*tenants)[0].name, "acme");
  EXPECT_EQ((*tenants)[0].created, kT0);
  EXPECT_TRUE((*tenants)[0].log_public);
  EXPECT_EQ((*tenants)[1].name, "globex");
  EXPECT_FALSE((*tenants)[1].log_public);
  for (const TenantRecord& tenant : *tenants) {
    EXPECT_EQ(tenant.support_policy, kSupportPolicyApprovalRequired) << tenant.name;
  }

  const absl::Status wrote = store->Write([&](Transaction& tx) -> absl::Status {
    TenantRecord blocked = (*tenants)[1];
    blocked.support_policy = std::string(kSupportPolicyBlocked);
    RETURN_IF_ERROR(tx.Tenants().Update(blocked));
    RETURN_IF_ERROR(tx.Support().InsertVendor({.id = "vndACME",
                                               .name = "Acme Support Ltd",
                                               .employing_entity = "Acme Support Ltd",
                                               .country = "GB",
                                               .status = std::string(kStatusActive),
                                               .created = kT0,
                                               .status_changed = kT0}));
    RETURN_IF_ERROR(tx.Support().InsertOperator({.user_id = UserId("00uOP1"),
                                                 .vendor_id = "vndACME",
                                                 .status = std::string(kStatusActive),
                                                 .created = kT0,
                                                 .status_changed = kT0}));
    return tx.Support().InsertCase({.id = "casCASE1",
                                    .tenant_id = TenantId("00oACME"),
                                    .subject = "SSO fails",
                                    .opened_by = std::string(kOpenedByTenant),
                                    .opened_by_id = "00TTOKEN1",
                                    .status = std::string(kCaseOpen),
                                    .created = kT0});
  });
  ASSERT_TRUE(wrote.ok()) << wrote;
  store->Close();

  RawDb db(path_);
  EXPECT_THAT(db.Query("SELECT version FROM schema_migrations ORDER BY version"),
              ElementsAre("1", "2", "3", "4", "5", "6", "7"));
  EXPECT_THAT(db.Query("SELECT name, log_public, support_policy FROM tenants ORDER BY id"),
              ElementsAre("acme|1|approval_required", "globex|0|blocked"));
  EXPECT_THAT(db.Query("PRAGMA foreign_key_check"), ::testing::IsEmpty());
  EXPECT_THAT(db.Query("PRAGMA integrity_check"), ElementsAre("ok"));
}

// A database from before OpenID Connect (schema version 4) keeps its rows and gains the OIDC
// tables, with times in microseconds, NULL for an unset optional time, their indexes and their
// tenant references.
TEST_F(SqliteStoreTest, VersionFourDatabaseGainsTheOidcTables) {
  {
    RawDb db(path_);
    ASSERT_TRUE(sqlite::ApplyMigrations(db.get(), sqlite::SchemaMigrations().first(4)).ok());
    db.Exec(R"sql(
      INSERT INTO tenants (id, name, created, log_public, support_policy)
        VALUES ('00oACME', 'acme', 1767225600000000, 1, 'blocked');
      INSERT INTO events (tenant_id, uuid, published, event_type, json)
        VALUES ('00oACME', 'e1', 1767225600000010, 'user.lifecycle.create', '{}');
    )sql");
  }

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  const TenantId acme("00oACME");
  absl::Status unknown_tenant;
  const absl::Status wrote = store->Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(TenantRecord tenant, tx.Tenants().Get(acme));
    EXPECT_TRUE(tenant.log_public);
    EXPECT_EQ(tenant.support_policy, kSupportPolicyBlocked);
    RETURN_IF_ERROR(tx.Oidc().InsertKey({.kid = "kid-1",
                                         .tenant_id = acme,
                                         .alg = "ES256",
                                         .public_jwk = "{}",
                                         .sealed_private = std::string("\x00\xff", 2),
                                         .created = kT0,
                                         .activates = kT0 + absl::Microseconds(1)}));
    const AppRecord app{.id = "0oaAPP1",
                        .tenant_id = acme,
                        .label = "Wiki",
                        .status = std::string(kAppActive),
                        .application_type = "web",
                        .token_endpoint_auth_method = "client_secret_basic",
                        .client_secret_hash = "aa11",
                        .settings_json = "{}",
                        .created = kT0,
                        .last_updated = kT0 + absl::Microseconds(1)};
    RETURN_IF_ERROR(tx.Oidc().InsertApp(app));
    AppRecord elsewhere = app;
    elsewhere.tenant_id = TenantId("00oNOPE");
    unknown_tenant = tx.Oidc().InsertApp(elsewhere);
    RETURN_IF_ERROR(tx.Oidc().InsertRefreshToken({.id = "rftTOKEN1",
                                                  .token_hash = "bb22",
                                                  .tenant_id = acme,
                                                  .client_id = "0oaAPP1",
                                                  .user_id = UserId("00uADA"),
                                                  .family_id = "rftTOKEN1",
                                                  .session_id = SessionId("102S1"),
                                                  .auth_time = kT0,
                                                  .created = kT0,
                                                  .expires = kT0 + absl::Hours(1),
                                                  .revoked = kT0 + absl::Microseconds(5)}));
    return tx.Oidc().InsertRevoked({.tenant_id = acme,
                                    .jti = "family:rftTOKEN1",
                                    .revoked = kT0,
                                    .expires = kT0 + absl::Hours(1)});
  });
  ASSERT_TRUE(wrote.ok()) << wrote;
  EXPECT_EQ(unknown_tenant.code(), absl::StatusCode::kNotFound) << unknown_tenant;
  store->Close();

  RawDb db(path_);
  EXPECT_THAT(db.Query("SELECT version FROM schema_migrations ORDER BY version"),
              ElementsAre("1", "2", "3", "4", "5", "6", "7"));
  EXPECT_THAT(db.Query("SELECT uuid FROM events"), ElementsAre("e1"));
  EXPECT_THAT(db.Query("SELECT kid, hex(sealed_private), created, activates, retired, expires "
                       "FROM oidc_keys"),
              ElementsAre("kid-1|00FF|1767225600000000|1767225600000001|NULL|NULL"));
  EXPECT_THAT(db.Query("SELECT id, created, last_updated FROM apps"),
              ElementsAre("0oaAPP1|1767225600000000|1767225600000001"));
  EXPECT_THAT(db.Query("SELECT id, rotated, revoked FROM refresh_tokens"),
              ElementsAre("rftTOKEN1|NULL|1767225600000005"));
  EXPECT_THAT(db.Query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN "
                       "('refresh_tokens', 'revoked_tokens') AND sql IS NOT NULL ORDER BY name"),
              ElementsAre("refresh_tokens_by_family", "refresh_tokens_by_session",
                          "revoked_tokens_by_expiry"));
  for (const char* table :
       {"oidc_keys", "apps", "auth_codes", "refresh_tokens", "revoked_tokens"}) {
    EXPECT_THAT(db.Query(fmt::format(
                    "SELECT \"table\", \"from\" FROM pragma_foreign_key_list('{}')", table)),
                ElementsAre("tenants|tenant_id"))
        << table;
  }
  EXPECT_THAT(db.Query("PRAGMA foreign_key_check"), ::testing::IsEmpty());
  EXPECT_THAT(db.Query("PRAGMA integrity_check"), ElementsAre("ok"));
}

// AddEntries refused halfway (the second of two entries clashes) leaves nothing behind even when
// the caller goes on and commits its transaction.
TEST_F(SqliteStoreTest, RefusedAddEntriesLeavesNothingEvenInACommittedTransaction) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  absl::Status refused;
  ASSERT_TRUE(store
                  ->Write([&](Transaction& tx) -> absl::Status {
                    RETURN_IF_ERROR(tx.Tenants().Insert(Acme()));
                    for (const char* uuid : {"e1", "e2"}) {
                      RETURN_IF_ERROR(tx.Events()
                                          .Append({.tenant_id = TenantId("00oACME"),
                                                   .uuid = uuid,
                                                   .published = kT0,
                                                   .event_type = "user.session.start",
                                                   .json = "{}"})
                                          .status());
                    }
                    refused = tx.Logs().AddEntries({{.seq = 1, .log_id = "00oACME", .index = 0},
                                                    {.seq = 2, .log_id = "00oACME", .index = 0}});
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists) << refused;
  absl::StatusOr<std::vector<EventRecord>> waiting =
      ReadResult(*store, [](Transaction& tx) { return tx.Logs().Unsequenced(100); });
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->size(), 2u) << "the outbox did not move";
  store->Close();
  RawDb db(path_);
  EXPECT_THAT(db.Query("SELECT COUNT(*) FROM log_entries"), ElementsAre("0"));
}

TEST_F(SqliteStoreTest, CreatesMissingDirectoriesAndAnOwnerOnlyFileInWalMode) {
  path_ = dir_ + "/nested/data/custos.db";
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << "group and others get no access";

  RawDb db(path_);
  EXPECT_THAT(db.Query("PRAGMA journal_mode"), ElementsAre("wal"));
  store->Close();
}

TEST_F(SqliteStoreTest, BadOptionsAreRefused) {
  EXPECT_EQ(OpenSqliteStore({.path = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = ":memory:"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenSqliteStore({.path = path_, .read_connections = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A process that dies in the middle of a write transaction, after SQLite has already spilled
// uncommitted pages into the WAL, leaves a database that shows every committed transaction and
// nothing of the one that died.
TEST_F(SqliteStoreTest, ProcessDyingBeforeCommitLeavesNothingHalfWritten) {
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
    store->Close();
  }

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No gtest assertions here: the exit code tells the parent how far the child got.
    // A small page cache, so that the big transaction below spills pages before its commit.
    absl::StatusOr<std::unique_ptr<Store>> store =
        OpenSqliteStore({.path = path_, .writer_cache_mib = 2});
    if (!store.ok()) ::_exit(10);
    if (!(*store)
             ->Write([](Transaction& tx) { return tx.Users().Insert(User("00uCOMMITTED")); })
             .ok()) {
      ::_exit(11);
    }
    (void)(*store)->Write([](Transaction& tx) -> absl::Status {
      // About 8 MB: more than SQLite's page cache, so pages reach the WAL before the commit.
      const std::string profile = fmt::format(R"({{"bio":"{}"}})", std::string(2000, 'x'));
      for (int i = 0; i < 4000; ++i) {
        if (!tx.Users().Insert(User(fmt::format("00uLOST{:05}", i), profile)).ok()) ::_exit(12);
      }
      if (!tx.Events()
               .Append({.tenant_id = TenantId("00oACME"),
                        .uuid = "lost",
                        .published = kT0,
                        .event_type = "user.lifecycle.create",
                        .json = "{}"})
               .ok()) {
        ::_exit(13);
      }
      ::_exit(0);  // dies holding the open transaction
    });
    ::_exit(14);
  }

  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "the child did not reach the point of dying mid-write";
  ASSERT_TRUE(std::filesystem::exists(path_ + "-wal"));
  EXPECT_GT(std::filesystem::file_size(path_ + "-wal"), 4u << 20)
      << "uncommitted pages were in the WAL when the process died";

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  const absl::Status read = store->Read([](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t users, tx.Users().Count(TenantId("00oACME")));
    EXPECT_EQ(users, 1) << "only the committed user";
    EXPECT_TRUE(tx.Users().Get(TenantId("00oACME"), UserId("00uCOMMITTED")).ok());
    ASSIGN_OR_RETURN(std::vector<EventRecord> events,
                     tx.Events().Query(TenantId("00oACME"), EventQuery{}));
    EXPECT_TRUE(events.empty());
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
  EXPECT_TRUE(store->Write([](Transaction& tx) { return tx.Users().Insert(User("00uNEXT")); }).ok())
      << "the database takes writes again";
  store->Close();

  RawDb db(path_);
  EXPECT_THAT(db.Query("PRAGMA integrity_check"), ElementsAre("ok"));
}

// Group commit

using WriteFn = std::function<absl::Status(Transaction&)>;

// What became of Writes that queued up behind a held Write.
struct QueuedWrites {
  std::vector<absl::Status> statuses;
  std::vector<std::string> thrown;       // what each Write threw; empty when it returned
  std::vector<std::thread::id> callers;  // the thread that called Write
  std::vector<std::thread::id> ran_on;   // the thread its callback ran on

  // Every callback ran on one thread: the Writes formed one group.
  bool OneGroup() const {
    return std::all_of(ran_on.begin(), ran_on.end(),
                       [&](std::thread::id id) { return id == ran_on.front(); });
  }
};

// Calls Write with each of `callbacks`, each from its own thread, while another Write holds the
// store, so that they queue up behind it; lets the held Write commit `settle` after every thread
// has started, and waits for them all.
QueuedWrites WriteBehindAHeldWrite(Store& store, const std::vector<WriteFn>& callbacks,
                                   absl::Duration settle) {
  const size_t n = callbacks.size();
  QueuedWrites out;
  out.statuses.resize(n, absl::InternalError("not run"));
  out.thrown.resize(n);
  out.callers.resize(n);
  out.ran_on.resize(n);
  absl::Notification holding;
  absl::Notification release;
  absl::Status held;
  std::jthread holder([&] {
    held = store.Write([&](Transaction&) {
      holding.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(20));
      return absl::OkStatus();
    });
  });
  EXPECT_TRUE(holding.WaitForNotificationWithTimeout(absl::Seconds(20)));
  {
    std::vector<absl::Notification> started(n);
    std::vector<std::jthread> writers;
    for (size_t i = 0; i < n; ++i) {
      writers.emplace_back([&, i] {
        out.callers[i] = std::this_thread::get_id();
        started[i].Notify();
        try {
          out.statuses[i] = store.Write([&](Transaction& tx) {
            out.ran_on[i] = std::this_thread::get_id();
            return callbacks[i](tx);
          });
        } catch (const std::exception& e) {
          out.thrown[i] = e.what();
        }
      });
    }
    for (absl::Notification& s : started) s.WaitForNotificationWithTimeout(absl::Seconds(20));
    absl::SleepFor(settle);
    release.Notify();
  }
  holder.join();
  EXPECT_TRUE(held.ok()) << held;
  return out;
}

// Writes that queue up behind a held Write may not all have arrived when it commits (the
// machine is busy); each attempt waits longer before letting them go.
constexpr int kGroupAttempts = 8;
absl::Duration Settle(int attempt) { return absl::Milliseconds(50) * (attempt + 1); }

EventRecord Event(std::string uuid) {
  return EventRecord{.tenant_id = TenantId("00oACME"),
                     .uuid = std::move(uuid),
                     .published = kT0,
                     .event_type = "app.oauth2.token.grant",
                     .json = "{}"};
}

class CountingObserver final : public StoreObserver {
 public:
  void OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) override {
    absl::MutexLock lock(&mu_);
    if (kind == "write") ++(ok ? writes_ok_ : writes_failed_);
    if (elapsed < absl::ZeroDuration()) ++negative_;
  }
  std::string Counts() const {
    absl::MutexLock lock(&mu_);
    return fmt::format("ok={} failed={} negative={}", writes_ok_, writes_failed_, negative_);
  }

 private:
  mutable absl::Mutex mu_;
  int writes_ok_ ABSL_GUARDED_BY(mu_) = 0;
  int writes_failed_ ABSL_GUARDED_BY(mu_) = 0;
  int negative_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST_F(SqliteStoreTest, ManyConcurrentWritersAllGetTheirRows) {
  constexpr int kThreads = 16;
  constexpr int kWritesPerThread = 50;
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
  std::vector<absl::Status> statuses(kThreads);
  std::atomic<int> ran_elsewhere{0};
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        const std::thread::id caller = std::this_thread::get_id();
        for (int i = 0; i < kWritesPerThread && statuses[t].ok(); ++i) {
          const std::string id = fmt::format("00u{:02}x{:03}", t, i);
          statuses[t] = store->Write([&](Transaction& tx) -> absl::Status {
            if (std::this_thread::get_id() != caller) ++ran_elsewhere;
            RETURN_IF_ERROR(tx.Users().Insert(User(id)));
            return tx.Events().Append(Event(id)).status();
          });
        }
      });
    }
  }
  for (const absl::Status& status : statuses) EXPECT_TRUE(status.ok()) << status;
  EXPECT_GT(ran_elsewhere.load(), 0) << "no Write ever ran in another Write's group";
  const absl::Status read = store->Read([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t users, tx.Users().Count(TenantId("00oACME")));
    EXPECT_EQ(users, kThreads * kWritesPerThread);
    ASSIGN_OR_RETURN(std::vector<EventRecord> events,
                     tx.Events().Query(TenantId("00oACME"), EventQuery{.limit = 10000}));
    EXPECT_EQ(events.size(), static_cast<size_t>(kThreads * kWritesPerThread));
    for (const EventRecord& event : events) {
      EXPECT_TRUE(tx.Users().Get(TenantId("00oACME"), UserId(event.uuid)).ok())
          << "the event and the user of one Write committed together: " << event.uuid;
    }
    return absl::OkStatus();
  });
  EXPECT_TRUE(read.ok()) << read;
}

// In one group, a callback that fails (with its own status, or after a refused insert) leaves
// none of its changes, and the others commit; each Write reports its own outcome.
TEST_F(SqliteStoreTest, FailedCallbackInAGroupUndoesOnlyItsOwnChanges) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
  bool grouped = false;
  for (int attempt = 0; attempt < kGroupAttempts && !grouped; ++attempt) {
    SCOPED_TRACE(fmt::format("attempt {}", attempt));
    CountingObserver observer;
    store->SetObserver(&observer);
    const auto id = [&](std::string_view name) { return fmt::format("00u{}{}", name, attempt); };
    const std::vector<WriteFn> callbacks = {
        [&](Transaction& tx) -> absl::Status {
          RETURN_IF_ERROR(tx.Users().Insert(User(id("ADA"))));
          return tx.Events().Append(Event(id("ADA"))).status();
        },
        [&](Transaction& tx) -> absl::Status {
          RETURN_IF_ERROR(tx.Users().Insert(User(id("BOB"))));
          RETURN_IF_ERROR(tx.Events().Append(Event(id("BOB"))).status());
          return absl::PermissionDeniedError("policy says no");
        },
        [&](Transaction& tx) -> absl::Status {
          RETURN_IF_ERROR(tx.Users().Insert(User(id("CY"))));
          RETURN_IF_ERROR(tx.Events().Append(Event(id("CY"))).status());
          UserRecord clash = User(id("CY2"));
          clash.login = id("CY") + "@example.com";
          return tx.Users().Insert(clash);
        },
        [&](Transaction& tx) -> absl::Status {
          RETURN_IF_ERROR(tx.Users().Insert(User(id("DEE"))));
          return tx.Events().Append(Event(id("DEE"))).status();
        },
    };
    const QueuedWrites result = WriteBehindAHeldWrite(*store, callbacks, Settle(attempt));
    store->SetObserver(nullptr);
    grouped = result.OneGroup();

    EXPECT_TRUE(result.statuses[0].ok()) << result.statuses[0];
    EXPECT_EQ(result.statuses[1], absl::PermissionDeniedError("policy says no"));
    EXPECT_EQ(result.statuses[2].code(), absl::StatusCode::kAlreadyExists) << result.statuses[2];
    EXPECT_TRUE(result.statuses[3].ok()) << result.statuses[3];
    EXPECT_EQ(observer.Counts(), "ok=3 failed=2 negative=0") << "the held Write and four more";
    const absl::Status read = store->Read([&](Transaction& tx) -> absl::Status {
      for (const auto& [name, committed] : std::vector<std::pair<std::string, bool>>{
               {"ADA", true}, {"BOB", false}, {"CY", false}, {"CY2", false}, {"DEE", true}}) {
        EXPECT_EQ(tx.Users().Get(TenantId("00oACME"), UserId(id(name))).ok(), committed) << name;
        EXPECT_EQ(tx.Logs().FindEvent("00oACME", id(name)).ok(), committed) << name;
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(read.ok()) << read;
  }
  EXPECT_TRUE(grouped) << "the Writes never queued up into one group";
}

// A callback that runs on another Write's thread still cannot start a transaction on the same
// store: it is refused, not deadlocked.
TEST_F(SqliteStoreTest, NestedTransactionIsRefusedInAGroup) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
  bool ran_elsewhere = false;
  for (int attempt = 0; attempt < kGroupAttempts && !ran_elsewhere; ++attempt) {
    SCOPED_TRACE(fmt::format("attempt {}", attempt));
    constexpr int kWriters = 3;
    std::vector<absl::Status> inner_writes(kWriters, absl::InternalError("not run"));
    std::vector<absl::Status> inner_reads(kWriters, absl::InternalError("not run"));
    std::vector<WriteFn> callbacks;
    for (int i = 0; i < kWriters; ++i) {
      callbacks.push_back([&, i](Transaction& tx) -> absl::Status {
        inner_writes[i] = store->Write([](Transaction&) { return absl::OkStatus(); });
        inner_reads[i] = store->Read([](Transaction&) { return absl::OkStatus(); });
        return tx.Events().Append(Event(fmt::format("e{}-{}", attempt, i))).status();
      });
    }
    const QueuedWrites result = WriteBehindAHeldWrite(*store, callbacks, Settle(attempt));
    for (int i = 0; i < kWriters; ++i) {
      EXPECT_TRUE(result.statuses[i].ok()) << result.statuses[i];
      EXPECT_EQ(inner_writes[i].code(), absl::StatusCode::kFailedPrecondition) << inner_writes[i];
      EXPECT_EQ(inner_reads[i].code(), absl::StatusCode::kFailedPrecondition) << inner_reads[i];
      ran_elsewhere = ran_elsewhere || result.ran_on[i] != result.callers[i];
    }
  }
  EXPECT_TRUE(ran_elsewhere) << "no callback ever ran on another Write's thread";
}

// seq follows the order in which callbacks ran, across groups and within them, and a failed
// callback's append gives up its seq without leaving a gap in that order.
TEST_F(SqliteStoreTest, SeqFollowsTheOrderCallbacksRan) {
  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 40;
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
  // Only ever touched inside a callback: callbacks run one at a time.
  int next_run = 0;
  std::atomic<int> committed{0};
  {
    std::vector<std::jthread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&] {
        for (int i = 0; i < kWritesPerThread; ++i) {
          bool fails = false;
          const absl::Status status = store->Write([&](Transaction& tx) -> absl::Status {
            const int run = next_run++;
            fails = run % 7 == 3;
            RETURN_IF_ERROR(tx.Events().Append(Event(fmt::format("{:06}", run))).status());
            if (fails) return absl::AbortedError("rolled back on purpose");
            return absl::OkStatus();
          });
          EXPECT_EQ(status.ok(), !fails) << status;
          if (status.ok()) ++committed;
        }
      });
    }
  }
  absl::StatusOr<std::vector<EventRecord>> events = ReadResult(*store, [](Transaction& tx) {
    return tx.Events().Query(TenantId("00oACME"), EventQuery{.limit = 10000});
  });
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), static_cast<size_t>(committed.load()));
  EXPECT_EQ(next_run, kThreads * kWritesPerThread);
  for (size_t i = 1; i < events->size(); ++i) {
    EXPECT_GT((*events)[i].seq, (*events)[i - 1].seq);
    EXPECT_GT((*events)[i].uuid, (*events)[i - 1].uuid)
        << "the event of a later callback has a larger seq";
  }
  for (const EventRecord& event : *events) {
    EXPECT_NE(std::stoi(event.uuid) % 7, 3) << "a failed callback's event committed";
  }
}

// A callback that throws on another Write's thread: its own caller gets the exception, its
// changes are undone, and the rest of the group commits.
TEST_F(SqliteStoreTest, ExceptionInAGroupedCallbackReachesItsOwnCaller) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
  bool grouped = false;
  for (int attempt = 0; attempt < kGroupAttempts && !grouped; ++attempt) {
    SCOPED_TRACE(fmt::format("attempt {}", attempt));
    const auto id = [&](std::string_view name) { return fmt::format("00u{}{}", name, attempt); };
    const std::vector<WriteFn> callbacks = {
        [&](Transaction& tx) { return tx.Users().Insert(User(id("ADA"))); },
        [&](Transaction& tx) -> absl::Status {
          RETURN_IF_ERROR(tx.Users().Insert(User(id("BOB"))));
          throw std::runtime_error("callback gave up");
        },
        [&](Transaction& tx) { return tx.Users().Insert(User(id("CY"))); },
    };
    const QueuedWrites result = WriteBehindAHeldWrite(*store, callbacks, Settle(attempt));
    grouped = result.OneGroup();
    EXPECT_TRUE(result.statuses[0].ok()) << result.statuses[0];
    EXPECT_EQ(result.thrown[1], "callback gave up");
    EXPECT_TRUE(result.statuses[2].ok()) << result.statuses[2];
    const absl::Status read = store->Read([&](Transaction& tx) -> absl::Status {
      EXPECT_TRUE(tx.Users().Get(TenantId("00oACME"), UserId(id("ADA"))).ok());
      EXPECT_FALSE(tx.Users().Get(TenantId("00oACME"), UserId(id("BOB"))).ok());
      EXPECT_TRUE(tx.Users().Get(TenantId("00oACME"), UserId(id("CY"))).ok());
      return absl::OkStatus();
    });
    EXPECT_TRUE(read.ok()) << read;
  }
  EXPECT_TRUE(grouped) << "the Writes never queued up into one group";
}

// Not a pass/fail test: prints how many single-event writes per second one writer and 16
// concurrent writers get (each Write appends one small event, as a token request does), with
// the default synchronous=FULL. Run it with
//   sqlite_store_test --gtest_also_run_disabled_tests --gtest_filter='*WriteThroughput*'
TEST_F(SqliteStoreTest, DISABLED_WriteThroughputOfSingleEventWrites) {
  constexpr int kWritesPerThread = 2000;
  for (const int threads : {1, 16}) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Write([](Transaction& tx) { return tx.Tenants().Insert(Acme()); }).ok());
    std::atomic<int> failures{0};
    const absl::Time start = absl::Now();
    {
      std::vector<std::jthread> writers;
      for (int t = 0; t < threads; ++t) {
        writers.emplace_back([&, t] {
          for (int i = 0; i < kWritesPerThread; ++i) {
            const absl::Status status = store->Write([&](Transaction& tx) {
              return tx.Events()
                  .Append({.tenant_id = TenantId("00oACME"),
                           .uuid = fmt::format("t{}-{}", t, i),
                           .published = kT0,
                           .event_type = "app.oauth2.token.grant",
                           .json = R"({"eventType":"app.oauth2.token.grant"})"})
                  .status();
            });
            if (!status.ok()) ++failures;
          }
        });
      }
    }
    const absl::Duration elapsed = absl::Now() - start;
    EXPECT_EQ(failures.load(), 0);
    std::printf("%2d thread(s) x %d single-event writes: %6.2f s, %6.0f events/s\n", threads,
                kWritesPerThread, absl::ToDoubleSeconds(elapsed),
                threads * kWritesPerThread / absl::ToDoubleSeconds(elapsed));
    store->Close();
  }
}

TEST_F(SqliteStoreTest, ALeaseExcludesAnotherStoreOnTheFileAndDiesWithItsProcess) {
  // A child process holds the lease until it is killed; it reports on a pipe. Forked before
  // this process opens anything, so that the child starts without other threads.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore({.path = path_});
    if (!store.ok()) ::_exit(10);
    absl::StatusOr<std::unique_ptr<LeaderLease>> lease = (*store)->TryLead("log-sequencer");
    if (!lease.ok() || *lease == nullptr) ::_exit(11);
    if (::write(ready[1], "L", 1) != 1) ::_exit(12);
    while (true) ::pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1) << "the child did not take the lease";
  ::close(ready[0]);

  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::unique_ptr<LeaderLease>> refused = store->TryLead("log-sequencer");
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(*refused, nullptr) << "another process holds it";

  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  absl::StatusOr<std::unique_ptr<LeaderLease>> taken = store->TryLead("log-sequencer");
  ASSERT_TRUE(taken.ok()) << taken.status();
  ASSERT_NE(*taken, nullptr) << "a killed holder's lease is free at once";
  EXPECT_TRUE((*taken)->Held());

  // A second store on the same file (another process, as custos demo would be) is excluded too.
  std::unique_ptr<Store> second = Open();
  ASSERT_NE(second, nullptr);
  absl::StatusOr<std::unique_ptr<LeaderLease>> also = second->TryLead("log-sequencer");
  ASSERT_TRUE(also.ok()) << also.status();
  EXPECT_EQ(*also, nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_ + ".log-sequencer.lock"));
}

TEST_F(SqliteStoreTest, ALeaseWhoseLockFileWasRemovedIsLost) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::unique_ptr<LeaderLease>> lease = store->TryLead("log-sequencer");
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_NE(*lease, nullptr);
  // Someone deletes the lock file: another process could now lock a new one of that name.
  std::filesystem::remove(path_ + ".log-sequencer.lock");
  absl::StatusOr<std::unique_ptr<LeaderLease>> other = store->TryLead("log-sequencer");
  ASSERT_TRUE(other.ok()) << other.status();
  ASSERT_NE(*other, nullptr);
  EXPECT_FALSE((*lease)->Held()) << "two holders must not both believe they lead";
  EXPECT_TRUE((*other)->Held());
}

}  // namespace
}  // namespace custos::store
