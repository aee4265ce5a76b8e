#include "store/schema.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "fmt/format.h"
#include "store/sqlite/migrations.h"

namespace custos::store {
namespace {

using ::testing::ElementsAreArray;

// FNV-1a, 64 bits: a stable fingerprint of released text.
uint64_t Fingerprint(std::string_view text) {
  uint64_t hash = 14695981039346656037ULL;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};

// Rows of `sql`, each row's columns joined with '|'.
std::vector<std::string> Query(sqlite3* db, const char* sql) {
  std::vector<std::string> rows;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    return rows;
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      if (i > 0) row += '|';
      const unsigned char* text = sqlite3_column_text(stmt, i);
      if (text != nullptr) row += reinterpret_cast<const char*>(text);
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  return rows;
}

TEST(SchemaTest, VersionsRunFromOneWithoutGapsAndEveryStepHasBothDialects) {
  const std::span<const SchemaStep> steps = SchemaSteps();
  ASSERT_FALSE(steps.empty());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].version, static_cast<int>(i) + 1);
    EXPECT_FALSE(steps[i].description.empty()) << "step " << steps[i].version;
    EXPECT_NE(steps[i].sqlite.find(';'), std::string_view::npos)
        << "step " << steps[i].version << " has no SQLite statement";
    EXPECT_NE(steps[i].postgres.find(';'), std::string_view::npos)
        << "step " << steps[i].version << " has no PostgreSQL statement";
  }
  EXPECT_EQ(LatestSchemaVersion(), steps.back().version);
}

TEST(SchemaTest, SqliteMigrationsAreTheSharedSteps) {
  const std::span<const SchemaStep> steps = SchemaSteps();
  const std::span<const sqlite::Migration> migrations = sqlite::SchemaMigrations();
  ASSERT_EQ(migrations.size(), steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(migrations[i].version, steps[i].version);
    EXPECT_EQ(migrations[i].description, steps[i].description);
    EXPECT_EQ(migrations[i].sql, steps[i].sqlite);
  }
  EXPECT_EQ(sqlite::LatestSchemaVersion(), LatestSchemaVersion());
}

// Databases in the field were made by these exact texts; a change to the schema is a new step.
TEST(SchemaTest, ReleasedSqliteStepsAreUnchanged) {
  constexpr uint64_t kReleased[] = {
      0x1fedfb3661036d56, 0xd16087f5cd55aa32, 0x49e1c4138e3fa01c,
      0x1d3936648413d2a5, 0x4dfc07fa1cc8b138, 0xcab8e80098f3b3a4,
  };
  const std::span<const SchemaStep> steps = SchemaSteps();
  ASSERT_GE(steps.size(), std::size(kReleased));
  for (size_t i = 0; i < std::size(kReleased); ++i) {
    EXPECT_EQ(Fingerprint(steps[i].sqlite), kReleased[i])
        << fmt::format("released step {} ({}) changed: its fingerprint is now {:#018x}",
                       steps[i].version, steps[i].description, Fingerprint(steps[i].sqlite));
  }
}

TEST(SchemaTest, PostgresTextHasNoSqliteOnlySyntax) {
  const std::regex sqlite_only(
      R"(\b(INTEGER|BLOB|STRICT|WITHOUT ROWID|AUTOINCREMENT|NOCASE|sqlite_\w+)\b)",
      std::regex::icase);
  for (const SchemaStep& step : SchemaSteps()) {
    const std::string text(step.postgres);
    std::smatch match;
    EXPECT_FALSE(std::regex_search(text, match, sqlite_only))
        << "step " << step.version << " PostgreSQL text has " << match.str();
  }
}

