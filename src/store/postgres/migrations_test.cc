#include "store/postgres/migrations.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "store/postgres/temp_database.h"
#include "store/schema.h"
#include "store/sqlite/migrations.h"

namespace custos::store::postgres {
namespace {

using ::testing::ContainerEq;
using ::testing::HasSubstr;

using Row = std::vector<std::string>;

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnCloser>;

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close(db); }
};
using SqliteDb = std::unique_ptr<sqlite3, SqliteCloser>;

// What a statement did, in words both engines share: "ok", the rows ("1|0;2|5"), or the kind of
// constraint it broke.
std::string PgOutcome(PGconn* conn, const std::string& sql) {
  PGresult* result = PQexec(conn, sql.c_str());
  std::string outcome;
  switch (PQresultStatus(result)) {
    case PGRES_COMMAND_OK:
      outcome = "ok";
      break;
    case PGRES_TUPLES_OK:
      for (int r = 0; r < PQntuples(result); ++r) {
        if (r > 0) outcome += ';';
        for (int c = 0; c < PQnfields(result); ++c) {
          if (c > 0) outcome += '|';
          outcome += PQgetvalue(result, r, c);
        }
      }
      break;
    default: {
      const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      const std::map<std::string, std::string> kinds = {{"23505", "unique"},
                                                        {"23503", "foreign key"},
                                                        {"23514", "check"},
                                                        {"23502", "not null"},
                                                        {"22P02", "type"}};
      const auto kind = kinds.find(state != nullptr ? state : "");
      outcome = kind != kinds.end() ? kind->second
                                    : fmt::format("error: {}", PQresultErrorMessage(result));
    }
  }
  PQclear(result);
  return outcome;
}

std::string SqliteOutcome(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return fmt::format("error: {}", sqlite3_errmsg(db));
  }
  std::string rows;
  int rc;
  int count = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (count++ > 0) rows += ';';
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      if (c > 0) rows += '|';
      const unsigned char* text = sqlite3_column_text(stmt, c);
      if (text != nullptr) rows += reinterpret_cast<const char*>(text);
    }
  }
  const int columns = sqlite3_column_count(stmt);
  sqlite3_finalize(stmt);
  if (rc == SQLITE_DONE) return columns > 0 ? rows : "ok";
  switch (sqlite3_extended_errcode(db)) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return "unique";
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return "foreign key";
    case SQLITE_CONSTRAINT_CHECK:
      return "check";
    case SQLITE_CONSTRAINT_NOTNULL:
      return "not null";
    case SQLITE_CONSTRAINT_DATATYPE:
      return "type";
    default:
      return fmt::format("error: {}", sqlite3_errmsg(db));
  }
}

std::vector<Row> PgRows(PGconn* conn, const std::string& sql) {
  std::vector<Row> rows;
  PGresult* result = PQexec(conn, sql.c_str());
  if (PQresultStatus(result) != PGRES_TUPLES_OK) {
    ADD_FAILURE() << sql << ": " << PQresultErrorMessage(result);
  } else {
    for (int r = 0; r < PQntuples(result); ++r) {
      Row& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(result); ++c) row.push_back(PQgetvalue(result, r, c));
    }
  }
  PQclear(result);
  return rows;
}

std::vector<Row> SqliteRows(sqlite3* db, const std::string& sql) {
  std::vector<Row> rows;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    return rows;
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    Row& row = rows.emplace_back();
    for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
      const unsigned char* text = sqlite3_column_text(stmt, c);
      row.push_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
  }
  sqlite3_finalize(stmt);
  return rows;
}

// `rows` ordered by their first `keys` columns, then by position within each group: one row per
// group, its keys followed by each further column's values joined with ','.
std::vector<Row> Fold(const std::vector<Row>& rows, size_t keys) {
  std::vector<Row> groups;
  for (const Row& row : rows) {
    const bool same =
        !groups.empty() && std::equal(row.begin(), row.begin() + keys, groups.back().begin());
    if (!same) {
      groups.push_back(row);
      continue;
    }
    for (size_t c = keys; c < row.size(); ++c) groups.back()[c] += "," + row[c];
  }
  return groups;
}

