#pragma once

// Versioned schema migrations for the PostgreSQL store: the steps of store/schema.h, their
// PostgreSQL text, with the contract of store/sqlite/migrations.h.
//
// Each database records the steps it has applied in
// `schema_migrations(version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)` (applied_at in
// microseconds since the Unix epoch, the server's clock). Every pending step runs in its own
// transaction together with the row that records it, so a crash between two steps leaves a
// database at a well-defined version that the next run continues from. A database whose version is
// newer than the newest step this binary knows is refused.
//
// Several `custos serve` processes may start at once on one database: the whole migration runs
// under the session-level advisory lock kMigrationLockKey, so one of them applies the pending
// steps and the others wait, then find nothing left to do.

#include <libpq-fe.h>

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/schema.h"

namespace custos::store::postgres {

// The advisory lock key held while migrating ("custosmg" in ASCII). Other advisory locks of the
// store must use other keys.
inline constexpr int64_t kMigrationLockKey = 0x637573746f736d67;

// Brings the database of `conn` up to the last of `steps`. Returns kInvalidArgument when `steps`
// is not contiguous from 1, kFailedPrecondition when the database records a version newer than
// the last step or `conn` is inside a transaction, kUnavailable when the connection is lost, and
// kInternal (with the step and the server's message) when a step fails; a failed step is rolled
// back and the steps before it stay applied. Blocks while another session holds
// kMigrationLockKey; releases the lock before returning, on success or error. `conn` must be
// connected and not used by another thread during the call.
absl::Status ApplyMigrations(PGconn* conn, std::span<const SchemaStep> steps);

// The newest version recorded in the database of `conn`; 0 when no step has been applied (no
// schema_migrations table yet).
absl::StatusOr<int> AppliedVersion(PGconn* conn);

}  // namespace custos::store::postgres
