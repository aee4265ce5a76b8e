#pragma once

// What every PostgreSQL repository of the store shares, shaped like store/sqlite/statement.h so
// that a repository reads the same on both backends: one mapping of server errors to statuses,
// a connection with a cache of prepared statements, and a statement used once with checked
// bindings.
//
// Values cross the wire as text (bytea as binary parameters, hex text in results); times are
// BIGINT microseconds since the Unix epoch, as in the SQLite schema. Placeholders are $1, $2, …

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::store::postgres {

// kAlreadyExists for a unique violation (23505), kNotFound for a foreign key violation (23503),
// kFailedPrecondition for a write in a read-only transaction (25006), kUnavailable when the
// connection is gone, a serialization failure, a deadlock or a lock timeout (worth a retry),
// kInvalidArgument for a value the column refuses (22xxx), kInternal otherwise; `what` starts the
// message. `result` may be null (the connection failed before an answer).
absl::Status ErrorFromResult(PGconn* conn, const PGresult* result, std::string_view what);

inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// The smallest whole microsecond at or after `t` (see sqlite::CeilMicros).
int64_t CeilMicros(absl::Time t);

// Owns a PGresult.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// TCP keepalives, set on both ends of every session Custos opens (pooled and leader lease
// sessions), so that a peer that vanishes without closing the connection (its machine died,
// the network parted) is noticed within about 10 s rather than the kernel's two hours:
// probes after 5 s of silence, every 2 s, 3 unanswered ones end the connection, and so does
// data unacknowledged for 10 s. On the server's end this frees the session's locks (a node that
// dies mid-write no longer holds the store's write lock until a timeout much later).
inline constexpr int kKeepaliveIdleSeconds = 5;
inline constexpr int kKeepaliveIntervalSeconds = 2;
inline constexpr int kKeepaliveCount = 3;
inline constexpr int kTcpUserTimeoutMillis = 10'000;

// Opens a session on `conninfo` (a postgres:// URL or key=value string) with the keepalives above
// on this end, a connect timeout of 10 s and `application_name`; settings that `conninfo` names
// take precedence. Never null (check PQstatus).
PGconn* ConnectWithKeepalives(const std::string& conninfo, const char* application_name);

// The statements that set the keepalives above on the server's end of the current session (they
// apply to TCP connections; the server ignores them on a Unix socket).
std::string ServerKeepaliveSettings();

class Connection;

// One execution of a prepared statement. Bind the parameters ($1 is index 1), then either
// Run (no rows wanted: returns the number of rows changed) or Step through the rows (the first
// Step executes). Binding errors are kept and reported by the first Step or Run. Reset makes it
// ready to run again with new bindings.
class Statement {
 public:
  // `modifies`: an INSERT, UPDATE or DELETE (see Connection::SetStatementSavepoints).
  // `params`: how many parameters the statement has; those never bound are NULL.
  Statement(Connection& conn, std::string name, std::string_view what, bool modifies, int params)
      : conn_(&conn),
        name_(std::move(name)),
        what_(what),
        modifies_(modifies),
        declared_(static_cast<size_t>(params)),
        params_(declared_) {}
  Statement(Statement&&) noexcept = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;

  void BindText(int index, std::string_view text) { Set(index, std::string(text), false); }
  void BindBlob(int index, std::string_view bytes) { Set(index, std::string(bytes), true); }
  void BindInt(int index, int64_t value) { Set(index, std::to_string(value), false); }
  void BindTime(int index, absl::Time t) { BindInt(index, Micros(t)); }
  void BindTime(int index, const std::optional<absl::Time>& t) {
    if (t.has_value()) {
      BindTime(index, *t);
    } else {
      BindNull(index);
    }
  }
  void BindNull(int index);

  // Advances to the next row; false when there is none. The first call executes.
  absl::StatusOr<bool> Step();
  // Executes a statement that returns no rows; returns how many rows it changed.
  absl::StatusOr<int> Run();

  std::string Text(int column) const { return std::string(TextView(column)); }
  // bytea columns.
  std::string Blob(int column) const;
  // Valid until the next Step, Run, Reset or the statement's end.
  std::string_view TextView(int column) const;
  // BIGINT, INTEGER or BOOLEAN ("t" is 1) columns; 0 for NULL.
  int64_t Int(int column) const;
  bool IsNull(int column) const;
  absl::Time Time(int column) const { return absl::FromUnixMicros(Int(column)); }
  std::optional<absl::Time> OptionalTime(int column) const {
    if (IsNull(column)) return std::nullopt;
    return Time(column);
  }

  void Reset();

 private:
  struct Param {
    std::string value;
    bool binary = false;
    bool null = true;
  };
  void Set(int index, std::string value, bool binary);
  absl::Status Execute();
  absl::Status ExecuteInSavepoint(int n, const char* const* values, const int* lengths,
                                  const int* formats);

  Connection* conn_;
  std::string name_;
  std::string_view what_;
  bool modifies_;
  size_t declared_;
  std::vector<Param> params_;
  absl::Status status_;
  Result result_;
  int row_ = -1;  // the current row of result_; -1 before the first Step
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

// One connection to the server and its prepared statements. Not thread-safe: the store hands
// each connection to one thread at a time.
class Connection {
 public:
  // `conninfo`: a postgres:// URL or key=value string (libpq). Opens it with ConnectWithKeepalives
  // and sets, on the server's end, the keepalives (ServerKeepaliveSettings), the time zone UTC, a
  // lock timeout of 30 s and an idle-in-transaction timeout of 10 s; refuses a server older than
  // PostgreSQL 13.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* raw() const { return conn_; }

  // The statement is prepared on the server on first use and kept for the connection's life;
  // `sql` keys the cache.
  absl::StatusOr<Statement> Prepare(std::string_view sql, std::string_view what);

  // Runs `sql` (one or more statements without parameters) and discards any rows.
  absl::Status Exec(std::string_view sql, std::string_view what = {});

  // Whether a transaction is open (or failed and not yet rolled back).
  bool InTransaction() const;
  void RollbackIfOpen();
  // Whether the connection is still usable; a broken one is reset (reconnect, statement cache
  // cleared) by Revive.
  bool Healthy() const;
  absl::Status Revive();

  // In SQLite a statement that fails (a unique key clash, say) leaves its transaction usable,
  // and callers rely on that: they insert, see kAlreadyExists and go on. A failed statement
  // aborts a PostgreSQL transaction, so while this is on, every modifying statement runs in
  // its own savepoint, rolled back when it fails. The store turns it on for write
  // transactions.
  void SetStatementSavepoints(bool on) { statement_savepoints_ = on; }
  bool statement_savepoints() const { return statement_savepoints_; }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  absl::Status SetUpSession();

  PGconn* conn_;
  struct Prepared {
    std::string name;
    bool modifies;
    int params;
  };
  std::unordered_map<std::string, Prepared> prepared_;  // by sql
  bool statement_savepoints_ = false;
};

}  // namespace custos::store::postgres