struct IndexShape {
  std::string name;
  std::string table;
  std::string columns;  // "a,b,lower(c)"
  bool unique = false;
  bool partial = false;

  std::string ToString() const {
    return fmt::format("{}: {}({}){}{}", name, table, columns, unique ? " UNIQUE" : "",
                       partial ? " WHERE" : "");
  }
};

// One engine's schema, described in words both engines share. The migrator's own
// schema_migrations table differs by design and is left out.
struct SchemaShape {
  std::vector<std::string> columns;       // "table.column kind[ NOT NULL]"
  std::vector<std::string> primary_keys;  // "table(a,b)"
  std::vector<std::string> foreign_keys;  // "table(a,b) -> parent(c,d) ON DELETE action"
  std::vector<std::string> unique_keys;   // "table(a,lower(b))": unique keys but the primary
  std::vector<IndexShape> named_indexes;  // indexes created by name, not by a table constraint
};

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> Strings(const std::vector<IndexShape>& indexes) {
  std::vector<std::string> strings;
  for (const IndexShape& index : indexes) strings.push_back(index.ToString());
  return Sorted(std::move(strings));
}

SchemaShape SqliteShape(sqlite3* db) {
  constexpr std::string_view kTables =
      "m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'schema_migrations'";
  const std::map<std::string, std::string> kinds = {
      {"INTEGER", "int"}, {"BLOB", "bytes"}, {"TEXT", "text"}};
  SchemaShape shape;
  // A key column holds no NULL in either engine (SQLite's INTEGER PRIMARY KEY is the rowid),
  // whether or not it says NOT NULL.
  for (const Row& row : SqliteRows(db, fmt::format("SELECT m.name, p.name, p.type, "
                                                   "p.\"notnull\" OR p.pk > 0 FROM sqlite_master "
                                                   "m, pragma_table_info(m.name) p WHERE {}",
                                                   kTables))) {
    const auto kind = kinds.find(row[2]);
    shape.columns.push_back(fmt::format("{}.{} {}{}", row[0], row[1],
                                        kind != kinds.end() ? kind->second : row[2],
                                        row[3] == "1" ? " NOT NULL" : ""));
  }
  for (const Row& row :
       Fold(SqliteRows(db, fmt::format("SELECT m.name, p.name FROM sqlite_master m, "
                                       "pragma_table_info(m.name) p WHERE {} AND p.pk > 0 "
                                       "ORDER BY m.name, p.pk",
                                       kTables)),
            1)) {
    shape.primary_keys.push_back(fmt::format("{}({})", row[0], row[1]));
  }
  for (const Row& row :
       Fold(SqliteRows(db, fmt::format("SELECT m.name, f.id, f.\"table\", f.on_delete, f.\"from\", "
                                       "f.\"to\" FROM sqlite_master m, "
                                       "pragma_foreign_key_list(m.name) f WHERE {} "
                                       "ORDER BY m.name, f.id, f.seq",
                                       kTables)),
            4)) {
    shape.foreign_keys.push_back(
        fmt::format("{}({}) -> {}({}) ON DELETE {}", row[0], row[4], row[2], row[5], row[3]));
  }
  // NOCASE is what PostgreSQL spells lower().
  for (const Row& row :
       Fold(SqliteRows(db, fmt::format("SELECT il.name, m.name, il.\"unique\", il.partial, "
                                       "il.origin, CASE x.coll WHEN 'NOCASE' THEN 'lower(' || "
                                       "x.name || ')' ELSE x.name END FROM sqlite_master m, "
                                       "pragma_index_list(m.name) il, "
                                       "pragma_index_xinfo(il.name) x WHERE {} AND x.key = 1 "
                                       "ORDER BY il.name, x.seqno",
                                       kTables)),
            5)) {
    const IndexShape index{.name = row[0],
                           .table = row[1],
                           .columns = row[5],
                           .unique = row[2] == "1",
                           .partial = row[3] == "1"};
    if (index.unique && row[4] != "pk") {
      shape.unique_keys.push_back(fmt::format("{}({})", index.table, index.columns));
    }
    if (row[4] == "c") shape.named_indexes.push_back(index);
  }
  shape.columns = Sorted(std::move(shape.columns));
  shape.primary_keys = Sorted(std::move(shape.primary_keys));
  shape.foreign_keys = Sorted(std::move(shape.foreign_keys));
  shape.unique_keys = Sorted(std::move(shape.unique_keys));
  return shape;
}

