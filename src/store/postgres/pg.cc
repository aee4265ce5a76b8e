#include "store/postgres/pg.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

namespace custos::store::postgres {
namespace {

// The server's primary message, without libpq's "ERROR:  " prefix and trailing newline.
std::string ServerMessage(PGconn* conn, const PGresult* result) {
  const char* primary =
      result != nullptr ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string message = primary != nullptr ? primary
                        : conn != nullptr  ? PQerrorMessage(conn)
                                           : "no connection";
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

}  // namespace

absl::Status ErrorFromResult(PGconn* conn, const PGresult* result, std::string_view what) {
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state != nullptr ? state : "";
  const std::string message = ServerMessage(conn, result);
  if (sqlstate == "23505") {
    return absl::AlreadyExistsError(fmt::format("{}: {}", what, message));
  }
  if (sqlstate == "23503") {
    return absl::NotFoundError(fmt::format("{}: refers to a row that does not exist", what));
  }
  if (sqlstate == "25006") {
    return absl::FailedPreconditionError(
        fmt::format("{}: cannot write in a read transaction ({})", what, message));
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" ||
      sqlstate.starts_with("08") || sqlstate == "57P01" ||
      (conn != nullptr && PQstatus(conn) != CONNECTION_OK)) {
    return absl::UnavailableError(fmt::format("{}: {}", what, message));
  }
  if (sqlstate.starts_with("22")) {
    return absl::InvalidArgumentError(fmt::format("{}: {}", what, message));
  }
  return absl::InternalError(
      fmt::format("{}: {} (postgres {})", what, message, sqlstate.empty() ? "?" : sqlstate));
}

int64_t CeilMicros(absl::Time t) {
  const int64_t floor = absl::ToUnixMicros(t);
  if (floor != std::numeric_limits<int64_t>::max() && absl::FromUnixMicros(floor) < t) {
    return floor + 1;
  }
  return floor;
}

// ---- Statement ----

void Statement::Set(int index, std::string value, bool binary) {
  if (index < 1) {
    if (status_.ok()) {
      status_ = absl::InternalError(fmt::format("{}: parameter index {} < 1", what_, index));
    }
    return;
  }
  if (params_.size() < static_cast<size_t>(index)) params_.resize(index);
  params_[index - 1] = Param{.value = std::move(value), .binary = binary, .null = false};
}

void Statement::BindNull(int index) {
  Set(index, std::string(), false);
  if (index >= 1) params_[index - 1].null = true;
}

absl::Status Statement::Execute() {
  RETURN_IF_ERROR(status_);
  if (params_.size() < declared_) params_.resize(declared_);
  std::vector<const char*> values(params_.size());
  std::vector<int> lengths(params_.size());
  std::vector<int> formats(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    values[i] = params_[i].null ? nullptr : params_[i].value.c_str();
    lengths[i] = static_cast<int>(params_[i].value.size());
    formats[i] = params_[i].binary ? 1 : 0;
  }
  const int n = static_cast<int>(params_.size());
  if (modifies_ && conn_->statement_savepoints()) {
    RETURN_IF_ERROR(ExecuteInSavepoint(n, values.data(), lengths.data(), formats.data()));
  } else {
    result_.reset(PQexecPrepared(conn_->raw(), name_.c_str(), n, values.data(), lengths.data(),
                                 formats.data(), 0));
    const ExecStatusType st = result_ ? PQresultStatus(result_.get()) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      absl::Status error = ErrorFromResult(conn_->raw(), result_.get(), what_);
      result_.reset();
      return error;
    }
  }
  row_ = -1;
  return absl::OkStatus();
}

// SAVEPOINT, the statement and RELEASE go out in one pipeline (libpq pipeline mode), so a
// modifying statement costs one round trip, not three. When the statement fails, the rest of
// the pipeline is skipped by the server, and one more round trip rolls back to the savepoint,
// which leaves the transaction usable, as SQLite's is after a failed statement.
absl::Status Statement::ExecuteInSavepoint(int n, const char* const* values, const int* lengths,
                                           const int* formats) {
  PGconn* conn = conn_->raw();
  if (PQenterPipelineMode(conn) != 1) return ErrorFromResult(conn, nullptr, what_);
  const bool sent = PQsendQueryParams(conn, "SAVEPOINT custos_statement", 0, nullptr, nullptr,
                                      nullptr, nullptr, 0) == 1 &&
                    PQsendQueryPrepared(conn, name_.c_str(), n, values, lengths, formats, 0) == 1 &&
                    PQsendQueryParams(conn, "RELEASE SAVEPOINT custos_statement", 0, nullptr,
                                      nullptr, nullptr, nullptr, 0) == 1 &&
                    PQpipelineSync(conn) == 1;
  // Each query's result is followed by a null; the sync's result ends the pipeline. Two nulls
  // in a row mean nothing more will come (the connection is gone).
  std::vector<Result> results;
  if (sent) {
    for (int nulls = 0; nulls < 2;) {
      Result r(PQgetResult(conn));
      if (!r) {
        ++nulls;
        continue;
      }
      nulls = 0;
      if (PQresultStatus(r.get()) == PGRES_PIPELINE_SYNC) break;
      results.push_back(std::move(r));
    }
  }
  if (PQexitPipelineMode(conn) != 1 || !sent || results.size() != 3) {
    return absl::UnavailableError(fmt::format("{}: the connection failed mid-statement: {}", what_,
                                              ServerMessage(conn, nullptr)));
  }
  auto ok = [](const Result& r) {
    const ExecStatusType st = PQresultStatus(r.get());
    return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
  };
  if (!ok(results[0])) return ErrorFromResult(conn, results[0].get(), what_);
  if (!ok(results[1])) {
    absl::Status error = ErrorFromResult(conn, results[1].get(), what_);
    RETURN_IF_ERROR(conn_->Exec(
        "ROLLBACK TO SAVEPOINT custos_statement; RELEASE SAVEPOINT custos_statement", what_));
    return error;
  }
  if (!ok(results[2])) return ErrorFromResult(conn, results[2].get(), what_);
  result_ = std::move(results[1]);
  return absl::OkStatus();
}

absl::StatusOr<bool> Statement::Step() {
  if (!result_) RETURN_IF_ERROR(Execute());
  ++row_;
  return row_ < PQntuples(result_.get());
}

absl::StatusOr<int> Statement::Run() {
  RETURN_IF_ERROR(Execute());
  if (PQntuples(result_.get()) > 0) {
    return absl::InternalError(fmt::format("{}: unexpected row", what_));
  }
  const char* tuples = PQcmdTuples(result_.get());
  int changed = 0;
  if (tuples != nullptr && *tuples != '\0') {
    std::from_chars(tuples, tuples + std::strlen(tuples), changed);
  }
  return changed;
}

std::string_view Statement::TextView(int column) const {
  if (!result_ || row_ < 0 || PQgetisnull(result_.get(), row_, column)) return {};
  return std::string_view(PQgetvalue(result_.get(), row_, column),
                          static_cast<size_t>(PQgetlength(result_.get(), row_, column)));
}

std::string Statement::Blob(int column) const {
  if (IsNull(column)) return std::string();
  size_t n = 0;
  unsigned char* bytes = PQunescapeBytea(
      reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, column)), &n);
  if (bytes == nullptr) return std::string();
  std::string out(reinterpret_cast<const char*>(bytes), n);
  PQfreemem(bytes);
  return out;
}

