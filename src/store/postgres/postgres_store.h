#pragma once

// The PostgreSQL store: the same repositories as the embedded SQLite store, on a PostgreSQL
// server (13 or newer) through libpq, so that several `custos serve` processes can share one
// database.
//
// Writes are serialised across every process on the database: a write transaction takes one
// transaction-level advisory lock (pg_advisory_xact_lock) before its first statement, so that
// writes behave as they do on SQLite's single writer (read-then-write checks hold, and events
// commit in the order of their seq, which the log sequencer relies on). Reads run concurrently
// in REPEATABLE READ READ ONLY transactions, each on one snapshot. A statement that fails inside
// a write (a unique key clash, say) leaves the transaction usable, as in SQLite: each modifying
// statement runs in its own savepoint.
//
// The database must use the C collation (ORDER BY and comparisons of ids then match SQLite's
// byte order, and lower() folds ASCII letters only, like NOCASE): create it with
//   CREATE DATABASE custos TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C';
// Opening applies pending schema migrations (store/schema.h) under an advisory lock, so that
// several processes may start at once.
//
// Leader leases (Store::TryLead) are session advisory locks, each on a connection of its own
// (outside the pool) with TCP keepalives set on both ends, so that the server frees the lock
// within about 10 s of the holder's machine vanishing, and at once when its process dies. They
// need real sessions: a pooler in transaction mode (pgbouncer's default) in front of the server
// would break them.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/store.h"

namespace custos::store {

struct PostgresOptions {
  // libpq connection string: postgres://user:password@host:port/database?sslmode=... or
  // key=value pairs. Never logged: it may hold a password.
  std::string conninfo;
  // Connections in the pool, at least 2. Transactions beyond it wait for a free connection.
  int connections = 8;
  // How long a transaction waits for a free connection before kUnavailable.
  absl::Duration acquire_timeout = absl::Seconds(30);
};

// Connects, checks the server and the database's collation and migrates. Returns
// kInvalidArgument for bad options, kUnavailable when the server cannot be reached,
// kFailedPrecondition when the database's collation is not C or its schema is newer than this
// binary knows.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const PostgresOptions& options);

// Whether `store_setting` (the `store` setting of the configuration) names a PostgreSQL
// database: it starts with postgres:// or postgresql://.
bool IsPostgresUrl(std::string_view store_setting);

}  // namespace custos::store