SchemaShape PgShape(PGconn* conn) {
  constexpr std::string_view kTables =
      "t.relnamespace = current_schema()::regnamespace AND t.relname <> 'schema_migrations'";
  const std::map<std::string, std::string> kinds = {
      {"bigint", "int"}, {"bytea", "bytes"}, {"text", "text"}};
  SchemaShape shape;
  for (const Row& row :
       PgRows(conn,
              "SELECT table_name, column_name, data_type, is_nullable = 'NO' FROM "
              "information_schema.columns WHERE table_schema = current_schema() AND "
              "table_name <> 'schema_migrations'")) {
    const auto kind = kinds.find(row[2]);
    shape.columns.push_back(fmt::format("{}.{} {}{}", row[0], row[1],
                                        kind != kinds.end() ? kind->second : row[2],
                                        row[3] == "t" ? " NOT NULL" : ""));
  }
  for (const Row& row :
       Fold(PgRows(conn, fmt::format("SELECT t.relname, a.attname FROM pg_constraint c "
                                     "JOIN pg_class t ON t.oid = c.conrelid "
                                     "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY "
                                     "AS k(attnum, ord) "
                                     "JOIN pg_attribute a ON a.attrelid = t.oid "
                                     "AND a.attnum = k.attnum "
                                     "WHERE c.contype = 'p' AND {} ORDER BY t.relname, k.ord",
                                     kTables)),
            1)) {
    shape.primary_keys.push_back(fmt::format("{}({})", row[0], row[1]));
  }
  for (const Row& row :
       Fold(PgRows(conn,
                   fmt::format("SELECT t.relname, c.conname, p.relname, CASE c.confdeltype "
                               "WHEN 'a' THEN 'NO ACTION' WHEN 'c' THEN 'CASCADE' "
                               "WHEN 'r' THEN 'RESTRICT' WHEN 'n' THEN 'SET NULL' "
                               "ELSE 'SET DEFAULT' END, a.attname, pa.attname "
                               "FROM pg_constraint c "
                               "JOIN pg_class t ON t.oid = c.conrelid "
                               "JOIN pg_class p ON p.oid = c.confrelid "
                               "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY "
                               "AS k(attnum, pattnum, ord) "
                               "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
                               "JOIN pg_attribute pa ON pa.attrelid = p.oid "
                               "AND pa.attnum = k.pattnum "
                               "WHERE c.contype = 'f' AND {} ORDER BY t.relname, c.conname, k.ord",
                               kTables)),
            4)) {
    shape.foreign_keys.push_back(
        fmt::format("{}({}) -> {}({}) ON DELETE {}", row[0], row[4], row[2], row[5], row[3]));
  }
  for (const Row& row :
       Fold(PgRows(conn, fmt::format("SELECT i.relname, t.relname, x.indisunique, "
                                     "x.indpred IS NOT NULL, x.indisprimary, EXISTS (SELECT 1 "
                                     "FROM pg_constraint c WHERE c.conindid = x.indexrelid AND "
                                     "c.conrelid = x.indrelid AND c.contype IN ('p', 'u')), "
                                     "pg_get_indexdef(x.indexrelid, k.n, true) FROM pg_index x "
                                     "JOIN pg_class i ON i.oid = x.indexrelid "
                                     "JOIN pg_class t ON t.oid = x.indrelid "
                                     "CROSS JOIN LATERAL generate_series(1, x.indnkeyatts) AS k(n) "
                                     "WHERE {} ORDER BY i.relname, k.n",
                                     kTables)),
            6)) {
    const IndexShape index{.name = row[0],
                           .table = row[1],
                           .columns = row[6],
                           .unique = row[2] == "t",
                           .partial = row[3] == "t"};
    if (index.unique && row[4] != "t") {
      shape.unique_keys.push_back(fmt::format("{}({})", index.table, index.columns));
    }
    if (row[5] != "t") shape.named_indexes.push_back(index);
  }
  shape.columns = Sorted(std::move(shape.columns));
  shape.primary_keys = Sorted(std::move(shape.primary_keys));
  shape.foreign_keys = Sorted(std::move(shape.foreign_keys));
  shape.unique_keys = Sorted(std::move(shape.unique_keys));
  return shape;
}

