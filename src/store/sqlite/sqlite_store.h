#pragma once

// The embedded store: one SQLite database file in WAL mode.
//
// Writes go through one connection in BEGIN IMMEDIATE ... COMMIT, so they also exclude writers
// in other processes (which wait up to the busy timeout). They commit in groups: the Writes that
// queue up while a transaction commits are run, in arrival order and at most 256 at a time, by
// one of their threads in one transaction, each callback in its own savepoint, and share one
// commit (one fsync). Each Write still gets exactly Store::Write's outcome: a failed callback
// undoes only its own changes, and every Write returns after the commit that holds its changes.
// A callback may therefore run on another thread than the one that called Write (which waits
// meanwhile): callbacks must not depend on their caller's thread-local state.
//
// Reads use a small pool of read-only connections; each Read is one deferred transaction and
// sees one consistent snapshot, unaffected by writes that commit while it runs. Opening applies
// pending schema migrations (store/sqlite/migrations.h).
//
// Leader leases (Store::TryLead) are flock()s on <path>.<name>.lock, so they also exclude other
// processes on the same file (custos demo, admin commands); the lock file stays after use.
//
// Times round-trip at microsecond precision. Logins compare case-insensitively for ASCII
// letters only (SQLite's NOCASE).

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/store.h"

namespace custos::store {

struct SqliteOptions {
  // The database file, e.g. <data_dir>/custos.db. The file and its parent directories are
  // created when missing; a new file is readable by its owner only.
  std::string path;
  // FULL: a committed transaction survives power loss. NORMAL: it survives a crash of the
  // process but may be lost, never corrupted, on power loss; faster.
  bool synchronous_full = true;
  // Size of the read connection pool; at least 1. Reads beyond it wait for a free connection.
  int read_connections = 4;
  // Page cache of the write connection, in MiB (each read connection gets a quarter). SQLite's
  // default of 2 MiB is far smaller than the indexes that appends touch.
  int writer_cache_mib = 64;
};

// Opens (creating if needed) and migrates the database at options.path. Returns
// kInvalidArgument for bad options, kFailedPrecondition when the database has a newer schema
// than this binary knows, kInternal when SQLite fails. The returned store is thread-safe as
// store::Store says; it must outlive every call into it.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options);

}  // namespace custos::store