// The schema a fresh SQLite database gets from the steps released before the list was shared
// with PostgreSQL (1 to 6), as the migrations made it then: the tables and named indexes, and a
// fingerprint of all of sqlite_master (type, name, table and SQL of every table, index and
// automatic index). Later steps only add to it.
TEST(SchemaTest, FreshSqliteDatabaseGetsTheReleasedSchema) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  const std::unique_ptr<sqlite3, SqliteCloser> db(raw);
  constexpr size_t kStepsBeforeSharing = 6;
  ASSERT_GE(sqlite::SchemaMigrations().size(), kStepsBeforeSharing);
  const absl::Status applied =
      sqlite::ApplyMigrations(db.get(), sqlite::SchemaMigrations().first(kStepsBeforeSharing));
  ASSERT_TRUE(applied.ok()) << applied;

  EXPECT_THAT(Query(db.get(),
                    "SELECT type, name, tbl_name FROM sqlite_master WHERE sql IS NOT NULL AND "
                    "name NOT LIKE 'sqlite_%' ORDER BY type, name"),
              ElementsAreArray<std::string>({
                  "index|access_requests_by_operator|access_requests",
                  "index|access_requests_by_status|access_requests",
                  "index|authn_transactions_by_user|authn_transactions",
                  "index|confirmations_by_action|confirmations",
                  "index|confirmations_by_status|confirmations",
                  "index|devices_by_vendor|devices",
                  "index|events_by_tenant_published|events",
                  "index|events_by_tenant_seq|events",
                  "index|factors_by_user|factors",
                  "index|grants_by_case|grants",
                  "index|grants_by_operator|grants",
                  "index|grants_by_status|grants",
                  "index|grants_by_vendor|grants",
                  "index|group_members_by_user|group_members",
                  "index|incidents_by_created|incidents",
                  "index|log_entries_by_seq|log_entries",
                  "index|notifications_by_incident|notifications",
                  "index|notifications_by_tenant|notifications",
                  "index|notifications_due|notifications",
                  "index|operator_tokens_unrevoked_by_device|operator_tokens",
                  "index|operator_tokens_unrevoked_by_operator|operator_tokens",
                  "index|operator_tokens_unrevoked_by_session|operator_tokens",
                  "index|operator_tokens_unrevoked_by_vendor|operator_tokens",
                  "index|operators_by_vendor|operators",
                  "index|refresh_tokens_by_family|refresh_tokens",
                  "index|refresh_tokens_by_session|refresh_tokens",
                  "index|revoked_tokens_by_expiry|revoked_tokens",
                  "index|sessions_by_user|sessions",
                  "index|status_notices_by_published|status_notices",
                  "index|support_activity_by_device|support_activity",
                  "index|support_activity_by_ip|support_activity",
                  "index|support_activity_by_operator|support_activity",
                  "index|support_activity_by_session|support_activity",
                  "index|support_activity_by_time|support_activity",
                  "index|support_activity_by_vendor|support_activity",
                  "index|users_by_recovery_token|users",
                  "table|access_requests|access_requests",
                  "table|api_tokens|api_tokens",
                  "table|apps|apps",
                  "table|auth_codes|auth_codes",
                  "table|authn_transactions|authn_transactions",
                  "table|confirmations|confirmations",
                  "table|devices|devices",
                  "table|enrollment_tokens|enrollment_tokens",
                  "table|events|events",
                  "table|factors|factors",
                  "table|grants|grants",
                  "table|group_members|group_members",
                  "table|groups|groups",
                  "table|incidents|incidents",
                  "table|log_checkpoints|log_checkpoints",
                  "table|log_entries|log_entries",
                  "table|log_keys|log_keys",
                  "table|log_outbox|log_outbox",
                  "table|log_states|log_states",
                  "table|log_tiles|log_tiles",
                  "table|notifications|notifications",
                  "table|oidc_keys|oidc_keys",
                  "table|operator_tokens|operator_tokens",
                  "table|operators|operators",
                  "table|provider_tokens|provider_tokens",
                  "table|refresh_tokens|refresh_tokens",
                  "table|revoked_tokens|revoked_tokens",
                  "table|schema_migrations|schema_migrations",
                  "table|security_contacts|security_contacts",
                  "table|sessions|sessions",
                  "table|sightings|sightings",
                  "table|status_notices|status_notices",
                  "table|support_activity|support_activity",
                  "table|support_cases|support_cases",
                  "table|support_settings|support_settings",
                  "table|tenants|tenants",
                  "table|users|users",
                  "table|vendors|vendors",
              }));

  std::string master;
  for (const std::string& row :
       Query(db.get(),
             "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, "
             "name")) {
    master += row + '\n';
  }
  EXPECT_EQ(Fingerprint(master), 0x0f0fce159f559d58U) << "the schema of a fresh database changed:\n"
                                                      << master;
}

}  // namespace
}  // namespace custos::store
