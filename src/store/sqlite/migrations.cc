#include "store/sqlite/migrations.h"

#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/schema.h"

namespace custos::store::sqlite {
namespace {

absl::Status Exec(sqlite3* db, const std::string& sql, std::string_view what) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return absl::InternalError(fmt::format("{}: {}", what, message));
}

void RollbackIfOpen(sqlite3* db) {
  if (sqlite3_get_autocommit(db) == 0) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

absl::StatusOr<int> CurrentVersion(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", -1,
                              &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return absl::InternalError(fmt::format("reading schema_migrations: {}", sqlite3_errmsg(db)));
  }
  rc = sqlite3_step(stmt);
  const int version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW) {
    return absl::InternalError(fmt::format("reading schema_migrations: {}", sqlite3_errstr(rc)));
  }
  return version;
}

absl::Status RefuseNewer(int current, int latest) {
  if (current <= latest) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "database schema version {} is newer than the newest this binary knows ({}); run a "
      "custos release at least as new as the one that last wrote this database",
      current, latest));
}

// Applies `step` unless another opener already has. Caller has checked the list is contiguous.
absl::Status ApplyStep(sqlite3* db, const Migration& step, int latest) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "starting a migration"));
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(const int current, CurrentVersion(db));
    RETURN_IF_ERROR(RefuseNewer(current, latest));
    if (step.version <= current) return Exec(db, "COMMIT", "skipping an applied migration");
    if (step.version != current + 1) {
      return absl::InternalError(fmt::format(
          "database is at schema version {} but the next step is {}", current, step.version));
    }
    const std::string what =
        fmt::format("schema migration {} ({})", step.version, step.description);
    RETURN_IF_ERROR(Exec(db, std::string(step.sql), what));
    RETURN_IF_ERROR(Exec(db,
                         fmt::format("INSERT INTO schema_migrations (version, applied_at) "
                                     "VALUES ({}, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                     step.version),
                         what));
    return Exec(db, "COMMIT", what);
  }();
  // A failed COMMIT can leave the transaction open; never leave it so.
  if (!status.ok()) RollbackIfOpen(db);
  return status;
}

}  // namespace

std::span<const Migration> SchemaMigrations() {
  // Built once from the shared list; never destroyed, so it outlives every caller.
  static const std::vector<Migration>* const migrations = [] {
    auto* list = new std::vector<Migration>();
    for (const SchemaStep& step : SchemaSteps()) {
      list->push_back({step.version, step.description, step.sqlite});
    }
    return list;
  }();
  return *migrations;
}

int LatestSchemaVersion() { return store::LatestSchemaVersion(); }

absl::Status ApplyMigrations(sqlite3* db, std::span<const Migration> steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(fmt::format(
          "migration #{} has version {}; versions must run 1, 2, 3, ...", i + 1, steps[i].version));
    }
  }
  const int latest = static_cast<int>(steps.size());
  RETURN_IF_ERROR(Exec(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                       "creating schema_migrations"));
  ASSIGN_OR_RETURN(const int current, CurrentVersion(db));
  RETURN_IF_ERROR(RefuseNewer(current, latest));
  for (const Migration& step : steps) {
    if (step.version <= current) continue;
    RETURN_IF_ERROR(ApplyStep(db, step, latest));
  }
  return absl::OkStatus();
}

}  // namespace custos::store::sqlite