SqliteDb SqliteAtLatest() {
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  SqliteDb db(raw);
  const absl::Status applied = sqlite::ApplyMigrations(db.get(), sqlite::SchemaMigrations());
  EXPECT_TRUE(applied.ok()) << applied;
  return db;
}

class PostgresMigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> admin = TestServerUrl();
    if (!admin.has_value()) {
      GTEST_SKIP() << "CUSTOS_TEST_POSTGRES is not set: these tests need a PostgreSQL server "
                      "(scripts/with-postgres.sh starts one)";
    }
    absl::StatusOr<std::unique_ptr<TempDatabase>> database = TempDatabase::Create(*admin, "mig");
    ASSERT_TRUE(database.ok()) << database.status();
    database_ = std::move(*database);
  }

  PgConn Connect() {
    PgConn conn(PQconnectdb(database_->url().c_str()));
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    return conn;
  }

  std::unique_ptr<TempDatabase> database_;
};

TEST_F(PostgresMigrationsTest, FreshDatabaseGetsTheSqliteSchema) {
  PgConn conn = Connect();
  const absl::Status applied = ApplyMigrations(conn.get(), SchemaSteps());
  ASSERT_TRUE(applied.ok()) << applied;
  absl::StatusOr<int> version = AppliedVersion(conn.get());
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, LatestSchemaVersion());

  const SqliteDb sqlite = SqliteAtLatest();
  const SchemaShape want = SqliteShape(sqlite.get());
  const SchemaShape got = PgShape(conn.get());
  ASSERT_GT(want.columns.size(), 300U) << "the SQLite side was read";
  ASSERT_FALSE(want.primary_keys.empty() || want.foreign_keys.empty() || want.unique_keys.empty() ||
               want.named_indexes.empty());
  EXPECT_THAT(got.columns, ContainerEq(want.columns));
  EXPECT_THAT(got.primary_keys, ContainerEq(want.primary_keys));
  EXPECT_THAT(got.foreign_keys, ContainerEq(want.foreign_keys));
  EXPECT_THAT(got.unique_keys, ContainerEq(want.unique_keys));

  // The translations store/schema.h names: login's NOCASE key is an index of its own, and
  // support_activity's indexes spell out the rowid (seq) that SQLite's carry.
  std::vector<IndexShape> want_indexes = want.named_indexes;
  for (IndexShape& index : want_indexes) {
    if (index.table == "support_activity") index.columns += ",seq";
  }
  want_indexes.push_back({.name = "users_login_nocase",
                          .table = "users",
                          .columns = "tenant_id,lower(login)",
                          .unique = true});
  EXPECT_THAT(Strings(got.named_indexes), ContainerEq(Strings(want_indexes)));
}

