#pragma once

// What every SQLite repository of the store shares: one mapping of SQLite errors to statuses (so
// that each reports a clash, a missing referenced row, a busy engine and a write in a read
// alike), times as microseconds, and a statement used once with checked bindings.

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::store::sqlite {

// kAlreadyExists for a unique or primary key clash, kNotFound for a missing referenced row,
// kUnavailable when busy or locked past the timeout, kFailedPrecondition for a write in a read
// transaction, kInternal otherwise; `what` starts the message.
absl::Status ErrorFromSqlite(sqlite3* db, int rc, std::string_view what);

inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// The smallest whole microsecond at or after `t`, so that `published >= t` and `published < t`
// keep their meaning for a bound that is not a whole microsecond.
int64_t CeilMicros(absl::Time t);

// A prepared statement borrowed from a connection's cache (or prepared for one query) for one
// use. Binding errors are
// kept and reported by the first Step or Run. Resets the statement when destroyed, so that it
// releases its read snapshot and can be used again.
class Statement {
 public:
  // `owned`: the statement was prepared for this use alone and is finalized at its end.
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string_view what, bool owned = false)
      : db_(db), stmt_(stmt), what_(what), owned_(owned) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        what_(other.what_),
        owned_(other.owned_),
        status_(std::move(other.status_)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    if (owned_) {
      sqlite3_finalize(stmt_);
    } else {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  void BindText(int index, std::string_view text) {
    // A null pointer would bind SQL NULL; an empty string must stay an empty string.
    Check(sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(),
                              SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void BindBlob(int index, std::string_view bytes) {
    Check(sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                              SQLITE_TRANSIENT));
  }
  void BindInt(int index, int64_t value) { Check(sqlite3_bind_int64(stmt_, index, value)); }
  void BindTime(int index, absl::Time t) { BindInt(index, Micros(t)); }
  void BindTime(int index, const std::optional<absl::Time>& t) {
    if (t.has_value()) {
      BindTime(index, *t);
    } else {
      Check(sqlite3_bind_null(stmt_, index));
    }
  }

  // Advances to the next row; false when there is none.
  absl::StatusOr<bool> Step() {
    RETURN_IF_ERROR(status_);
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return ErrorFromSqlite(db_, rc, what_);
  }

  // Runs a statement that returns no rows; returns how many rows it changed.
  absl::StatusOr<int> Run() {
    ASSIGN_OR_RETURN(const bool row, Step());
    if (row) return absl::InternalError(fmt::format("{}: unexpected row", what_));
    return sqlite3_changes(db_);
  }

  std::string Text(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (text == nullptr) return std::string();
    return std::string(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  std::string Blob(int column) const {
    const auto* bytes = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
    if (bytes == nullptr) return std::string();
    return std::string(bytes, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  // Valid until the next Step, Reset or the statement's end.
  std::string_view TextView(int column) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    if (text == nullptr) return std::string_view();
    return std::string_view(text, static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  absl::Time Time(int column) const { return absl::FromUnixMicros(Int(column)); }
  std::optional<absl::Time> OptionalTime(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Time(column);
  }

  // Makes the statement ready to run again with new bindings, for loops that run one statement
  // many times. Keeps a binding error for the next Step.
  void Reset() { sqlite3_reset(stmt_); }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && status_.ok()) status_ = ErrorFromSqlite(db_, rc, what_);
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::string_view what_;
  bool owned_;
  absl::Status status_;
};

// Reads every row that `stmt` returns, each with `read`.
template <typename Record>
absl::StatusOr<std::vector<Record>> ReadAll(Statement& stmt, Record (*read)(const Statement&)) {
  std::vector<Record> records;
  while (true) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return records;
    records.push_back(read(stmt));
  }
}

// Reads the one row that `stmt` returns; kNotFound, naming `what`, when there is none.
template <typename Record>
absl::StatusOr<Record> ReadOne(Statement& stmt, Record (*read)(const Statement&),
                               std::string_view what) {
  ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::NotFoundError(fmt::format("{} not found", what));
  return read(stmt);
}

}  // namespace custos::store::sqlite
