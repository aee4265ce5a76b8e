#include "store/postgres/migrations.h"

#include <charconv>
#include <memory>
#include <string>
#include <string_view>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::store::postgres {
namespace {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

std::string ServerMessage(PGconn* conn, const PGresult* result) {
  if (result != nullptr) {
    const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
    const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    if (primary != nullptr && sqlstate != nullptr) {
      return fmt::format("{} (SQLSTATE {})", primary, sqlstate);
    }
    if (primary != nullptr) return primary;
  }
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

absl::Status Failure(PGconn* conn, const PGresult* result, std::string_view what) {
  std::string message = fmt::format("{}: {}", what, ServerMessage(conn, result));
  if (PQstatus(conn) == CONNECTION_BAD) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

// One simple query: `sql` may hold several statements; the result is the last statement's, or
// the first failure's.
absl::StatusOr<PgResult> Exec(PGconn* conn, const std::string& sql, std::string_view what) {
  PgResult result(PQexec(conn, sql.c_str()));
  const ExecStatusType status =
      result != nullptr ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) {
    return result;
  }
  return Failure(conn, result.get(), what);
}

// The single value of a one-row, one-column query.
absl::StatusOr<std::string> QueryValue(PGconn* conn, const std::string& sql,
                                       std::string_view what) {
  ASSIGN_OR_RETURN(PgResult result, Exec(conn, sql, what));
  if (PQntuples(result.get()) != 1 || PQnfields(result.get()) != 1) {
    return absl::InternalError(fmt::format("{}: expected one value", what));
  }
  return std::string(PQgetvalue(result.get(), 0, 0));
}

absl::StatusOr<bool> SchemaMigrationsExists(PGconn* conn) {
  ASSIGN_OR_RETURN(const PgResult result,
                   Exec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL",
                        "reading schema_migrations"));
  return PQntuples(result.get()) == 1 && std::string_view(PQgetvalue(result.get(), 0, 0)) == "t";
}

absl::Status RefuseNewer(int current, int latest) {
  if (current <= latest) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "database schema version {} is newer than the newest this binary knows ({}); run a "
      "custos release at least as new as the one that last wrote this database",
      current, latest));
}

void RollbackIfOpen(PGconn* conn) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) PQclear(PQexec(conn, "ROLLBACK"));
}

absl::Status ApplyStep(PGconn* conn, const SchemaStep& step) {
  const std::string what = fmt::format("schema migration {} ({})", step.version, step.description);
  RETURN_IF_ERROR(Exec(conn, "BEGIN", what).status());
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(Exec(conn, std::string(step.postgres), what).status());
    RETURN_IF_ERROR(
        Exec(conn,
             fmt::format("INSERT INTO schema_migrations (version, applied_at) VALUES ({}, "
                         "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)",
                         step.version),
             what)
            .status());
    return Exec(conn, "COMMIT", what).status();
  }();
  if (!status.ok()) RollbackIfOpen(conn);
  return status;
}

// Runs with the migration lock held, so nothing else migrates this database meanwhile: the
// version read here stays true until a step changes it.
absl::Status ApplyPending(PGconn* conn, std::span<const SchemaStep> steps) {
  const int latest = static_cast<int>(steps.size());
  ASSIGN_OR_RETURN(const bool exists, SchemaMigrationsExists(conn));
  if (!exists) {
    RETURN_IF_ERROR(Exec(conn,
                         "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, "
                         "applied_at BIGINT NOT NULL)",
                         "creating schema_migrations")
                        .status());
  }
  ASSIGN_OR_RETURN(const int current, AppliedVersion(conn));
  RETURN_IF_ERROR(RefuseNewer(current, latest));
  for (const SchemaStep& step : steps) {
    if (step.version <= current) continue;
    RETURN_IF_ERROR(ApplyStep(conn, step));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> AppliedVersion(PGconn* conn) {
  ASSIGN_OR_RETURN(const bool exists, SchemaMigrationsExists(conn));
  if (!exists) return 0;
  ASSIGN_OR_RETURN(const std::string text,
                   QueryValue(conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                              "reading schema_migrations"));
  int version = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), version);
  if (error != std::errc() || end != text.data() + text.size()) {
    return absl::InternalError(fmt::format("reading schema_migrations: bad version '{}'", text));
  }
  return version;
}

absl::Status ApplyMigrations(PGconn* conn, std::span<const SchemaStep> steps) {
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i].version != static_cast<int>(i) + 1) {
      return absl::InvalidArgumentError(fmt::format(
          "migration #{} has version {}; versions must run 1, 2, 3, ...", i + 1, steps[i].version));
    }
  }
  if (PQstatus(conn) != CONNECTION_OK) return Failure(conn, nullptr, "migrating the schema");
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
    return absl::FailedPreconditionError(
        "migrating the schema: the connection is inside a transaction; each step needs its own");
  }
  RETURN_IF_ERROR(Exec(conn, fmt::format("SELECT pg_advisory_lock({})", kMigrationLockKey),
                       "taking the schema migration lock")
                      .status());
  const absl::Status status = ApplyPending(conn, steps);
  // A session-level lock outlives transactions: release it whatever happened, so that the other
  // processes go on. A lost connection has released it already.
  RollbackIfOpen(conn);
  const absl::StatusOr<PgResult> unlock =
      Exec(conn, fmt::format("SELECT pg_advisory_unlock({})", kMigrationLockKey),
           "releasing the schema migration lock");
  if (!status.ok()) return status;
  return unlock.status();
}

}  // namespace custos::store::postgres