// The same statements meet the same keys, checks and types in both engines.
TEST_F(PostgresMigrationsTest, KeysChecksAndTypesRefuseWhatSqliteRefuses) {
  PgConn conn = Connect();
  ASSERT_TRUE(ApplyMigrations(conn.get(), SchemaSteps()).ok());
  const SqliteDb sqlite = SqliteAtLatest();
  ASSERT_EQ(SqliteOutcome(sqlite.get(), "PRAGMA foreign_keys = ON"), "ok");

  auto user = [](std::string_view tenant, std::string_view id, std::string_view login) {
    return fmt::format(
        "INSERT INTO users (tenant_id, id, status, login, profile_json, password_hash, created, "
        "status_changed, last_updated, failed_sign_ins, recovery_token_hash) VALUES ('{}', '{}', "
        "'ACTIVE', '{}', '{{}}', '', 1, 1, 1, 0, '')",
        tenant, id, login);
  };
  const std::vector<std::pair<std::string, std::string>> script = {
      {"INSERT INTO tenants (id, name, created) VALUES ('t1', 'acme', 1)", "ok"},
      {"INSERT INTO tenants (id, name, created) VALUES ('t2', 'acme', 1)", "unique"},
      {"INSERT INTO tenants (id, name, created) VALUES ('t2', 'globex', 'soon')", "type"},
      {"INSERT INTO tenants (id, name, created) VALUES ('t2', 'globex', NULL)", "not null"},
      {"INSERT INTO tenants (id, name, created) VALUES ('t2', 'globex', 2)", "ok"},
      {"SELECT id, log_public, support_policy FROM tenants ORDER BY id",
       "t1|0|approval_required;t2|0|approval_required"},
      {user("t1", "u1", "Ada@Example.com"), "ok"},
      {user("t1", "u2", "ada@EXAMPLE.COM"), "unique"},
      {user("t2", "u2", "ada@example.com"), "ok"},
      {user("t1", "u3", "\xc3\x89lan@example.com"), "ok"},
      {user("t1", "u4", "\xc3\xa9lan@example.com"), "ok"},
      {user("t9", "u5", "nobody@example.com"), "foreign key"},
      {"INSERT INTO groups (tenant_id, id, name, description, created, last_updated, "
       "last_membership_updated) VALUES ('t1', 'g1', 'admins', '', 1, 1, 1)",
       "ok"},
      {"INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ('t1', 'g1', 'u1')", "ok"},
      {"INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ('t1', 'g1', 'u9')",
       "foreign key"},
      {"INSERT INTO group_members (tenant_id, group_id, user_id) VALUES ('t2', 'g1', 'u2')",
       "foreign key"},
      {"DELETE FROM users WHERE tenant_id = 't1' AND id = 'u1'", "ok"},
      {"SELECT COUNT(*) FROM group_members", "0"},
      {"DELETE FROM tenants WHERE id = 't2'", "foreign key"},
      {"INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES "
       "('provider', 'e1', 1, 'log.test', '{}')",
       "ok"},
      {"INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES "
       "('t1', 'e2', 2, 'log.test', '{}')",
       "ok"},
      {"SELECT seq, uuid FROM events ORDER BY seq", "1|e1;2|e2"},
      {"INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES "
       "('t1', 'e1', 3, 'log.test', '{}')",
       "unique"},
      {"SELECT id, sequenced_seq FROM log_outbox", "1|0"},
      {"INSERT INTO log_outbox (id, sequenced_seq) VALUES (2, 0)", "check"},
      {"INSERT INTO support_activity (seq, published, tenant_id, tenant_event_uuid, "
       "provider_event_uuid, event_type, outcome, reason, actor_id, by_operator, operator_id, "
       "vendor_id, device_id, session_id, ip, grant_id, case_id, resource, fields) VALUES (7, 1, "
       "'t1', 'e2', '', 'support.view', 'SUCCESS', '', 'op', 1, 'op', 'v', 'd', 's', "
       "'192.0.2.1', 'g', 'c', 'user', '')",
       "ok"},
      {"INSERT INTO notifications (tenant_id, id, incident_id, contact_id, channel, "
       "payload_json, status, attempts, next_attempt, last_error, created, acknowledged_by) "
       "VALUES ('t1', 'n1', 'nope', 'c1', 'email', '{}', 'PENDING', 0, 1, '', 1, '')",
       "foreign key"},
  };
  for (const auto& [sql, outcome] : script) {
    EXPECT_EQ(SqliteOutcome(sqlite.get(), sql), outcome) << "SQLite: " << sql;
    EXPECT_EQ(PgOutcome(conn.get(), sql), outcome) << "PostgreSQL: " << sql;
  }
}