int64_t Statement::Int(int column) const {
  const std::string_view text = TextView(column);
  if (text.empty()) return 0;
  if (text == "t") return 1;
  if (text == "f") return 0;
  int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return value;
}

bool Statement::IsNull(int column) const {
  return !result_ || row_ < 0 || PQgetisnull(result_.get(), row_, column) != 0;
}

void Statement::Reset() {
  params_.assign(declared_, Param{});
  result_.reset();
  status_ = absl::OkStatus();
  row_ = -1;
}

// ---- Connection ----

PGconn* ConnectWithKeepalives(const std::string& conninfo, const char* application_name) {
  const std::string idle = std::to_string(kKeepaliveIdleSeconds);
  const std::string interval = std::to_string(kKeepaliveIntervalSeconds);
  const std::string count = std::to_string(kKeepaliveCount);
  const std::string user_timeout = std::to_string(kTcpUserTimeoutMillis);
  // `conninfo` goes last as "dbname" with expand_dbname set: what it names overrides these.
  const char* const keywords[] = {"keepalives",       "keepalives_idle",  "keepalives_interval",
                                  "keepalives_count", "tcp_user_timeout", "connect_timeout",
                                  "application_name", "dbname",           nullptr};
  const char* const values[] = {
      "1",  idle.c_str(),     interval.c_str(), count.c_str(), user_timeout.c_str(),
      "10", application_name, conninfo.c_str(), nullptr};
  return PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
}

