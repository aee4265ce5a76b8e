#pragma once

// Versioned schema migrations for the SQLite store.
//
// The schema is the list of steps in store/schema.h, versions 1, 2, 3, ...; this file runs their
// SQLite text. Each database records the steps it has applied in
// `schema_migrations(version, applied_at)`. Opening a database applies every pending step, each in
// its own transaction, so a crash between two steps leaves a database at a well-defined version
// that the next open continues from. A database whose version is newer than the newest step this
// binary knows is refused: an older binary must not write to a schema it does not understand.

#include <span>
#include <string_view>

#include "absl/status/status.h"

struct sqlite3;

namespace custos::store::sqlite {

struct Migration {
  int version;                   // 1-based, contiguous, ascending
  std::string_view description;  // for error messages
  std::string_view sql;          // one or more statements
};

// This binary's schema (store::SchemaSteps(), their SQLite text), oldest step first.
std::span<const Migration> SchemaMigrations();

// The version a database has after ApplyMigrations(db, SchemaMigrations()); the same as
// store::LatestSchemaVersion().
int LatestSchemaVersion();

// Brings `db` up to the last of `steps`. Returns kFailedPrecondition when the database records
// a version newer than the last step, kInvalidArgument when `steps` is not contiguous from 1, and
// kInternal (with the step and SQLite's message) when a step fails; a failed step is rolled back
// and the steps before it stay applied. Needs exclusive use of `db` for the duration of the call;
// other processes are kept out by BEGIN IMMEDIATE.
absl::Status ApplyMigrations(sqlite3* db, std::span<const Migration> steps);

}  // namespace custos::store::sqlite