// A database that an older binary left at version 1 keeps every row, and seq goes on past the
// highest it ever handed out, deleted rows included.
TEST_F(PostgresMigrationsTest, VersionOneDatabaseMigratesKeepingEveryRow) {
  PgConn conn = Connect();
  ASSERT_TRUE(ApplyMigrations(conn.get(), SchemaSteps().first(1)).ok());
  ASSERT_EQ(PgOutcome(conn.get(), R"sql(
      INSERT INTO tenants (id, name, created) VALUES ('00oACME', 'acme', 1767225600000000);
      INSERT INTO api_tokens (tenant_id, id, name, token_hash, created, last_used)
        VALUES ('00oACME', '00TOLD', 'terraform', 'aa11', 1767225600000001, 1767225600000002);
      INSERT INTO events (tenant_id, uuid, published, event_type, json) VALUES
        ('00oACME', 'e1', 1767225600000010, 'user.lifecycle.create', '{"n":1}'),
        ('00oACME', 'e2', 1767225600000020, 'user.session.start', '{"n":2}'),
        ('00oACME', 'e3', 1767225600000030, 'user.session.end', '{"n":3}'),
        ('00oACME', 'e4', 1767225600000040, 'user.session.end', '{"n":4}');
      DELETE FROM events WHERE uuid = 'e4';
    )sql"),
            "ok");
  EXPECT_EQ(PgOutcome(conn.get(),
                      "INSERT INTO events (tenant_id, uuid, published, event_type, "
                      "json) VALUES ('provider', 'p1', 1, 'log.test', '{}')"),
            "foreign key")
      << "version 1 still refuses events of no tenant";

  const absl::Status applied = ApplyMigrations(conn.get(), SchemaSteps());
  ASSERT_TRUE(applied.ok()) << applied;
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT id, name, created, log_public FROM tenants"),
            "00oACME|acme|1767225600000000|0");
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT id, token_hash, last_used, scope FROM api_tokens"),
            "00TOLD|aa11|1767225600000002|admin");
  EXPECT_EQ(PgOutcome(conn.get(),
                      "INSERT INTO events (tenant_id, uuid, published, event_type, "
                      "json) VALUES ('provider', 'p1', 1, 'log.test', '{}')"),
            "ok");
  EXPECT_EQ(PgOutcome(conn.get(),
                      "SELECT seq, uuid, json, leaf_hash IS NULL FROM events ORDER "
                      "BY seq"),
            "1|e1|{\"n\":1}|t;2|e2|{\"n\":2}|t;3|e3|{\"n\":3}|t;6|p1|{}|t")
      << "the failed insert took seq 5; 4 went with the deleted row";
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT id, sequenced_seq FROM log_outbox"), "1|0")
      << "events written before the step are sequenced too";
}

TEST_F(PostgresMigrationsTest, ApplyingAgainChangesNothing) {
  PgConn conn = Connect();
  ASSERT_TRUE(ApplyMigrations(conn.get(), SchemaSteps()).ok());
  const std::string versions =
      PgOutcome(conn.get(), "SELECT version, applied_at FROM schema_migrations ORDER BY version");
  const SchemaShape before = PgShape(conn.get());

  const absl::Status again = ApplyMigrations(conn.get(), SchemaSteps());
  ASSERT_TRUE(again.ok()) << again;
  EXPECT_EQ(PgOutcome(conn.get(),
                      "SELECT version, applied_at FROM schema_migrations ORDER BY "
                      "version"),
            versions);
  const SchemaShape after = PgShape(conn.get());
  EXPECT_EQ(after.columns, before.columns);
  EXPECT_EQ(Strings(after.named_indexes), Strings(before.named_indexes));
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT COUNT(*) FROM log_outbox"), "1");
  EXPECT_EQ(PgOutcome(conn.get(),
                      "SELECT MIN(applied_at) > 1700000000000000 FROM "
                      "schema_migrations"),
            "t")
      << "applied_at is microseconds since the Unix epoch";
}

TEST_F(PostgresMigrationsTest, NewerSchemaIsRefused) {
  PgConn conn = Connect();
  ASSERT_TRUE(ApplyMigrations(conn.get(), SchemaSteps()).ok());
  ASSERT_EQ(PgOutcome(conn.get(),
                      fmt::format("INSERT INTO schema_migrations (version, applied_at) VALUES "
                                  "({}, 0)",
                                  LatestSchemaVersion() + 1)),
            "ok");

  const absl::Status refused = ApplyMigrations(conn.get(), SchemaSteps());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr(fmt::format("version {} is newer", LatestSchemaVersion() + 1)));
  absl::StatusOr<int> version = AppliedVersion(conn.get());
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, LatestSchemaVersion() + 1);
}