std::string ServerKeepaliveSettings() {
  return fmt::format(
      "SET tcp_keepalives_idle = {}; SET tcp_keepalives_interval = {}; "
      "SET tcp_keepalives_count = {}; SET tcp_user_timeout = {}",
      kKeepaliveIdleSeconds, kKeepaliveIntervalSeconds, kKeepaliveCount, kTcpUserTimeoutMillis);
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  PGconn* conn = ConnectWithKeepalives(conninfo, "custos");
  if (conn == nullptr) return absl::UnavailableError("connecting to PostgreSQL: out of memory");
  auto owned = std::unique_ptr<Connection>(new Connection(conn));
  if (PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(
        fmt::format("connecting to PostgreSQL: {}", ServerMessage(conn, nullptr)));
  }
  if (PQserverVersion(conn) < 130000) {
    return absl::FailedPreconditionError(
        fmt::format("PostgreSQL {} is too old: Custos needs 13 or newer",
                    PQparameterStatus(conn, "server_version")));
  }
  RETURN_IF_ERROR(owned->SetUpSession());
  return owned;
}

Connection::~Connection() { PQfinish(conn_); }

absl::StatusOr<Statement> Connection::Prepare(std::string_view sql, std::string_view what) {
  auto it = prepared_.find(std::string(sql));
  if (it == prepared_.end()) {
    std::string name = fmt::format("s{}", prepared_.size() + 1);
    const std::string text(sql);
    // The highest $N: parameters never bound are sent as NULL. A number the text skips (a
    // statement built for a case that needs fewer parameters) is declared text, since the
    // server cannot infer a type for it; the others are inferred.
    std::vector<bool> used;
    for (size_t i = 0; i + 1 < text.size(); ++i) {
      if (text[i] != '$' || !std::isdigit(static_cast<unsigned char>(text[i + 1]))) continue;
      int n = 0;
      std::from_chars(text.data() + i + 1, text.data() + text.size(), n);
      if (n > static_cast<int>(used.size())) used.resize(n, false);
      if (n >= 1) used[n - 1] = true;
    }
    const int params = static_cast<int>(used.size());
    constexpr Oid kTextOid = 25;
    std::vector<Oid> types(used.size(), 0);
    for (size_t i = 0; i < used.size(); ++i) {
      if (!used[i]) types[i] = kTextOid;
    }
    Result result(PQprepare(conn_, name.c_str(), text.c_str(), params, types.data()));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
      return ErrorFromResult(conn_, result.get(), what);
    }
    size_t start = text.find_first_not_of(" \t\n(");
    std::string verb = text.substr(start == std::string::npos ? 0 : start, 6);
    for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const bool modifies = verb.starts_with("INSERT") || verb.starts_with("UPDATE") ||
                          verb.starts_with("DELETE") || verb.starts_with("WITH");
    it =
        prepared_
            .emplace(sql, Prepared{.name = std::move(name), .modifies = modifies, .params = params})
            .first;
  }
  return Statement(*this, it->second.name, what, it->second.modifies, it->second.params);
}

absl::Status Connection::Exec(std::string_view sql, std::string_view what) {
  const std::string text(sql);
  Result result(PQexec(conn_, text.c_str()));
  const ExecStatusType st = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return ErrorFromResult(conn_, result.get(), what.empty() ? sql : what);
  }
  return absl::OkStatus();
}

bool Connection::InTransaction() const {
  const PGTransactionStatusType st = PQtransactionStatus(conn_);
  return st == PQTRANS_INTRANS || st == PQTRANS_INERROR || st == PQTRANS_ACTIVE;
}

void Connection::RollbackIfOpen() {
  if (InTransaction()) Exec("ROLLBACK").IgnoreError();
}

bool Connection::Healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

absl::Status Connection::Revive() {
  prepared_.clear();
  PQreset(conn_);
  if (PQstatus(conn_) != CONNECTION_OK) {
    return absl::UnavailableError(
        fmt::format("reconnecting to PostgreSQL: {}", ServerMessage(conn_, nullptr)));
  }
  return SetUpSession();
}

absl::Status Connection::SetUpSession() {
  // A write waits at most lock_timeout for the store's write lock (then kUnavailable, worth a
  // retry) rather than forever behind a stuck process; and the server ends a session that sits
  // idle inside a transaction (a process stalled mid-write), so that its locks go with it. The
  // store runs each transaction in one go, statement after statement, with no waiting on
  // anything but the database inside it (no client I/O, no password hashing, no sleeping), so a
  // gap of 10 s between two statements only comes from a process that is stuck: the write lock
  // every other node is waiting for is freed after 10 s. A process that vanished altogether is
  // noticed by the keepalives within about as long.
  return Exec(fmt::format("{}; SET TIME ZONE 'UTC'; SET lock_timeout = '30s'; "
                          "SET idle_in_transaction_session_timeout = '10s'",
                          ServerKeepaliveSettings()),
              "setting up the session");
}

}  // namespace custos::store::postgres