TEST_F(PostgresMigrationsTest, OnlyPendingStepsRunAndAFailedStepIsRolledBack) {
  PgConn conn = Connect();
  // Step 1 has no IF NOT EXISTS: running it twice would fail.
  const SchemaStep v1{1, "one", "", "CREATE TABLE a (x BIGINT);"};
  const SchemaStep v2{2, "two", "", "CREATE TABLE b (x BIGINT); INSERT INTO b VALUES (7);"};
  const SchemaStep bad{3, "three", "", "CREATE TABLE c (x BIGINT); INSERT INTO nope VALUES (1);"};

  const SchemaStep only_v1[] = {v1};
  ASSERT_TRUE(ApplyMigrations(conn.get(), only_v1).ok());
  const SchemaStep up_to_v2[] = {v1, v2};
  const absl::Status second = ApplyMigrations(conn.get(), up_to_v2);
  ASSERT_TRUE(second.ok()) << second;
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT x FROM b"), "7");

  const SchemaStep up_to_bad[] = {v1, v2, bad};
  const absl::Status failed = ApplyMigrations(conn.get(), up_to_bad);
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(failed.message()), HasSubstr("schema migration 3 (three)"));
  EXPECT_THAT(std::string(failed.message()), HasSubstr("relation \"nope\" does not exist"));
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT version FROM schema_migrations ORDER BY version"), "1;2");
  EXPECT_EQ(PgOutcome(conn.get(), "SELECT to_regclass('c') IS NULL"), "t")
      << "the failed step left nothing behind";
  EXPECT_EQ(PQtransactionStatus(conn.get()), PQTRANS_IDLE);

  PgConn other = Connect();
  EXPECT_EQ(PgOutcome(other.get(), fmt::format("SELECT pg_try_advisory_lock({}), "
                                               "pg_advisory_unlock({})",
                                               kMigrationLockKey, kMigrationLockKey)),
            "t|t")
      << "the failed migration released its lock";

  const SchemaStep gap[] = {v1, bad};
  EXPECT_EQ(ApplyMigrations(conn.get(), gap).code(), absl::StatusCode::kInvalidArgument);

  ASSERT_EQ(PgOutcome(conn.get(), "BEGIN"), "ok");
  EXPECT_EQ(ApplyMigrations(conn.get(), up_to_v2).code(), absl::StatusCode::kFailedPrecondition)
      << "a step cannot have its own transaction inside the caller's";
  EXPECT_EQ(PgOutcome(conn.get(), "ROLLBACK"), "ok");
}

// Two processes starting at once on a new database: one applies the steps while the other waits
// for the lock, then finds nothing to do. Without the lock both would create the same tables.
TEST_F(PostgresMigrationsTest, ConcurrentMigrationsApplyEachStepOnce) {
  PgConn holder = Connect();
  ASSERT_EQ(PgOutcome(holder.get(), fmt::format("SELECT pg_advisory_lock({})", kMigrationLockKey)),
            "");
  std::array<absl::Status, 2> results;
  std::vector<std::thread> threads;
  for (absl::Status& result : results) {
    threads.emplace_back([this, &result] {
      PgConn conn = Connect();
      result = ApplyMigrations(conn.get(), SchemaSteps());
    });
  }
  // Both wait on the lock before either starts, so that they really race once it is free.
  const std::string waiting = fmt::format(
      "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND "
      "database = (SELECT oid FROM pg_database WHERE datname = current_database())");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (PgOutcome(holder.get(), waiting) != "2" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(PgOutcome(holder.get(), waiting), "2");
  EXPECT_EQ(PgOutcome(holder.get(), "SELECT to_regclass('schema_migrations') IS NULL"), "t")
      << "nothing is applied while another session holds the lock";
  ASSERT_EQ(
      PgOutcome(holder.get(), fmt::format("SELECT pg_advisory_unlock({})", kMigrationLockKey)),
      "t");
  for (std::thread& thread : threads) thread.join();

  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  std::string want;
  for (const SchemaStep& step : SchemaSteps()) {
    want += (want.empty() ? "" : ";") + std::to_string(step.version);
  }
  EXPECT_EQ(PgOutcome(holder.get(), "SELECT version FROM schema_migrations ORDER BY version"),
            want);
}

}  // namespace
}  // namespace custos::store::postgres
