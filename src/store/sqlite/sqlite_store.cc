#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/sqlite/incident_repository.h"
#include "store/sqlite/migrations.h"
#include "store/sqlite/statement.h"

namespace custos::store {
namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr int64_t kMinInt64 = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

using sqlite::CeilMicros;
using sqlite::ErrorFromSqlite;
using sqlite::Micros;
using sqlite::ReadAll;
using sqlite::ReadOne;
using sqlite::Statement;

// One SQLite connection and its prepared statements. Not thread-safe: the store hands each
// connection to one thread at a time.
class Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, bool read_only,
                                                          bool synchronous_full, int cache_mib) {
    const int flags =
        (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      return absl::InternalError(fmt::format("opening {}: {}", path, message));
    }
    auto conn = std::unique_ptr<Connection>(new Connection(db));
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    if (!read_only) {
      ASSIGN_OR_RETURN(const std::string mode, conn->QueryText("PRAGMA journal_mode=WAL"));
      if (mode != "wal") {
        return absl::InternalError(
            fmt::format("opening {}: cannot switch to WAL mode (journal_mode is {})", path, mode));
      }
      RETURN_IF_ERROR(
          conn->Exec(synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    }
    RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys=ON"));
    // SQLite's default page cache (2 MiB) is far smaller than the indexes that appends touch;
    // pages outside it come back through the kernel on every statement.
    const int cache_kib = std::max(1, read_only ? cache_mib * 256 : cache_mib * 1024);
    const std::string pragma = fmt::format("PRAGMA cache_size=-{}", cache_kib);
    if (const int rc = sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr);
        rc != SQLITE_OK) {
      return ErrorFromSqlite(db, rc, "setting the page cache");
    }
    return conn;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() const { return db_; }

  // `sql` must have static storage duration: it keys the statement cache.
  absl::StatusOr<Statement> Prepare(std::string_view sql, std::string_view what) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return ErrorFromSqlite(db_, rc, what);
      it = cache_.emplace(sql, stmt).first;
    }
    return Statement(db_, it->second, what);
  }

  // For statements without parameters or results (BEGIN, COMMIT, pragmas).
  absl::Status Exec(std::string_view sql) {
    ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, sql));
    return stmt.Run().status();
  }

  // Copies the WAL into the database file and truncates the WAL. Best effort: a failure leaves
  // a valid WAL that the next open reads.
  void Checkpoint() {
    absl::StatusOr<Statement> stmt = Prepare("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint");
    if (stmt.ok()) stmt->Step().IgnoreError();
  }

  void RollbackIfOpen() {
    if (sqlite3_get_autocommit(db_) == 0) Exec("ROLLBACK").IgnoreError();
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  absl::StatusOr<std::string> QueryText(std::string_view sql) {
    ASSIGN_OR_RETURN(Statement stmt, Prepare(sql, sql));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::InternalError(fmt::format("{}: no result", sql));
    return stmt.Text(0);
  }

  sqlite3* db_;
  std::unordered_map<std::string_view, sqlite3_stmt*> cache_;
};

absl::Status CheckLimit(int limit) {
  if (limit > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("page limit must be positive, got {}", limit));
}

absl::Status RequireChanged(int changed, std::string_view what) {
  if (changed > 0) return absl::OkStatus();
  return absl::NotFoundError(fmt::format("{} not found", what));
}

class SqliteTenants final : public TenantRepository {
 public:
  explicit SqliteTenants(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const TenantRecord& tenant) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("INSERT INTO tenants (id, name, created, "
                                                   "log_public, support_policy) "
                                                   "VALUES (?1, ?2, ?3, ?4, ?5)",
                                                   "inserting tenant"));
    stmt.BindText(1, tenant.id.value());
    stmt.BindText(2, tenant.name);
    stmt.BindTime(3, tenant.created);
    stmt.BindInt(4, tenant.log_public ? 1 : 0);
    stmt.BindText(5, tenant.support_policy);
    return stmt.Run().status();
  }

  absl::StatusOr<TenantRecord> Get(const TenantId& id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare(
            "SELECT id, name, created, log_public, support_policy FROM tenants WHERE id = ?1",
            "reading tenant"));
    stmt.BindText(1, id.value());
    return One(stmt);
  }

  absl::StatusOr<TenantRecord> GetByName(std::string_view name) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare(
            "SELECT id, name, created, log_public, support_policy FROM tenants WHERE name = ?1",
            "reading tenant"));
    stmt.BindText(1, name);
    return One(stmt);
  }

  absl::StatusOr<std::vector<TenantRecord>> List() override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare(
            "SELECT id, name, created, log_public, support_policy FROM tenants ORDER BY id",
            "listing tenants"));
    std::vector<TenantRecord> tenants;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      tenants.push_back(Read(stmt));
    }
    return tenants;
  }

  absl::Status Update(const TenantRecord& tenant) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("UPDATE tenants SET log_public = ?2, support_policy = ?3 WHERE id = ?1",
                      "updating tenant"));
    stmt.BindText(1, tenant.id.value());
    stmt.BindInt(2, tenant.log_public ? 1 : 0);
    stmt.BindText(3, tenant.support_policy);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "tenant");
  }

 private:
  static TenantRecord Read(const Statement& stmt) {
    return TenantRecord{.id = TenantId(stmt.Text(0)),
                        .name = stmt.Text(1),
                        .created = stmt.Time(2),
                        .log_public = stmt.Int(3) != 0,
                        .support_policy = stmt.Text(4)};
  }
  static absl::StatusOr<TenantRecord> One(Statement& stmt) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("tenant not found");
    return Read(stmt);
  }

  Connection& conn_;
};

class SqliteApiTokens final : public ApiTokenRepository {
 public:
  explicit SqliteApiTokens(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const ApiTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO api_tokens (tenant_id, id, name, token_hash, "
                                   "created, last_used, scope) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                   "inserting api token"));
    stmt.BindText(1, token.tenant_id.value());
    stmt.BindText(2, token.id.value());
    stmt.BindText(3, token.name);
    stmt.BindText(4, token.token_hash);
    stmt.BindTime(5, token.created);
    stmt.BindTime(6, token.last_used);
    stmt.BindText(7, token.scope);
    return stmt.Run().status();
  }

  absl::StatusOr<ApiTokenRecord> FindByHash(const TenantId& tenant,
                                            std::string_view token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, name, token_hash, created, last_used, "
                                   "scope FROM api_tokens WHERE tenant_id = ?1 AND token_hash = ?2",
                                   "reading api token"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, token_hash);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("api token not found");
    return ApiTokenRecord{.id = ApiTokenId(stmt.Text(1)),
                          .tenant_id = TenantId(stmt.Text(0)),
                          .name = stmt.Text(2),
                          .token_hash = stmt.Text(3),
                          .created = stmt.Time(4),
                          .last_used = stmt.OptionalTime(5),
                          .scope = stmt.Text(6)};
  }

  absl::Status TouchLastUsed(const TenantId& tenant, const ApiTokenId& id,
                             absl::Time when) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("UPDATE api_tokens SET last_used = ?3 WHERE tenant_id = ?1 AND id = ?2",
                      "updating api token"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    stmt.BindTime(3, when);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "api token");
  }

 private:
  Connection& conn_;
};

class SqliteUsers final : public UserRepository {
 public:
  explicit SqliteUsers(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const UserRecord& user) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO users (tenant_id, id, status, login, profile_json, "
                      "password_hash, created, activated, status_changed, last_login, "
                      "last_updated, password_changed, failed_sign_ins, recovery_token_hash, "
                      "recovery_expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "
                      "?12, ?13, ?14, ?15)",
                      "inserting user"));
    Bind(stmt, user);
    return stmt.Run().status();
  }

  absl::Status Update(const UserRecord& user) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("UPDATE users SET status = ?3, login = ?4, profile_json = ?5, "
                      "password_hash = ?6, created = ?7, activated = ?8, status_changed = ?9, "
                      "last_login = ?10, last_updated = ?11, password_changed = ?12, "
                      "failed_sign_ins = ?13, recovery_token_hash = ?14, recovery_expires = ?15 "
                      "WHERE tenant_id = ?1 AND id = ?2",
                      "updating user"));
    Bind(stmt, user);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "user");
  }

  absl::Status Delete(const TenantId& tenant, const UserId& id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM users WHERE tenant_id = ?1 AND id = ?2", "deleting user"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "user");
  }

  absl::StatusOr<UserRecord> Get(const TenantId& tenant, const UserId& id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, status, login, profile_json, "
                                   "password_hash, created, activated, status_changed, "
                                   "last_login, last_updated, password_changed, failed_sign_ins, "
                                   "recovery_token_hash, recovery_expires FROM users "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "reading user"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    return One(stmt);
  }

  absl::StatusOr<UserRecord> GetByLogin(const TenantId& tenant, std::string_view login) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, status, login, profile_json, "
                                   "password_hash, created, activated, status_changed, "
                                   "last_login, last_updated, password_changed, failed_sign_ins, "
                                   "recovery_token_hash, recovery_expires FROM users "
                                   "WHERE tenant_id = ?1 AND login = ?2 COLLATE NOCASE",
                                   "reading user by login"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, login);
    return One(stmt);
  }

  absl::StatusOr<UserRecord> FindByRecoveryTokenHash(const TenantId& tenant,
                                                     std::string_view token_hash) override {
    if (token_hash.empty()) return absl::NotFoundError("no recovery token given");
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, status, login, profile_json, "
                                   "password_hash, created, activated, status_changed, "
                                   "last_login, last_updated, password_changed, failed_sign_ins, "
                                   "recovery_token_hash, recovery_expires FROM users "
                                   "WHERE tenant_id = ?1 AND recovery_token_hash = ?2 "
                                   "AND recovery_token_hash <> ''",
                                   "reading user by recovery token"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, token_hash);
    return One(stmt);
  }

  absl::StatusOr<std::vector<UserRecord>> List(const TenantId& tenant, const Page& page) override {
    RETURN_IF_ERROR(CheckLimit(page.limit));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, status, login, profile_json, "
                                   "password_hash, created, activated, status_changed, "
                                   "last_login, last_updated, password_changed, failed_sign_ins, "
                                   "recovery_token_hash, recovery_expires FROM users "
                                   "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                                   "listing users"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, page.after);
    stmt.BindInt(3, page.limit);
    std::vector<UserRecord> users;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      users.push_back(Read(stmt));
    }
    return users;
  }

  absl::StatusOr<int64_t> Count(const TenantId& tenant) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT COUNT(*) FROM users WHERE tenant_id = ?1", "counting users"));
    stmt.BindText(1, tenant.value());
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    return row ? stmt.Int(0) : 0;
  }

 private:
  static void Bind(Statement& stmt, const UserRecord& user) {
    stmt.BindText(1, user.tenant_id.value());
    stmt.BindText(2, user.id.value());
    stmt.BindText(3, user.status);
    stmt.BindText(4, user.login);
    stmt.BindText(5, user.profile_json);
    stmt.BindText(6, user.password_hash);
    stmt.BindTime(7, user.created);
    stmt.BindTime(8, user.activated);
    stmt.BindTime(9, user.status_changed);
    stmt.BindTime(10, user.last_login);
    stmt.BindTime(11, user.last_updated);
    stmt.BindTime(12, user.password_changed);
    stmt.BindInt(13, user.failed_sign_ins);
    stmt.BindText(14, user.recovery_token_hash);
    stmt.BindTime(15, user.recovery_expires);
  }
  static UserRecord Read(const Statement& stmt) {
    return UserRecord{.id = UserId(stmt.Text(1)),
                      .tenant_id = TenantId(stmt.Text(0)),
                      .status = stmt.Text(2),
                      .login = stmt.Text(3),
                      .profile_json = stmt.Text(4),
                      .password_hash = stmt.Text(5),
                      .created = stmt.Time(6),
                      .activated = stmt.OptionalTime(7),
                      .status_changed = stmt.Time(8),
                      .last_login = stmt.OptionalTime(9),
                      .last_updated = stmt.Time(10),
                      .password_changed = stmt.OptionalTime(11),
                      .failed_sign_ins = static_cast<int>(stmt.Int(12)),
                      .recovery_token_hash = stmt.Text(13),
                      .recovery_expires = stmt.OptionalTime(14)};
  }
  static absl::StatusOr<UserRecord> One(Statement& stmt) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("user not found");
    return Read(stmt);
  }

  Connection& conn_;
};

class SqliteGroups final : public GroupRepository {
 public:
  explicit SqliteGroups(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const GroupRecord& group) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO groups (tenant_id, id, name, description, created, "
                                   "last_updated, last_membership_updated) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                   "inserting group"));
    Bind(stmt, group);
    return stmt.Run().status();
  }

  absl::Status Update(const GroupRecord& group) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE groups SET name = ?3, description = ?4, created = ?5, "
                                   "last_updated = ?6, last_membership_updated = ?7 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating group"));
    Bind(stmt, group);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "group");
  }

  absl::Status Delete(const TenantId& tenant, const GroupId& id) override {
    // Memberships go with the group (ON DELETE CASCADE).
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM groups WHERE tenant_id = ?1 AND id = ?2", "deleting group"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "group");
  }

  absl::StatusOr<GroupRecord> Get(const TenantId& tenant, const GroupId& id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, name, description, created, "
                                   "last_updated, last_membership_updated FROM groups "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "reading group"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("group not found");
    return Read(stmt);
  }

  absl::StatusOr<std::vector<GroupRecord>> List(const TenantId& tenant, const Page& page) override {
    RETURN_IF_ERROR(CheckLimit(page.limit));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, name, description, created, "
                                   "last_updated, last_membership_updated FROM groups "
                                   "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                                   "listing groups"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, page.after);
    stmt.BindInt(3, page.limit);
    std::vector<GroupRecord> groups;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      groups.push_back(Read(stmt));
    }
    return groups;
  }

  absl::Status AddMember(const TenantId& tenant, const GroupId& group,
                         const UserId& user) override {
    // ON CONFLICT makes a repeated add a no-op; a missing group or user still fails its foreign
    // key, which ON CONFLICT does not cover.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO group_members (tenant_id, group_id, user_id) "
                                   "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                                   "adding group member"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, group.value());
    stmt.BindText(3, user.value());
    return stmt.Run().status();
  }

  absl::Status RemoveMember(const TenantId& tenant, const GroupId& group,
                            const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM group_members "
                                   "WHERE tenant_id = ?1 AND group_id = ?2 AND user_id = ?3",
                                   "removing group member"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, group.value());
    stmt.BindText(3, user.value());
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "group membership");
  }

  absl::StatusOr<std::vector<UserId>> ListMembers(const TenantId& tenant, const GroupId& group,
                                                  const Page& page) override {
    RETURN_IF_ERROR(CheckLimit(page.limit));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT user_id FROM group_members WHERE tenant_id = ?1 AND "
                                   "group_id = ?2 AND user_id > ?3 ORDER BY user_id LIMIT ?4",
                                   "listing group members"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, group.value());
    stmt.BindText(3, page.after);
    stmt.BindInt(4, page.limit);
    std::vector<UserId> users;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      users.emplace_back(stmt.Text(0));
    }
    return users;
  }

  absl::StatusOr<std::vector<GroupId>> ListGroupsOfUser(const TenantId& tenant,
                                                        const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT group_id FROM group_members "
                                   "WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY group_id",
                                   "listing groups of user"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    std::vector<GroupId> groups;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      groups.emplace_back(stmt.Text(0));
    }
    return groups;
  }

  absl::Status RemoveUserFromAll(const TenantId& tenant, const UserId& user) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM group_members WHERE tenant_id = ?1 AND user_id = ?2",
                      "removing user from groups"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    return stmt.Run().status();
  }

 private:
  static void Bind(Statement& stmt, const GroupRecord& group) {
    stmt.BindText(1, group.tenant_id.value());
    stmt.BindText(2, group.id.value());
    stmt.BindText(3, group.name);
    stmt.BindText(4, group.description);
    stmt.BindTime(5, group.created);
    stmt.BindTime(6, group.last_updated);
    stmt.BindTime(7, group.last_membership_updated);
  }
  static GroupRecord Read(const Statement& stmt) {
    return GroupRecord{.id = GroupId(stmt.Text(1)),
                       .tenant_id = TenantId(stmt.Text(0)),
                       .name = stmt.Text(2),
                       .description = stmt.Text(3),
                       .created = stmt.Time(4),
                       .last_updated = stmt.Time(5),
                       .last_membership_updated = stmt.Time(6)};
  }

  Connection& conn_;
};

class SqliteFactors final : public FactorRepository {
 public:
  explicit SqliteFactors(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const FactorRecord& factor) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO factors (tenant_id, id, user_id, factor_type, "
                                   "provider, status, sealed_secret, last_used_step, created, "
                                   "last_updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                   "inserting factor"));
    Bind(stmt, factor);
    return stmt.Run().status();
  }

  absl::Status Update(const FactorRecord& factor) override {
    // A factor never moves to another user: the user is part of the key here.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE factors SET factor_type = ?4, provider = ?5, "
                                   "status = ?6, sealed_secret = ?7, last_used_step = ?8, "
                                   "created = ?9, last_updated = ?10 "
                                   "WHERE tenant_id = ?1 AND id = ?2 AND user_id = ?3",
                                   "updating factor"));
    Bind(stmt, factor);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "factor");
  }

  absl::Status Delete(const TenantId& tenant, const FactorId& id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM factors WHERE tenant_id = ?1 AND id = ?2", "deleting factor"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "factor");
  }

  absl::StatusOr<FactorRecord> Get(const TenantId& tenant, const UserId& user,
                                   const FactorId& id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, user_id, factor_type, provider, status, "
                                   "sealed_secret, last_used_step, created, last_updated "
                                   "FROM factors WHERE tenant_id = ?1 AND user_id = ?2 AND id = ?3",
                                   "reading factor"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    stmt.BindText(3, id.value());
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("factor not found");
    return Read(stmt);
  }

  absl::StatusOr<std::vector<FactorRecord>> ListForUser(const TenantId& tenant,
                                                        const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, user_id, factor_type, provider, status, "
                                   "sealed_secret, last_used_step, created, last_updated "
                                   "FROM factors WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY id",
                                   "listing factors"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    std::vector<FactorRecord> factors;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      factors.push_back(Read(stmt));
    }
    return factors;
  }

  absl::StatusOr<int> DeleteAllForUser(const TenantId& tenant, const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM factors WHERE tenant_id = ?1 AND user_id = ?2",
                                   "deleting factors"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    return stmt.Run();
  }

 private:
  static void Bind(Statement& stmt, const FactorRecord& factor) {
    stmt.BindText(1, factor.tenant_id.value());
    stmt.BindText(2, factor.id.value());
    stmt.BindText(3, factor.user_id.value());
    stmt.BindText(4, factor.factor_type);
    stmt.BindText(5, factor.provider);
    stmt.BindText(6, factor.status);
    stmt.BindBlob(7, factor.sealed_secret);
    stmt.BindInt(8, factor.last_used_step);
    stmt.BindTime(9, factor.created);
    stmt.BindTime(10, factor.last_updated);
  }
  static FactorRecord Read(const Statement& stmt) {
    return FactorRecord{.id = FactorId(stmt.Text(1)),
                        .tenant_id = TenantId(stmt.Text(0)),
                        .user_id = UserId(stmt.Text(2)),
                        .factor_type = stmt.Text(3),
                        .provider = stmt.Text(4),
                        .status = stmt.Text(5),
                        .sealed_secret = stmt.Blob(6),
                        .last_used_step = stmt.Int(7),
                        .created = stmt.Time(8),
                        .last_updated = stmt.Time(9)};
  }

  Connection& conn_;
};

class SqliteSessions final : public SessionRepository {
 public:
  explicit SqliteSessions(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const SessionRecord& session) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO sessions (tenant_id, id, user_id, token_hash, "
                                   "created, last_active, expires, amr, ip_address, user_agent) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                   "inserting session"));
    stmt.BindText(1, session.tenant_id.value());
    stmt.BindText(2, session.id.value());
    stmt.BindText(3, session.user_id.value());
    stmt.BindText(4, session.token_hash);
    stmt.BindTime(5, session.created);
    stmt.BindTime(6, session.last_active);
    stmt.BindTime(7, session.expires);
    stmt.BindText(8, session.amr);
    stmt.BindText(9, session.ip_address);
    stmt.BindText(10, session.user_agent);
    return stmt.Run().status();
  }

  absl::StatusOr<SessionRecord> FindByHash(const TenantId& tenant,
                                           std::string_view token_hash) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT tenant_id, id, user_id, token_hash, created, "
                      "last_active, expires, amr, ip_address, user_agent FROM sessions "
                      "WHERE tenant_id = ?1 AND token_hash = ?2",
                      "reading session"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, token_hash);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("session not found");
    return Row(stmt);
  }

  absl::StatusOr<SessionRecord> Get(const TenantId& tenant, const SessionId& id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("SELECT tenant_id, id, user_id, token_hash, created, "
                      "last_active, expires, amr, ip_address, user_agent FROM sessions "
                      "WHERE tenant_id = ?1 AND id = ?2",
                      "reading session"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("session not found");
    return Row(stmt);
  }

  absl::Status Touch(const TenantId& tenant, const SessionId& id, absl::Time when) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("UPDATE sessions SET last_active = ?3 WHERE tenant_id = ?1 AND id = ?2",
                      "touching session"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    stmt.BindTime(3, when);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "session");
  }

  absl::Status Delete(const TenantId& tenant, const SessionId& id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM sessions WHERE tenant_id = ?1 AND id = ?2", "deleting session"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id.value());
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "session");
  }

  absl::StatusOr<int> DeleteAllForUser(const TenantId& tenant, const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM sessions WHERE tenant_id = ?1 AND user_id = ?2",
                                   "deleting sessions"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    return stmt.Run();
  }

  absl::StatusOr<int> DeleteExpired(const TenantId& tenant, absl::Time now,
                                    absl::Time idle_cutoff) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("DELETE FROM sessions WHERE tenant_id = ?1 "
                                                   "AND (expires <= ?2 OR last_active < ?3)",
                                                   "deleting expired sessions"));
    stmt.BindText(1, tenant.value());
    stmt.BindTime(2, now);
    stmt.BindTime(3, idle_cutoff);
    return stmt.Run();
  }

 private:
  // A row of the SELECT in FindByHash and Get.
  static SessionRecord Row(Statement& stmt) {
    return SessionRecord{.id = SessionId(stmt.Text(1)),
                         .tenant_id = TenantId(stmt.Text(0)),
                         .user_id = UserId(stmt.Text(2)),
                         .token_hash = stmt.Text(3),
                         .created = stmt.Time(4),
                         .last_active = stmt.Time(5),
                         .expires = stmt.Time(6),
                         .amr = stmt.Text(7),
                         .ip_address = stmt.Text(8),
                         .user_agent = stmt.Text(9)};
  }

  Connection& conn_;
};

class SqliteAuthnTransactions final : public AuthnTransactionRepository {
 public:
  explicit SqliteAuthnTransactions(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const AuthnTransactionRecord& txn) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO authn_transactions (tenant_id, id, user_id, "
                                   "state_token_hash, created, expires) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                   "inserting authn transaction"));
    stmt.BindText(1, txn.tenant_id.value());
    stmt.BindText(2, txn.id);
    stmt.BindText(3, txn.user_id.value());
    stmt.BindText(4, txn.state_token_hash);
    stmt.BindTime(5, txn.created);
    stmt.BindTime(6, txn.expires);
    return stmt.Run().status();
  }

  absl::StatusOr<AuthnTransactionRecord> FindByHash(const TenantId& tenant,
                                                    std::string_view state_token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, user_id, state_token_hash, created, "
                                   "expires FROM authn_transactions "
                                   "WHERE tenant_id = ?1 AND state_token_hash = ?2",
                                   "reading authn transaction"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, state_token_hash);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("authn transaction not found");
    return AuthnTransactionRecord{.id = stmt.Text(1),
                                  .tenant_id = TenantId(stmt.Text(0)),
                                  .user_id = UserId(stmt.Text(2)),
                                  .state_token_hash = stmt.Text(3),
                                  .created = stmt.Time(4),
                                  .expires = stmt.Time(5)};
  }

  absl::Status Delete(const TenantId& tenant, std::string_view id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM authn_transactions WHERE tenant_id = ?1 AND id = ?2",
                      "deleting authn transaction"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "authn transaction");
  }

  absl::StatusOr<int> DeleteExpired(const TenantId& tenant, absl::Time now) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM authn_transactions WHERE tenant_id = ?1 "
                                   "AND expires <= ?2",
                                   "deleting expired authn transactions"));
    stmt.BindText(1, tenant.value());
    stmt.BindTime(2, now);
    return stmt.Run();
  }

 private:
  Connection& conn_;
};

// Event reads select these columns, in this order: seq, tenant_id, uuid, published, event_type,
// json, log_index (NULL while the event has no position).
EventRecord ReadEvent(const Statement& stmt) {
  EventRecord event{.seq = stmt.Int(0),
                    .tenant_id = TenantId(stmt.Text(1)),
                    .uuid = stmt.Text(2),
                    .published = stmt.Time(3),
                    .event_type = stmt.Text(4),
                    .json = stmt.Text(5)};
  if (!stmt.IsNull(6)) event.log_index = static_cast<uint64_t>(stmt.Int(6));
  return event;
}

// Log indexes and sizes are SQLite INTEGERs, which are signed: a larger value cannot be stored.
bool FitsSql(uint64_t value) { return value <= static_cast<uint64_t>(kMaxInt64); }

absl::StatusOr<int64_t> ToSql(uint64_t value, std::string_view what) {
  if (FitsSql(value)) return static_cast<int64_t>(value);
  return absl::InvalidArgumentError(fmt::format("{} {} is out of range", what, value));
}

class SqliteEvents final : public EventRepository {
 public:
  explicit SqliteEvents(Connection& conn) : conn_(conn) {}

  absl::StatusOr<int64_t> Append(const EventRecord& event) override {
    if (event.json.size() > kMaxEventBytes) {
      return absl::InvalidArgumentError(
          fmt::format("appending event: {} bytes, more than a log entry may hold ({})",
                      event.json.size(), kMaxEventBytes));
    }
    // events has no foreign key to tenants, since the provider log has no tenant row; the
    // SELECT inserts nothing for a tenant that is neither.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO events (tenant_id, uuid, published, event_type, "
                                   "json, leaf_hash) SELECT ?1, ?2, ?3, ?4, ?5, ?7 WHERE ?1 = ?6 "
                                   "OR EXISTS (SELECT 1 FROM tenants WHERE id = ?1)",
                                   "appending event"));
    stmt.BindText(1, event.tenant_id.value());
    stmt.BindText(2, event.uuid);
    stmt.BindTime(3, event.published);
    stmt.BindText(4, event.event_type);
    stmt.BindText(5, event.json);
    stmt.BindText(6, kProviderLogId);
    if (!event.leaf_hash.empty()) stmt.BindBlob(7, event.leaf_hash);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    if (changed == 0) {
      return absl::NotFoundError("appending event: refers to a row that does not exist");
    }
    // seq is the rowid; AUTOINCREMENT keeps it from reusing a committed value.
    return static_cast<int64_t>(sqlite3_last_insert_rowid(conn_.db()));
  }

  absl::StatusOr<std::vector<EventRecord>> Query(const TenantId& tenant,
                                                 const EventQuery& query) override {
    RETURN_IF_ERROR(CheckLimit(query.limit));
    // Bounds become inclusive integer ranges so that one statement per direction serves every
    // combination of filters: published >= since  <=>  published >= ceil(since), and
    // published < until  <=>  published <= ceil(until) - 1.
    const int64_t since = query.since.has_value() ? CeilMicros(*query.since) : kMinInt64;
    int64_t until_inclusive = kMaxInt64;
    if (query.until.has_value()) {
      const int64_t until = CeilMicros(*query.until);
      if (until == kMinInt64) return std::vector<EventRecord>();
      until_inclusive = until - 1;
    }
    const int64_t after = query.after_seq.value_or(query.descending ? kMaxInt64 : kMinInt64);
    ASSIGN_OR_RETURN(
        Statement stmt,
        query.descending
            ? conn_.Prepare("SELECT e.seq, e.tenant_id, e.uuid, e.published, e.event_type, "
                            "e.json, l.log_index FROM events e "
                            "LEFT JOIN log_entries l ON l.seq = e.seq "
                            "WHERE e.tenant_id = ?1 AND e.seq < ?2 AND e.published >= ?3 AND "
                            "e.published <= ?4 AND (?6 = '' OR e.event_type = ?6) "
                            "ORDER BY e.seq DESC LIMIT ?5",
                            "querying events")
            : conn_.Prepare("SELECT e.seq, e.tenant_id, e.uuid, e.published, e.event_type, "
                            "e.json, l.log_index FROM events e "
                            "LEFT JOIN log_entries l ON l.seq = e.seq "
                            "WHERE e.tenant_id = ?1 AND e.seq > ?2 AND e.published >= ?3 AND "
                            "e.published <= ?4 AND (?6 = '' OR e.event_type = ?6) "
                            "ORDER BY e.seq ASC LIMIT ?5",
                            "querying events"));
    stmt.BindText(1, tenant.value());
    stmt.BindInt(2, after);
    stmt.BindInt(3, since);
    stmt.BindInt(4, until_inclusive);
    stmt.BindInt(5, query.limit);
    stmt.BindText(6, query.event_type);
    std::vector<EventRecord> events;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      events.push_back(ReadEvent(stmt));
    }
    return events;
  }

 private:
  Connection& conn_;
};

class SqliteProviderTokens final : public ProviderTokenRepository {
 public:
  explicit SqliteProviderTokens(Connection& conn) : conn_(conn) {}

  absl::Status Insert(const ProviderTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO provider_tokens (id, name, token_hash, created) "
                                   "VALUES (?1, ?2, ?3, ?4)",
                                   "inserting provider token"));
    stmt.BindText(1, token.id);
    stmt.BindText(2, token.name);
    stmt.BindText(3, token.token_hash);
    stmt.BindTime(4, token.created);
    return stmt.Run().status();
  }

  absl::StatusOr<ProviderTokenRecord> FindByHash(std::string_view token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, name, token_hash, created FROM provider_tokens "
                                   "WHERE token_hash = ?1",
                                   "reading provider token"));
    stmt.BindText(1, token_hash);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("provider token not found");
    return ProviderTokenRecord{.id = stmt.Text(0),
                               .name = stmt.Text(1),
                               .token_hash = stmt.Text(2),
                               .created = stmt.Time(3)};
  }

 private:
  Connection& conn_;
};

class SqliteLogs final : public LogRepository {
 public:
  explicit SqliteLogs(Connection& conn) : conn_(conn) {}

  // Ordering by seq is commit order: the store commits one transaction at a time, and seq grows
  // with every append (within a group too, in the order its callbacks run), so no event with a
  // smaller seq can commit after a larger one is seen.
  absl::StatusOr<std::vector<EventRecord>> Unsequenced(int limit) override {
    RETURN_IF_ERROR(CheckLimit(limit));
    // The json only of events without a leaf hash: the sequencer needs nothing else.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT seq, tenant_id, uuid, published, event_type, "
                                   "CASE WHEN leaf_hash IS NULL THEN json ELSE '' END, NULL, "
                                   "leaf_hash FROM events WHERE seq > (SELECT sequenced_seq FROM "
                                   "log_outbox WHERE id = 1) ORDER BY seq LIMIT ?1",
                                   "reading the log outbox"));
    stmt.BindInt(1, limit);
    std::vector<EventRecord> events;
    events.reserve(static_cast<size_t>(std::min(limit, kMaxReserve)));
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      EventRecord event = ReadEvent(stmt);
      if (!stmt.IsNull(7)) event.leaf_hash = stmt.Blob(7);
      events.push_back(std::move(event));
    }
    return events;
  }

  absl::Status AddEntries(const std::vector<LogEntryRef>& entries) override {
    if (entries.empty()) return absl::OkStatus();
    if (entries.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
      return absl::InvalidArgumentError("too many log entries in one call");
    }
    RETURN_IF_ERROR(CheckIsOutboxPrefix(entries));
    // A savepoint makes the call all-or-nothing even when the caller goes on with its
    // transaction after an error (an index clash is only found while inserting).
    RETURN_IF_ERROR(conn_.Exec("SAVEPOINT add_log_entries"));
    absl::Status status = InsertEntries(entries);
    if (!status.ok()) {
      conn_.Exec("ROLLBACK TO add_log_entries").IgnoreError();
    }
    const absl::Status released = conn_.Exec("RELEASE add_log_entries");
    if (status.ok()) status = released;
    return status;
  }

  absl::StatusOr<std::vector<EventRecord>> Entries(std::string_view log_id, uint64_t first,
                                                   int count) override {
    RETURN_IF_ERROR(CheckLimit(count));
    std::vector<EventRecord> events;
    if (!FitsSql(first)) return events;
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT e.seq, e.tenant_id, e.uuid, e.published, e.event_type, "
                                   "e.json, l.log_index FROM log_entries l "
                                   "JOIN events e ON e.seq = l.seq WHERE l.log_id = ?1 AND "
                                   "l.log_index >= ?2 ORDER BY l.log_index LIMIT ?3",
                                   "reading log entries"));
    stmt.BindText(1, log_id);
    stmt.BindInt(2, static_cast<int64_t>(first));
    stmt.BindInt(3, count);
    events.reserve(static_cast<size_t>(std::min(count, kMaxReserve)));
    uint64_t expected = first;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row || static_cast<uint64_t>(stmt.Int(6)) != expected) break;
      events.push_back(ReadEvent(stmt));
      ++expected;
    }
    return events;
  }

  absl::StatusOr<EventRecord> FindEvent(std::string_view log_id, std::string_view uuid) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT e.seq, e.tenant_id, e.uuid, e.published, e.event_type, "
                                   "e.json, l.log_index FROM events e "
                                   "LEFT JOIN log_entries l ON l.seq = e.seq "
                                   "WHERE e.uuid = ?2 AND e.tenant_id = ?1",
                                   "reading log event"));
    stmt.BindText(1, log_id);
    stmt.BindText(2, uuid);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("event not found");
    return ReadEvent(stmt);
  }

  absl::Status PutTile(const LogTileRecord& tile) override {
    ASSIGN_OR_RETURN(const int64_t index, ToSql(tile.index, "tile index"));
    // An upsert rewrites the row in place; INSERT OR REPLACE would delete and reinsert it.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO log_tiles (log_id, level, idx, width, data) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (log_id, level, idx) "
                                   "DO UPDATE SET width = excluded.width, data = excluded.data",
                                   "writing log tile"));
    stmt.BindText(1, tile.log_id);
    stmt.BindInt(2, tile.level);
    stmt.BindInt(3, index);
    stmt.BindInt(4, tile.width);
    stmt.BindBlob(5, tile.data);
    return stmt.Run().status();
  }

  absl::StatusOr<LogTileRecord> GetTile(std::string_view log_id, int level,
                                        uint64_t index) override {
    if (!FitsSql(index)) return absl::NotFoundError("log tile not found");
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("SELECT width, data FROM log_tiles "
                                                   "WHERE log_id = ?1 AND level = ?2 AND idx = ?3",
                                                   "reading log tile"));
    stmt.BindText(1, log_id);
    stmt.BindInt(2, level);
    stmt.BindInt(3, static_cast<int64_t>(index));
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("log tile not found");
    return LogTileRecord{.log_id = std::string(log_id),
                         .level = level,
                         .index = index,
                         .width = static_cast<int>(stmt.Int(0)),
                         .data = stmt.Blob(1)};
  }

  absl::StatusOr<LogStateRecord> GetState(std::string_view log_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT log_id, origin, size, root_hash, updated "
                                   "FROM log_states WHERE log_id = ?1",
                                   "reading log state"));
    stmt.BindText(1, log_id);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("log state not found");
    return ReadState(stmt);
  }

  absl::Status PutState(const LogStateRecord& state) override {
    ASSIGN_OR_RETURN(const int64_t size, ToSql(state.size, "log size"));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO log_states (log_id, origin, size, root_hash, "
                                   "updated) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (log_id) "
                                   "DO UPDATE SET origin = excluded.origin, size = excluded.size, "
                                   "root_hash = excluded.root_hash, updated = excluded.updated",
                                   "writing log state"));
    stmt.BindText(1, state.log_id);
    stmt.BindText(2, state.origin);
    stmt.BindInt(3, size);
    stmt.BindBlob(4, state.root_hash);
    stmt.BindTime(5, state.updated);
    return stmt.Run().status();
  }

  absl::StatusOr<std::vector<LogStateRecord>> ListStates() override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT log_id, origin, size, root_hash, updated "
                                   "FROM log_states ORDER BY log_id",
                                   "listing log states"));
    std::vector<LogStateRecord> states;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      states.push_back(ReadState(stmt));
    }
    return states;
  }

  absl::Status PutCheckpoint(const CheckpointRecord& checkpoint) override {
    ASSIGN_OR_RETURN(const int64_t size, ToSql(checkpoint.size, "checkpoint size"));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO log_checkpoints (log_id, size, root_hash, note, "
                                   "key_id, signed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                   "inserting checkpoint"));
    stmt.BindText(1, checkpoint.log_id);
    stmt.BindInt(2, size);
    stmt.BindBlob(3, checkpoint.root_hash);
    stmt.BindText(4, checkpoint.note);
    stmt.BindText(5, checkpoint.key_id);
    stmt.BindTime(6, checkpoint.signed_at);
    return stmt.Run().status();
  }

  absl::StatusOr<CheckpointRecord> LatestCheckpoint(std::string_view log_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT log_id, size, root_hash, note, key_id, signed_at "
                                   "FROM log_checkpoints WHERE log_id = ?1 "
                                   "ORDER BY size DESC LIMIT 1",
                                   "reading the latest checkpoint"));
    stmt.BindText(1, log_id);
    return OneCheckpoint(stmt);
  }

  absl::StatusOr<CheckpointRecord> GetCheckpoint(std::string_view log_id, uint64_t size) override {
    if (!FitsSql(size)) return absl::NotFoundError("checkpoint not found");
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT log_id, size, root_hash, note, key_id, signed_at "
                                   "FROM log_checkpoints WHERE log_id = ?1 AND size = ?2",
                                   "reading checkpoint"));
    stmt.BindText(1, log_id);
    stmt.BindInt(2, static_cast<int64_t>(size));
    return OneCheckpoint(stmt);
  }

  absl::Status InsertKey(const LogKeyRecord& key) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO log_keys (id, name, public_key, sealed_seed, "
                                   "created, retired) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                   "inserting log key"));
    stmt.BindText(1, key.id);
    stmt.BindText(2, key.name);
    stmt.BindBlob(3, key.public_key);
    stmt.BindBlob(4, key.sealed_seed);
    stmt.BindTime(5, key.created);
    stmt.BindTime(6, key.retired);
    return stmt.Run().status();
  }

  absl::StatusOr<std::vector<LogKeyRecord>> ListKeys() override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, name, public_key, sealed_seed, created, retired "
                                   "FROM log_keys ORDER BY created, id",
                                   "listing log keys"));
    std::vector<LogKeyRecord> keys;
    while (true) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) break;
      keys.push_back(LogKeyRecord{.id = stmt.Text(0),
                                  .name = stmt.Text(1),
                                  .public_key = stmt.Blob(2),
                                  .sealed_seed = stmt.Blob(3),
                                  .created = stmt.Time(4),
                                  .retired = stmt.OptionalTime(5)});
    }
    return keys;
  }

  absl::Status RetireKey(std::string_view id, absl::Time when) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("UPDATE log_keys SET retired = ?2 WHERE id = ?1",
                                                   "retiring log key"));
    stmt.BindText(1, id);
    stmt.BindTime(2, when);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "log key");
  }

 private:
  // Caps what a large limit reserves up front; the vector grows past it when rows are there.
  static constexpr int kMaxReserve = 1 << 14;

  // kFailedPrecondition unless `entries` are, in order, the first unsequenced events with
  // their own log ids. Reads only seq and tenant_id, without copying either.
  absl::Status CheckIsOutboxPrefix(const std::vector<LogEntryRef>& entries) {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT seq, tenant_id FROM events WHERE seq > (SELECT "
                                   "sequenced_seq FROM log_outbox WHERE id = 1) "
                                   "ORDER BY seq LIMIT ?1",
                                   "checking log entries"));
    stmt.BindInt(1, static_cast<int64_t>(entries.size()));
    for (size_t i = 0; i < entries.size(); ++i) {
      ASSIGN_OR_RETURN(const bool row, stmt.Step());
      if (!row) {
        return absl::FailedPreconditionError(
            fmt::format("log entry #{} (seq {}) is not an unsequenced event: only {} are waiting",
                        i, entries[i].seq, i));
      }
      if (stmt.Int(0) != entries[i].seq) {
        return absl::FailedPreconditionError(
            fmt::format("log entry #{} has seq {}, but the next unsequenced event is seq {}", i,
                        entries[i].seq, stmt.Int(0)));
      }
      if (stmt.TextView(1) != entries[i].log_id) {
        return absl::FailedPreconditionError(
            fmt::format("log entry #{} (seq {}) names log {}, but the event belongs to {}", i,
                        entries[i].seq, entries[i].log_id, stmt.TextView(1)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status InsertEntries(const std::vector<LogEntryRef>& entries) {
    ASSIGN_OR_RETURN(Statement insert,
                     conn_.Prepare("INSERT INTO log_entries (log_id, log_index, seq) "
                                   "VALUES (?1, ?2, ?3)",
                                   "adding log entries"));
    for (const LogEntryRef& entry : entries) {
      ASSIGN_OR_RETURN(const int64_t index, ToSql(entry.index, "log index"));
      insert.Reset();
      insert.BindText(1, entry.log_id);
      insert.BindInt(2, index);
      insert.BindInt(3, entry.seq);
      RETURN_IF_ERROR(insert.Run().status());
    }
    ASSIGN_OR_RETURN(Statement advance,
                     conn_.Prepare("UPDATE log_outbox SET sequenced_seq = ?1 WHERE id = 1",
                                   "moving the log outbox"));
    advance.BindInt(1, entries.back().seq);
    ASSIGN_OR_RETURN(const int changed, advance.Run());
    if (changed != 1) return absl::InternalError("the log outbox row is missing");
    return absl::OkStatus();
  }

  static LogStateRecord ReadState(const Statement& stmt) {
    return LogStateRecord{.log_id = stmt.Text(0),
                          .origin = stmt.Text(1),
                          .size = static_cast<uint64_t>(stmt.Int(2)),
                          .root_hash = stmt.Blob(3),
                          .updated = stmt.Time(4)};
  }

  static absl::StatusOr<CheckpointRecord> OneCheckpoint(Statement& stmt) {
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError("checkpoint not found");
    return CheckpointRecord{.log_id = stmt.Text(0),
                            .size = static_cast<uint64_t>(stmt.Int(1)),
                            .root_hash = stmt.Blob(2),
                            .note = stmt.Text(3),
                            .key_id = stmt.Text(4),
                            .signed_at = stmt.Time(5)};
  }

  Connection& conn_;
};

// RevokeOperatorTokens runs the statement of the most selective field the filter sets, so that
// it uses that field's index; ?2..?5 (vendor, operator, device, session) match any row when NULL.
constexpr std::string_view kRevokeTokensBySession =
    "UPDATE operator_tokens SET revoked = ?1 WHERE revoked IS NULL AND session_id = ?5 "
    "AND (?2 IS NULL OR vendor_id = ?2) AND (?3 IS NULL OR operator_id = ?3) "
    "AND (?4 IS NULL OR device_id = ?4)";
constexpr std::string_view kRevokeTokensByDevice =
    "UPDATE operator_tokens SET revoked = ?1 WHERE revoked IS NULL AND device_id = ?4 "
    "AND (?2 IS NULL OR vendor_id = ?2) AND (?3 IS NULL OR operator_id = ?3) "
    "AND (?5 IS NULL OR session_id = ?5)";
constexpr std::string_view kRevokeTokensByOperator =
    "UPDATE operator_tokens SET revoked = ?1 WHERE revoked IS NULL AND operator_id = ?3 "
    "AND (?2 IS NULL OR vendor_id = ?2) AND (?4 IS NULL OR device_id = ?4) "
    "AND (?5 IS NULL OR session_id = ?5)";
constexpr std::string_view kRevokeTokensByVendor =
    "UPDATE operator_tokens SET revoked = ?1 WHERE revoked IS NULL AND vendor_id = ?2 "
    "AND (?3 IS NULL OR operator_id = ?3) AND (?4 IS NULL OR device_id = ?4) "
    "AND (?5 IS NULL OR session_id = ?5)";

class SqliteSupport final : public SupportRepository {
 public:
  explicit SqliteSupport(Connection& conn) : conn_(conn) {}

  // Vendors

  absl::Status InsertVendor(const VendorRecord& vendor) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO vendors (id, name, employing_entity, country, "
                                   "status, created, status_changed) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                   "inserting vendor"));
    BindVendor(stmt, vendor);
    return stmt.Run().status();
  }

  absl::Status UpdateVendor(const VendorRecord& vendor) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE vendors SET name = ?2, employing_entity = ?3, "
                                   "country = ?4, status = ?5, created = ?6, status_changed = ?7 "
                                   "WHERE id = ?1",
                                   "updating vendor"));
    BindVendor(stmt, vendor);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "vendor");
  }

  absl::StatusOr<VendorRecord> GetVendor(std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, name, employing_entity, country, status, created, "
                                   "status_changed FROM vendors WHERE id = ?1",
                                   "reading vendor"));
    stmt.BindText(1, id);
    return ReadOne(stmt, &ReadVendor, "vendor");
  }

  absl::StatusOr<std::vector<VendorRecord>> ListVendors() override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, name, employing_entity, country, status, created, "
                                   "status_changed FROM vendors ORDER BY id",
                                   "listing vendors"));
    return ReadAll(stmt, &ReadVendor);
  }

  // Operators

  absl::Status InsertOperator(const OperatorRecord& op) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO operators (user_id, vendor_id, status, created, "
                                   "status_changed) VALUES (?1, ?2, ?3, ?4, ?5)",
                                   "inserting operator"));
    BindOperator(stmt, op);
    return stmt.Run().status();
  }

  absl::Status UpdateOperator(const OperatorRecord& op) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE operators SET vendor_id = ?2, status = ?3, "
                                   "created = ?4, status_changed = ?5 WHERE user_id = ?1",
                                   "updating operator"));
    BindOperator(stmt, op);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "operator");
  }

  absl::StatusOr<OperatorRecord> GetOperator(const UserId& user_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT user_id, vendor_id, status, created, status_changed "
                                   "FROM operators WHERE user_id = ?1",
                                   "reading operator"));
    stmt.BindText(1, user_id.value());
    return ReadOne(stmt, &ReadOperator, "operator");
  }

  absl::StatusOr<std::vector<OperatorRecord>> ListOperators(
      std::optional<std::string> vendor_id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        vendor_id.has_value()
            ? conn_.Prepare("SELECT user_id, vendor_id, status, created, status_changed "
                            "FROM operators WHERE vendor_id = ?1 ORDER BY user_id",
                            "listing operators")
            : conn_.Prepare("SELECT user_id, vendor_id, status, created, status_changed "
                            "FROM operators ORDER BY user_id",
                            "listing operators"));
    if (vendor_id.has_value()) stmt.BindText(1, *vendor_id);
    return ReadAll(stmt, &ReadOperator);
  }

  // Devices

  absl::Status InsertDevice(const DeviceRecord& device) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO devices (id, vendor_id, name, public_jwk, jkt, "
                                   "status, enrolled, status_changed, posture_json, "
                                   "posture_reported) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                   "?10)",
                                   "inserting device"));
    BindDevice(stmt, device);
    return stmt.Run().status();
  }

  absl::Status UpdateDevice(const DeviceRecord& device) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE devices SET vendor_id = ?2, name = ?3, "
                                   "public_jwk = ?4, jkt = ?5, status = ?6, enrolled = ?7, "
                                   "status_changed = ?8, posture_json = ?9, "
                                   "posture_reported = ?10 WHERE id = ?1",
                                   "updating device"));
    BindDevice(stmt, device);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "device");
  }

  absl::StatusOr<DeviceRecord> GetDevice(std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, vendor_id, name, public_jwk, jkt, status, "
                                   "enrolled, status_changed, posture_json, posture_reported "
                                   "FROM devices WHERE id = ?1",
                                   "reading device"));
    stmt.BindText(1, id);
    return ReadOne(stmt, &ReadDevice, "device");
  }

  absl::StatusOr<DeviceRecord> GetDeviceByJkt(std::string_view jkt) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, vendor_id, name, public_jwk, jkt, status, "
                                   "enrolled, status_changed, posture_json, posture_reported "
                                   "FROM devices WHERE jkt = ?1",
                                   "reading device by key"));
    stmt.BindText(1, jkt);
    return ReadOne(stmt, &ReadDevice, "device");
  }

  absl::StatusOr<std::vector<DeviceRecord>> ListDevices(
      std::optional<std::string> vendor_id) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        vendor_id.has_value()
            ? conn_.Prepare("SELECT id, vendor_id, name, public_jwk, jkt, status, enrolled, "
                            "status_changed, posture_json, posture_reported FROM devices "
                            "WHERE vendor_id = ?1 ORDER BY id",
                            "listing devices")
            : conn_.Prepare("SELECT id, vendor_id, name, public_jwk, jkt, status, enrolled, "
                            "status_changed, posture_json, posture_reported FROM devices "
                            "ORDER BY id",
                            "listing devices"));
    if (vendor_id.has_value()) stmt.BindText(1, *vendor_id);
    return ReadAll(stmt, &ReadDevice);
  }

  // Enrolment tokens

  absl::Status InsertEnrollmentToken(const EnrollmentTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO enrollment_tokens (id, token_hash, vendor_id, "
                                   "device_name, created, expires, used, device_id) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                   "inserting enrolment token"));
    BindEnrollmentToken(stmt, token);
    return stmt.Run().status();
  }

  absl::StatusOr<EnrollmentTokenRecord> FindEnrollmentTokenByHash(
      std::string_view token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, token_hash, vendor_id, device_name, created, "
                                   "expires, used, device_id FROM enrollment_tokens "
                                   "WHERE token_hash = ?1",
                                   "reading enrolment token"));
    stmt.BindText(1, token_hash);
    return ReadOne(stmt, &ReadEnrollmentToken, "enrolment token");
  }

  absl::Status UpdateEnrollmentToken(const EnrollmentTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE enrollment_tokens SET token_hash = ?2, vendor_id = ?3, "
                                   "device_name = ?4, created = ?5, expires = ?6, used = ?7, "
                                   "device_id = ?8 WHERE id = ?1",
                                   "updating enrolment token"));
    BindEnrollmentToken(stmt, token);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "enrolment token");
  }

  // Operator tokens

  absl::Status InsertOperatorToken(const OperatorTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO operator_tokens (id, token_hash, operator_id, "
                                   "vendor_id, device_id, jkt, session_id, session_token_hash, "
                                   "created, expires, revoked) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                   "inserting operator token"));
    stmt.BindText(1, token.id);
    stmt.BindText(2, token.token_hash);
    stmt.BindText(3, token.operator_id.value());
    stmt.BindText(4, token.vendor_id);
    stmt.BindText(5, token.device_id);
    stmt.BindText(6, token.jkt);
    stmt.BindText(7, token.session_id.value());
    stmt.BindText(8, token.session_token_hash);
    stmt.BindTime(9, token.created);
    stmt.BindTime(10, token.expires);
    stmt.BindTime(11, token.revoked);
    return stmt.Run().status();
  }

  absl::StatusOr<OperatorTokenRecord> FindOperatorTokenByHash(
      std::string_view token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT id, token_hash, operator_id, vendor_id, device_id, "
                                   "jkt, session_id, session_token_hash, created, expires, "
                                   "revoked FROM operator_tokens WHERE token_hash = ?1",
                                   "reading operator token"));
    stmt.BindText(1, token_hash);
    return ReadOne(stmt, &ReadOperatorToken, "operator token");
  }

  absl::StatusOr<int> RevokeOperatorTokens(const OperatorTokenFilter& filter,
                                           absl::Time when) override {
    std::string_view sql;
    if (filter.session_id.has_value()) {
      sql = kRevokeTokensBySession;
    } else if (filter.device_id.has_value()) {
      sql = kRevokeTokensByDevice;
    } else if (filter.operator_id.has_value()) {
      sql = kRevokeTokensByOperator;
    } else if (filter.vendor_id.has_value()) {
      sql = kRevokeTokensByVendor;
    } else {
      return absl::InvalidArgumentError(
          "revoking operator tokens: the filter must set at least one field");
    }
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare(sql, "revoking operator tokens"));
    stmt.BindTime(1, when);
    // Unset fields stay unbound, which is NULL.
    if (filter.vendor_id.has_value()) stmt.BindText(2, *filter.vendor_id);
    if (filter.operator_id.has_value()) stmt.BindText(3, filter.operator_id->value());
    if (filter.device_id.has_value()) stmt.BindText(4, *filter.device_id);
    if (filter.session_id.has_value()) stmt.BindText(5, filter.session_id->value());
    return stmt.Run();
  }

  // Support cases

  absl::Status InsertCase(const SupportCaseRecord& support_case) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO support_cases (tenant_id, id, subject, opened_by, "
                                   "opened_by_id, status, created, closed) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                   "inserting support case"));
    BindCase(stmt, support_case);
    return stmt.Run().status();
  }

  absl::Status UpdateCase(const SupportCaseRecord& support_case) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE support_cases SET subject = ?3, opened_by = ?4, "
                                   "opened_by_id = ?5, status = ?6, created = ?7, closed = ?8 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating support case"));
    BindCase(stmt, support_case);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "support case");
  }

  absl::StatusOr<SupportCaseRecord> GetCase(const TenantId& tenant, std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, subject, opened_by, opened_by_id, "
                                   "status, created, closed FROM support_cases "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "reading support case"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    return ReadOne(stmt, &ReadCase, "support case");
  }

  absl::StatusOr<std::vector<SupportCaseRecord>> ListCases(const TenantId& tenant) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, subject, opened_by, opened_by_id, "
                                   "status, created, closed FROM support_cases "
                                   "WHERE tenant_id = ?1 ORDER BY id",
                                   "listing support cases"));
    stmt.BindText(1, tenant.value());
    return ReadAll(stmt, &ReadCase);
  }

  // Access requests

  absl::Status InsertAccessRequest(const AccessRequestRecord& request) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO access_requests (tenant_id, id, operator_id, "
                                   "vendor_id, device_id, case_id, justification, scope, "
                                   "duration, status, created, expires, decided_by, decided, "
                                   "reason, grant_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                   "?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                                   "inserting access request"));
    BindAccessRequest(stmt, request);
    return stmt.Run().status();
  }

  absl::Status UpdateAccessRequest(const AccessRequestRecord& request) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE access_requests SET operator_id = ?3, vendor_id = ?4, "
                                   "device_id = ?5, case_id = ?6, justification = ?7, scope = ?8, "
                                   "duration = ?9, status = ?10, created = ?11, expires = ?12, "
                                   "decided_by = ?13, decided = ?14, reason = ?15, grant_id = ?16 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating access request"));
    BindAccessRequest(stmt, request);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "access request");
  }

  absl::StatusOr<AccessRequestRecord> GetAccessRequest(const TenantId& tenant,
                                                       std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, operator_id, vendor_id, device_id, "
                                   "case_id, justification, scope, duration, status, created, "
                                   "expires, decided_by, decided, reason, grant_id "
                                   "FROM access_requests WHERE tenant_id = ?1 AND id = ?2",
                                   "reading access request"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    return ReadOne(stmt, &ReadAccessRequest, "access request");
  }

  absl::StatusOr<std::vector<AccessRequestRecord>> ListAccessRequests(
      const TenantId& tenant, std::optional<std::string> status) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        status.has_value()
            ? conn_.Prepare("SELECT tenant_id, id, operator_id, vendor_id, device_id, case_id, "
                            "justification, scope, duration, status, created, expires, "
                            "decided_by, decided, reason, grant_id FROM access_requests "
                            "WHERE tenant_id = ?1 AND status = ?2 ORDER BY id",
                            "listing access requests")
            : conn_.Prepare("SELECT tenant_id, id, operator_id, vendor_id, device_id, case_id, "
                            "justification, scope, duration, status, created, expires, "
                            "decided_by, decided, reason, grant_id FROM access_requests "
                            "WHERE tenant_id = ?1 ORDER BY id",
                            "listing access requests"));
    stmt.BindText(1, tenant.value());
    if (status.has_value()) stmt.BindText(2, *status);
    return ReadAll(stmt, &ReadAccessRequest);
  }

  absl::StatusOr<std::vector<AccessRequestRecord>> ListAccessRequestsOfOperatorAcrossTenants(
      const UserId& operator_id) override {
    // Ids are unique per tenant only: the tenant breaks ties.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, operator_id, vendor_id, device_id, "
                                   "case_id, justification, scope, duration, status, created, "
                                   "expires, decided_by, decided, reason, grant_id "
                                   "FROM access_requests WHERE operator_id = ?1 "
                                   "ORDER BY id, tenant_id",
                                   "listing access requests of an operator"));
    stmt.BindText(1, operator_id.value());
    return ReadAll(stmt, &ReadAccessRequest);
  }

  // Grants

  absl::Status InsertGrant(const GrantRecord& grant) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO grants (tenant_id, id, request_id, operator_id, "
                                   "vendor_id, device_id, case_id, justification, scope, created, "
                                   "expires, status, ended, end_reason, first_used) VALUES (?1, "
                                   "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                                   "inserting grant"));
    BindGrant(stmt, grant);
    return stmt.Run().status();
  }

  absl::Status UpdateGrant(const GrantRecord& grant) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE grants SET request_id = ?3, operator_id = ?4, "
                                   "vendor_id = ?5, device_id = ?6, case_id = ?7, "
                                   "justification = ?8, scope = ?9, created = ?10, expires = ?11, "
                                   "status = ?12, ended = ?13, end_reason = ?14, first_used = ?15 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating grant"));
    BindGrant(stmt, grant);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "grant");
  }

  absl::StatusOr<GrantRecord> GetGrant(const TenantId& tenant, std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                                   "device_id, case_id, justification, scope, created, expires, "
                                   "status, ended, end_reason, first_used FROM grants "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "reading grant"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    return ReadOne(stmt, &ReadGrant, "grant");
  }

  absl::StatusOr<std::vector<GrantRecord>> ListGrants(const TenantId& tenant,
                                                      std::optional<std::string> status) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        status.has_value()
            ? conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                            "device_id, case_id, justification, scope, created, expires, status, "
                            "ended, end_reason, first_used FROM grants "
                            "WHERE tenant_id = ?1 AND status = ?2 ORDER BY id",
                            "listing grants")
            : conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                            "device_id, case_id, justification, scope, created, expires, status, "
                            "ended, end_reason, first_used FROM grants "
                            "WHERE tenant_id = ?1 ORDER BY id",
                            "listing grants"));
    stmt.BindText(1, tenant.value());
    if (status.has_value()) stmt.BindText(2, *status);
    return ReadAll(stmt, &ReadGrant);
  }

  absl::StatusOr<std::vector<GrantRecord>> ListActiveGrantsOfCase(
      const TenantId& tenant, std::string_view case_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                                   "device_id, case_id, justification, scope, created, expires, "
                                   "status, ended, end_reason, first_used FROM grants "
                                   "WHERE tenant_id = ?1 AND case_id = ?2 AND status = ?3 "
                                   "ORDER BY id",
                                   "listing active grants of a case"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, case_id);
    stmt.BindText(3, kGrantActive);
    return ReadAll(stmt, &ReadGrant);
  }

  absl::StatusOr<std::vector<GrantRecord>> ListGrantsOfOperatorAcrossTenants(
      const UserId& operator_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                                   "device_id, case_id, justification, scope, created, expires, "
                                   "status, ended, end_reason, first_used FROM grants "
                                   "WHERE operator_id = ?1 ORDER BY id, tenant_id",
                                   "listing grants of an operator"));
    stmt.BindText(1, operator_id.value());
    return ReadAll(stmt, &ReadGrant);
  }

  absl::StatusOr<std::vector<GrantRecord>> ListActiveGrantsOfVendorAcrossTenants(
      std::string_view vendor_id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, request_id, operator_id, vendor_id, "
                                   "device_id, case_id, justification, scope, created, expires, "
                                   "status, ended, end_reason, first_used FROM grants "
                                   "WHERE vendor_id = ?1 AND status = ?2 ORDER BY id, tenant_id",
                                   "listing active grants of a vendor"));
    stmt.BindText(1, vendor_id);
    stmt.BindText(2, kGrantActive);
    return ReadAll(stmt, &ReadGrant);
  }

  // Confirmations

  absl::Status InsertConfirmation(const ConfirmationRecord& confirmation) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO confirmations (tenant_id, id, grant_id, "
                                   "operator_id, action, target, status, created, expires, "
                                   "decided_by, decided) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                                   "inserting confirmation"));
    BindConfirmation(stmt, confirmation);
    return stmt.Run().status();
  }

  absl::Status UpdateConfirmation(const ConfirmationRecord& confirmation) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE confirmations SET grant_id = ?3, operator_id = ?4, "
                                   "action = ?5, target = ?6, status = ?7, created = ?8, "
                                   "expires = ?9, decided_by = ?10, decided = ?11 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating confirmation"));
    BindConfirmation(stmt, confirmation);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "confirmation");
  }

  absl::StatusOr<ConfirmationRecord> GetConfirmation(const TenantId& tenant,
                                                     std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, grant_id, operator_id, action, target, "
                                   "status, created, expires, decided_by, decided "
                                   "FROM confirmations WHERE tenant_id = ?1 AND id = ?2",
                                   "reading confirmation"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    return ReadOne(stmt, &ReadConfirmation, "confirmation");
  }

  absl::StatusOr<std::vector<ConfirmationRecord>> ListConfirmations(
      const TenantId& tenant, std::optional<std::string> status) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        status.has_value()
            ? conn_.Prepare("SELECT tenant_id, id, grant_id, operator_id, action, target, status, "
                            "created, expires, decided_by, decided FROM confirmations "
                            "WHERE tenant_id = ?1 AND status = ?2 ORDER BY id",
                            "listing confirmations")
            : conn_.Prepare("SELECT tenant_id, id, grant_id, operator_id, action, target, status, "
                            "created, expires, decided_by, decided FROM confirmations "
                            "WHERE tenant_id = ?1 ORDER BY id",
                            "listing confirmations"));
    stmt.BindText(1, tenant.value());
    if (status.has_value()) stmt.BindText(2, *status);
    return ReadAll(stmt, &ReadConfirmation);
  }

  absl::StatusOr<ConfirmationRecord> FindConfirmation(const TenantId& tenant,
                                                      std::string_view grant_id,
                                                      std::string_view action,
                                                      std::string_view target) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, grant_id, operator_id, action, target, "
                                   "status, created, expires, decided_by, decided "
                                   "FROM confirmations WHERE tenant_id = ?1 AND grant_id = ?2 "
                                   "AND action = ?3 AND target = ?4 "
                                   "ORDER BY created DESC, id DESC LIMIT 1",
                                   "finding confirmation"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, grant_id);
    stmt.BindText(3, action);
    stmt.BindText(4, target);
    return ReadOne(stmt, &ReadConfirmation, "confirmation");
  }

  // Sightings and settings

  absl::StatusOr<int> AddSighting(const SightingRecord& sighting) override {
    ASSIGN_OR_RETURN(Statement insert,
                     conn_.Prepare("INSERT INTO sightings (operator_id, kind, value, first_seen) "
                                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                                   "recording sighting"));
    insert.BindText(1, sighting.operator_id.value());
    insert.BindText(2, sighting.kind);
    insert.BindText(3, sighting.value);
    insert.BindTime(4, sighting.first_seen);
    ASSIGN_OR_RETURN(const int changed, insert.Run());
    if (changed == 0) return -1;
    ASSIGN_OR_RETURN(Statement count,
                     conn_.Prepare("SELECT COUNT(*) FROM sightings "
                                   "WHERE operator_id = ?1 AND kind = ?2 AND value <> ?3",
                                   "counting sightings"));
    count.BindText(1, sighting.operator_id.value());
    count.BindText(2, sighting.kind);
    count.BindText(3, sighting.value);
    ASSIGN_OR_RETURN(const bool row, count.Step());
    return row ? static_cast<int>(count.Int(0)) : 0;
  }

  absl::StatusOr<std::string> GetSetting(std::string_view key) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT value FROM support_settings WHERE key = ?1",
                                   "reading support setting"));
    stmt.BindText(1, key);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::NotFoundError(fmt::format("support setting {} not found", key));
    return stmt.Text(0);
  }

  absl::Status PutSetting(std::string_view key, std::string_view value) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO support_settings (key, value) VALUES (?1, ?2) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                   "writing support setting"));
    stmt.BindText(1, key);
    stmt.BindText(2, value);
    return stmt.Run().status();
  }

 private:
  static void BindVendor(Statement& stmt, const VendorRecord& vendor) {
    stmt.BindText(1, vendor.id);
    stmt.BindText(2, vendor.name);
    stmt.BindText(3, vendor.employing_entity);
    stmt.BindText(4, vendor.country);
    stmt.BindText(5, vendor.status);
    stmt.BindTime(6, vendor.created);
    stmt.BindTime(7, vendor.status_changed);
  }
  static VendorRecord ReadVendor(const Statement& stmt) {
    return VendorRecord{.id = stmt.Text(0),
                        .name = stmt.Text(1),
                        .employing_entity = stmt.Text(2),
                        .country = stmt.Text(3),
                        .status = stmt.Text(4),
                        .created = stmt.Time(5),
                        .status_changed = stmt.Time(6)};
  }

  static void BindOperator(Statement& stmt, const OperatorRecord& op) {
    stmt.BindText(1, op.user_id.value());
    stmt.BindText(2, op.vendor_id);
    stmt.BindText(3, op.status);
    stmt.BindTime(4, op.created);
    stmt.BindTime(5, op.status_changed);
  }
  static OperatorRecord ReadOperator(const Statement& stmt) {
    return OperatorRecord{.user_id = UserId(stmt.Text(0)),
                          .vendor_id = stmt.Text(1),
                          .status = stmt.Text(2),
                          .created = stmt.Time(3),
                          .status_changed = stmt.Time(4)};
  }

  static void BindDevice(Statement& stmt, const DeviceRecord& device) {
    stmt.BindText(1, device.id);
    stmt.BindText(2, device.vendor_id);
    stmt.BindText(3, device.name);
    stmt.BindText(4, device.public_jwk);
    stmt.BindText(5, device.jkt);
    stmt.BindText(6, device.status);
    stmt.BindTime(7, device.enrolled);
    stmt.BindTime(8, device.status_changed);
    stmt.BindText(9, device.posture_json);
    stmt.BindTime(10, device.posture_reported);
  }
  static DeviceRecord ReadDevice(const Statement& stmt) {
    return DeviceRecord{.id = stmt.Text(0),
                        .vendor_id = stmt.Text(1),
                        .name = stmt.Text(2),
                        .public_jwk = stmt.Text(3),
                        .jkt = stmt.Text(4),
                        .status = stmt.Text(5),
                        .enrolled = stmt.Time(6),
                        .status_changed = stmt.Time(7),
                        .posture_json = stmt.Text(8),
                        .posture_reported = stmt.OptionalTime(9)};
  }

  static void BindEnrollmentToken(Statement& stmt, const EnrollmentTokenRecord& token) {
    stmt.BindText(1, token.id);
    stmt.BindText(2, token.token_hash);
    stmt.BindText(3, token.vendor_id);
    stmt.BindText(4, token.device_name);
    stmt.BindTime(5, token.created);
    stmt.BindTime(6, token.expires);
    stmt.BindTime(7, token.used);
    stmt.BindText(8, token.device_id);
  }
  static EnrollmentTokenRecord ReadEnrollmentToken(const Statement& stmt) {
    return EnrollmentTokenRecord{.id = stmt.Text(0),
                                 .token_hash = stmt.Text(1),
                                 .vendor_id = stmt.Text(2),
                                 .device_name = stmt.Text(3),
                                 .created = stmt.Time(4),
                                 .expires = stmt.Time(5),
                                 .used = stmt.OptionalTime(6),
                                 .device_id = stmt.Text(7)};
  }

  static OperatorTokenRecord ReadOperatorToken(const Statement& stmt) {
    return OperatorTokenRecord{.id = stmt.Text(0),
                               .token_hash = stmt.Text(1),
                               .operator_id = UserId(stmt.Text(2)),
                               .vendor_id = stmt.Text(3),
                               .device_id = stmt.Text(4),
                               .jkt = stmt.Text(5),
                               .session_id = SessionId(stmt.Text(6)),
                               .session_token_hash = stmt.Text(7),
                               .created = stmt.Time(8),
                               .expires = stmt.Time(9),
                               .revoked = stmt.OptionalTime(10)};
  }

  static void BindCase(Statement& stmt, const SupportCaseRecord& support_case) {
    stmt.BindText(1, support_case.tenant_id.value());
    stmt.BindText(2, support_case.id);
    stmt.BindText(3, support_case.subject);
    stmt.BindText(4, support_case.opened_by);
    stmt.BindText(5, support_case.opened_by_id);
    stmt.BindText(6, support_case.status);
    stmt.BindTime(7, support_case.created);
    stmt.BindTime(8, support_case.closed);
  }
  static SupportCaseRecord ReadCase(const Statement& stmt) {
    return SupportCaseRecord{.id = stmt.Text(1),
                             .tenant_id = TenantId(stmt.Text(0)),
                             .subject = stmt.Text(2),
                             .opened_by = stmt.Text(3),
                             .opened_by_id = stmt.Text(4),
                             .status = stmt.Text(5),
                             .created = stmt.Time(6),
                             .closed = stmt.OptionalTime(7)};
  }

  static void BindAccessRequest(Statement& stmt, const AccessRequestRecord& request) {
    stmt.BindText(1, request.tenant_id.value());
    stmt.BindText(2, request.id);
    stmt.BindText(3, request.operator_id.value());
    stmt.BindText(4, request.vendor_id);
    stmt.BindText(5, request.device_id);
    stmt.BindText(6, request.case_id);
    stmt.BindText(7, request.justification);
    stmt.BindText(8, request.scope);
    stmt.BindInt(9, absl::ToInt64Microseconds(request.duration));
    stmt.BindText(10, request.status);
    stmt.BindTime(11, request.created);
    stmt.BindTime(12, request.expires);
    stmt.BindText(13, request.decided_by);
    stmt.BindTime(14, request.decided);
    stmt.BindText(15, request.reason);
    stmt.BindText(16, request.grant_id);
  }
  static AccessRequestRecord ReadAccessRequest(const Statement& stmt) {
    return AccessRequestRecord{.id = stmt.Text(1),
                               .tenant_id = TenantId(stmt.Text(0)),
                               .operator_id = UserId(stmt.Text(2)),
                               .vendor_id = stmt.Text(3),
                               .device_id = stmt.Text(4),
                               .case_id = stmt.Text(5),
                               .justification = stmt.Text(6),
                               .scope = stmt.Text(7),
                               .duration = absl::Microseconds(stmt.Int(8)),
                               .status = stmt.Text(9),
                               .created = stmt.Time(10),
                               .expires = stmt.Time(11),
                               .decided_by = stmt.Text(12),
                               .decided = stmt.OptionalTime(13),
                               .reason = stmt.Text(14),
                               .grant_id = stmt.Text(15)};
  }

  static void BindGrant(Statement& stmt, const GrantRecord& grant) {
    stmt.BindText(1, grant.tenant_id.value());
    stmt.BindText(2, grant.id);
    stmt.BindText(3, grant.request_id);
    stmt.BindText(4, grant.operator_id.value());
    stmt.BindText(5, grant.vendor_id);
    stmt.BindText(6, grant.device_id);
    stmt.BindText(7, grant.case_id);
    stmt.BindText(8, grant.justification);
    stmt.BindText(9, grant.scope);
    stmt.BindTime(10, grant.created);
    stmt.BindTime(11, grant.expires);
    stmt.BindText(12, grant.status);
    stmt.BindTime(13, grant.ended);
    stmt.BindText(14, grant.end_reason);
    stmt.BindTime(15, grant.first_used);
  }
  static GrantRecord ReadGrant(const Statement& stmt) {
    return GrantRecord{.id = stmt.Text(1),
                       .tenant_id = TenantId(stmt.Text(0)),
                       .request_id = stmt.Text(2),
                       .operator_id = UserId(stmt.Text(3)),
                       .vendor_id = stmt.Text(4),
                       .device_id = stmt.Text(5),
                       .case_id = stmt.Text(6),
                       .justification = stmt.Text(7),
                       .scope = stmt.Text(8),
                       .created = stmt.Time(9),
                       .expires = stmt.Time(10),
                       .status = stmt.Text(11),
                       .ended = stmt.OptionalTime(12),
                       .end_reason = stmt.Text(13),
                       .first_used = stmt.OptionalTime(14)};
  }

  static void BindConfirmation(Statement& stmt, const ConfirmationRecord& confirmation) {
    stmt.BindText(1, confirmation.tenant_id.value());
    stmt.BindText(2, confirmation.id);
    stmt.BindText(3, confirmation.grant_id);
    stmt.BindText(4, confirmation.operator_id.value());
    stmt.BindText(5, confirmation.action);
    stmt.BindText(6, confirmation.target);
    stmt.BindText(7, confirmation.status);
    stmt.BindTime(8, confirmation.created);
    stmt.BindTime(9, confirmation.expires);
    stmt.BindText(10, confirmation.decided_by);
    stmt.BindTime(11, confirmation.decided);
  }
  static ConfirmationRecord ReadConfirmation(const Statement& stmt) {
    return ConfirmationRecord{.id = stmt.Text(1),
                              .tenant_id = TenantId(stmt.Text(0)),
                              .grant_id = stmt.Text(2),
                              .operator_id = UserId(stmt.Text(3)),
                              .action = stmt.Text(4),
                              .target = stmt.Text(5),
                              .status = stmt.Text(6),
                              .created = stmt.Time(7),
                              .expires = stmt.Time(8),
                              .decided_by = stmt.Text(9),
                              .decided = stmt.OptionalTime(10)};
  }

  Connection& conn_;
};

class SqliteOidc final : public OidcRepository {
 public:
  explicit SqliteOidc(Connection& conn) : conn_(conn) {}

  // Keys

  absl::Status InsertKey(const OidcKeyRecord& key) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO oidc_keys (tenant_id, kid, alg, public_jwk, "
                                   "sealed_private, created, activates, retired, expires) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                                   "inserting oidc key"));
    BindKey(stmt, key);
    return stmt.Run().status();
  }

  absl::Status UpdateKey(const OidcKeyRecord& key) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE oidc_keys SET alg = ?3, public_jwk = ?4, "
                                   "sealed_private = ?5, created = ?6, activates = ?7, "
                                   "retired = ?8, expires = ?9 WHERE tenant_id = ?1 AND kid = ?2",
                                   "updating oidc key"));
    BindKey(stmt, key);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "oidc key");
  }

  absl::StatusOr<std::vector<OidcKeyRecord>> ListKeys(const TenantId& tenant) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, kid, alg, public_jwk, sealed_private, "
                                   "created, activates, retired, expires FROM oidc_keys "
                                   "WHERE tenant_id = ?1 ORDER BY created, kid",
                                   "listing oidc keys"));
    stmt.BindText(1, tenant.value());
    return ReadAll(stmt, &ReadKey);
  }

  // Apps

  absl::Status InsertApp(const AppRecord& app) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO apps (tenant_id, id, label, status, "
                                   "application_type, token_endpoint_auth_method, "
                                   "client_secret_hash, settings_json, created, last_updated) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                   "inserting app"));
    BindApp(stmt, app);
    return stmt.Run().status();
  }

  absl::Status UpdateApp(const AppRecord& app) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE apps SET label = ?3, status = ?4, "
                                   "application_type = ?5, token_endpoint_auth_method = ?6, "
                                   "client_secret_hash = ?7, settings_json = ?8, created = ?9, "
                                   "last_updated = ?10 WHERE tenant_id = ?1 AND id = ?2",
                                   "updating app"));
    BindApp(stmt, app);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "app");
  }

  absl::Status DeleteApp(const TenantId& tenant, std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("DELETE FROM apps WHERE tenant_id = ?1 AND "
                                                   "id = ?2",
                                                   "deleting app"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "app");
  }

  absl::StatusOr<AppRecord> GetApp(const TenantId& tenant, std::string_view id) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, label, status, application_type, "
                                   "token_endpoint_auth_method, client_secret_hash, "
                                   "settings_json, created, last_updated FROM apps "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "reading app"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, id);
    return ReadOne(stmt, &ReadApp, "app");
  }

  absl::StatusOr<std::vector<AppRecord>> ListApps(const TenantId& tenant,
                                                  const Page& page) override {
    RETURN_IF_ERROR(CheckLimit(page.limit));
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, label, status, application_type, "
                                   "token_endpoint_auth_method, client_secret_hash, "
                                   "settings_json, created, last_updated FROM apps "
                                   "WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                                   "listing apps"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, page.after);
    stmt.BindInt(3, page.limit);
    return ReadAll(stmt, &ReadApp);
  }

  // Authorization codes

  absl::Status InsertCode(const AuthCodeRecord& code) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO auth_codes (tenant_id, code_hash, client_id, "
                      "user_id, session_id, redirect_uri, scope, nonce, "
                      "code_challenge, code_challenge_method, dpop_jkt, auth_time, "
                      "amr, created, expires, used, family_id) VALUES (?1, ?2, ?3, "
                      "?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                      "inserting authorization code"));
    BindCode(stmt, code);
    return stmt.Run().status();
  }

  absl::StatusOr<AuthCodeRecord> FindCode(const TenantId& tenant,
                                          std::string_view code_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, code_hash, client_id, user_id, session_id, "
                                   "redirect_uri, scope, nonce, code_challenge, "
                                   "code_challenge_method, dpop_jkt, auth_time, amr, created, "
                                   "expires, used, family_id FROM auth_codes "
                                   "WHERE tenant_id = ?1 AND code_hash = ?2",
                                   "reading authorization code"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, code_hash);
    return ReadOne(stmt, &ReadCode, "authorization code");
  }

  absl::Status UpdateCode(const AuthCodeRecord& code) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE auth_codes SET client_id = ?3, user_id = ?4, "
                                   "session_id = ?5, redirect_uri = ?6, scope = ?7, nonce = ?8, "
                                   "code_challenge = ?9, code_challenge_method = ?10, "
                                   "dpop_jkt = ?11, auth_time = ?12, amr = ?13, created = ?14, "
                                   "expires = ?15, used = ?16, family_id = ?17 "
                                   "WHERE tenant_id = ?1 AND code_hash = ?2",
                                   "updating authorization code"));
    BindCode(stmt, code);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "authorization code");
  }

  absl::StatusOr<int> DeleteExpiredCodes(const TenantId& tenant, absl::Time now) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM auth_codes WHERE tenant_id = ?1 AND expires <= ?2",
                                   "deleting expired authorization codes"));
    stmt.BindText(1, tenant.value());
    stmt.BindTime(2, now);
    return stmt.Run();
  }

  // Refresh tokens

  absl::Status InsertRefreshToken(const RefreshTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO refresh_tokens (tenant_id, id, token_hash, "
                                   "client_id, user_id, scope, family_id, session_id, auth_time, "
                                   "amr, dpop_jkt, created, expires, rotated, revoked) VALUES "
                                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                                   "?15)",
                                   "inserting refresh token"));
    BindRefreshToken(stmt, token);
    return stmt.Run().status();
  }

  absl::StatusOr<RefreshTokenRecord> FindRefreshToken(const TenantId& tenant,
                                                      std::string_view token_hash) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT tenant_id, id, token_hash, client_id, user_id, scope, "
                                   "family_id, session_id, auth_time, amr, dpop_jkt, created, "
                                   "expires, rotated, revoked FROM refresh_tokens "
                                   "WHERE tenant_id = ?1 AND token_hash = ?2",
                                   "reading refresh token"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, token_hash);
    return ReadOne(stmt, &ReadRefreshToken, "refresh token");
  }

  absl::Status UpdateRefreshToken(const RefreshTokenRecord& token) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE refresh_tokens SET token_hash = ?3, client_id = ?4, "
                                   "user_id = ?5, scope = ?6, family_id = ?7, session_id = ?8, "
                                   "auth_time = ?9, amr = ?10, dpop_jkt = ?11, created = ?12, "
                                   "expires = ?13, rotated = ?14, revoked = ?15 "
                                   "WHERE tenant_id = ?1 AND id = ?2",
                                   "updating refresh token"));
    BindRefreshToken(stmt, token);
    ASSIGN_OR_RETURN(const int changed, stmt.Run());
    return RequireChanged(changed, "refresh token");
  }

  absl::StatusOr<int> RevokeFamily(const TenantId& tenant, std::string_view family_id,
                                   absl::Time when) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE refresh_tokens SET revoked = ?3 WHERE tenant_id = ?1 "
                                   "AND family_id = ?2 AND revoked IS NULL",
                                   "revoking a refresh token family"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, family_id);
    stmt.BindTime(3, when);
    return stmt.Run();
  }

  absl::StatusOr<int> RevokeRefreshTokensOfSession(const TenantId& tenant, const SessionId& session,
                                                   absl::Time when) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE refresh_tokens SET revoked = ?3 WHERE tenant_id = ?1 "
                                   "AND session_id = ?2 AND revoked IS NULL",
                                   "revoking the refresh tokens of a session"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, session.value());
    stmt.BindTime(3, when);
    return stmt.Run();
  }

  absl::StatusOr<int> RevokeTokensOfUser(const TenantId& tenant, const UserId& user,
                                         absl::Time when, absl::Time keep_until) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("UPDATE refresh_tokens SET revoked = ?3 WHERE tenant_id = ?1 "
                                   "AND user_id = ?2 AND revoked IS NULL",
                                   "revoking the refresh tokens of a user"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, user.value());
    stmt.BindTime(3, when);
    ASSIGN_OR_RETURN(const int revoked, stmt.Run());
    ASSIGN_OR_RETURN(
        Statement mark,
        conn_.Prepare("INSERT INTO revoked_tokens (tenant_id, jti, revoked, expires) "
                      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant_id, jti) DO UPDATE SET "
                      "revoked = max(revoked, excluded.revoked), "
                      "expires = max(expires, excluded.expires)",
                      "recording when a user's tokens were revoked"));
    mark.BindText(1, tenant.value());
    mark.BindText(2, fmt::format("{}{}", kUserRevocationPrefix, user.value()));
    mark.BindTime(3, when);
    mark.BindTime(4, keep_until);
    RETURN_IF_ERROR(mark.Run().status());
    return revoked;
  }

  absl::StatusOr<std::optional<absl::Time>> UserTokensRevokedAt(const TenantId& tenant,
                                                                const UserId& user) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("SELECT revoked FROM revoked_tokens WHERE "
                                                   "tenant_id = ?1 AND jti = ?2",
                                                   "reading when a user's tokens were revoked"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, fmt::format("{}{}", kUserRevocationPrefix, user.value()));
    ASSIGN_OR_RETURN(const bool found, stmt.Step());
    if (!found) return std::nullopt;
    return stmt.Time(0);
  }

  absl::StatusOr<int> DeleteExpiredRefreshTokens(const TenantId& tenant, absl::Time now) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM refresh_tokens WHERE tenant_id = ?1 AND expires <= ?2",
                      "deleting expired refresh tokens"));
    stmt.BindText(1, tenant.value());
    stmt.BindTime(2, now);
    return stmt.Run();
  }

  // Revoked access tokens

  absl::Status InsertRevoked(const RevokedTokenRecord& revoked) override {
    // ON CONFLICT keeps the first revocation; an unknown tenant still fails its foreign key.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO revoked_tokens (tenant_id, jti, revoked, expires) "
                                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                                   "recording a revoked token"));
    stmt.BindText(1, revoked.tenant_id.value());
    stmt.BindText(2, revoked.jti);
    stmt.BindTime(3, revoked.revoked);
    stmt.BindTime(4, revoked.expires);
    return stmt.Run().status();
  }

  absl::StatusOr<bool> IsRevoked(const TenantId& tenant, std::string_view jti) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("SELECT 1 FROM revoked_tokens WHERE tenant_id = ?1 AND jti = ?2",
                                   "reading a revoked token"));
    stmt.BindText(1, tenant.value());
    stmt.BindText(2, jti);
    return stmt.Step();
  }

  absl::StatusOr<int> DeleteExpiredRevoked(const TenantId& tenant, absl::Time now) override {
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("DELETE FROM revoked_tokens WHERE tenant_id = ?1 AND expires <= ?2",
                      "deleting expired revoked tokens"));
    stmt.BindText(1, tenant.value());
    stmt.BindTime(2, now);
    return stmt.Run();
  }

 private:
  static void BindKey(Statement& stmt, const OidcKeyRecord& key) {
    stmt.BindText(1, key.tenant_id.value());
    stmt.BindText(2, key.kid);
    stmt.BindText(3, key.alg);
    stmt.BindText(4, key.public_jwk);
    stmt.BindBlob(5, key.sealed_private);
    stmt.BindTime(6, key.created);
    stmt.BindTime(7, key.activates);
    stmt.BindTime(8, key.retired);
    stmt.BindTime(9, key.expires);
  }
  static OidcKeyRecord ReadKey(const Statement& stmt) {
    return OidcKeyRecord{.kid = stmt.Text(1),
                         .tenant_id = TenantId(stmt.Text(0)),
                         .alg = stmt.Text(2),
                         .public_jwk = stmt.Text(3),
                         .sealed_private = stmt.Blob(4),
                         .created = stmt.Time(5),
                         .activates = stmt.Time(6),
                         .retired = stmt.OptionalTime(7),
                         .expires = stmt.OptionalTime(8)};
  }

  static void BindApp(Statement& stmt, const AppRecord& app) {
    stmt.BindText(1, app.tenant_id.value());
    stmt.BindText(2, app.id);
    stmt.BindText(3, app.label);
    stmt.BindText(4, app.status);
    stmt.BindText(5, app.application_type);
    stmt.BindText(6, app.token_endpoint_auth_method);
    stmt.BindText(7, app.client_secret_hash);
    stmt.BindText(8, app.settings_json);
    stmt.BindTime(9, app.created);
    stmt.BindTime(10, app.last_updated);
  }
  static AppRecord ReadApp(const Statement& stmt) {
    return AppRecord{.id = stmt.Text(1),
                     .tenant_id = TenantId(stmt.Text(0)),
                     .label = stmt.Text(2),
                     .status = stmt.Text(3),
                     .application_type = stmt.Text(4),
                     .token_endpoint_auth_method = stmt.Text(5),
                     .client_secret_hash = stmt.Text(6),
                     .settings_json = stmt.Text(7),
                     .created = stmt.Time(8),
                     .last_updated = stmt.Time(9)};
  }

  static void BindCode(Statement& stmt, const AuthCodeRecord& code) {
    stmt.BindText(1, code.tenant_id.value());
    stmt.BindText(2, code.code_hash);
    stmt.BindText(3, code.client_id);
    stmt.BindText(4, code.user_id.value());
    stmt.BindText(5, code.session_id.value());
    stmt.BindText(6, code.redirect_uri);
    stmt.BindText(7, code.scope);
    stmt.BindText(8, code.nonce);
    stmt.BindText(9, code.code_challenge);
    stmt.BindText(10, code.code_challenge_method);
    stmt.BindText(11, code.dpop_jkt);
    stmt.BindTime(12, code.auth_time);
    stmt.BindText(13, code.amr);
    stmt.BindTime(14, code.created);
    stmt.BindTime(15, code.expires);
    stmt.BindTime(16, code.used);
    stmt.BindText(17, code.family_id);
  }
  static AuthCodeRecord ReadCode(const Statement& stmt) {
    return AuthCodeRecord{.code_hash = stmt.Text(1),
                          .tenant_id = TenantId(stmt.Text(0)),
                          .client_id = stmt.Text(2),
                          .user_id = UserId(stmt.Text(3)),
                          .session_id = SessionId(stmt.Text(4)),
                          .redirect_uri = stmt.Text(5),
                          .scope = stmt.Text(6),
                          .nonce = stmt.Text(7),
                          .code_challenge = stmt.Text(8),
                          .code_challenge_method = stmt.Text(9),
                          .dpop_jkt = stmt.Text(10),
                          .auth_time = stmt.Time(11),
                          .amr = stmt.Text(12),
                          .created = stmt.Time(13),
                          .expires = stmt.Time(14),
                          .used = stmt.OptionalTime(15),
                          .family_id = stmt.Text(16)};
  }

  static void BindRefreshToken(Statement& stmt, const RefreshTokenRecord& token) {
    stmt.BindText(1, token.tenant_id.value());
    stmt.BindText(2, token.id);
    stmt.BindText(3, token.token_hash);
    stmt.BindText(4, token.client_id);
    stmt.BindText(5, token.user_id.value());
    stmt.BindText(6, token.scope);
    stmt.BindText(7, token.family_id);
    stmt.BindText(8, token.session_id.value());
    stmt.BindTime(9, token.auth_time);
    stmt.BindText(10, token.amr);
    stmt.BindText(11, token.dpop_jkt);
    stmt.BindTime(12, token.created);
    stmt.BindTime(13, token.expires);
    stmt.BindTime(14, token.rotated);
    stmt.BindTime(15, token.revoked);
  }
  static RefreshTokenRecord ReadRefreshToken(const Statement& stmt) {
    return RefreshTokenRecord{.id = stmt.Text(1),
                              .token_hash = stmt.Text(2),
                              .tenant_id = TenantId(stmt.Text(0)),
                              .client_id = stmt.Text(3),
                              .user_id = UserId(stmt.Text(4)),
                              .scope = stmt.Text(5),
                              .family_id = stmt.Text(6),
                              .session_id = SessionId(stmt.Text(7)),
                              .auth_time = stmt.Time(8),
                              .amr = stmt.Text(9),
                              .dpop_jkt = stmt.Text(10),
                              .created = stmt.Time(11),
                              .expires = stmt.Time(12),
                              .rotated = stmt.OptionalTime(13),
                              .revoked = stmt.OptionalTime(14)};
  }

  Connection& conn_;
};

absl::Status CheckWindow(absl::Time window_start, absl::Time window_end, int64_t increment) {
  if (increment < 0) {
    return absl::InvalidArgumentError(fmt::format("a count cannot go down ({})", increment));
  }
  if (Micros(window_end) <= Micros(window_start)) {
    return absl::InvalidArgumentError("a rate window must end after it starts");
  }
  return absl::OkStatus();
}

class SqliteSharedState final : public SharedStateRepository {
 public:
  explicit SqliteSharedState(Connection& conn) : conn_(conn) {}

  absl::StatusOr<bool> Remember(std::string_view scope, std::string_view key, absl::Time expires,
                                absl::Time now) override {
    // The upsert's WHERE leaves a live row alone, and RETURNING yields a row only when one was
    // inserted or replaced.
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("INSERT INTO replay_keys (scope, key, expires) "
                                   "VALUES (?1, ?2, ?3) ON CONFLICT (scope, key) DO UPDATE "
                                   "SET expires = excluded.expires "
                                   "WHERE replay_keys.expires <= ?4 RETURNING 1",
                                   "remembering a replay key"));
    stmt.BindText(1, scope);
    stmt.BindText(2, key);
    stmt.BindTime(3, expires);
    stmt.BindTime(4, now);
    return stmt.Step();
  }

  absl::StatusOr<int> DeleteExpiredKeys(absl::Time before) override {
    ASSIGN_OR_RETURN(Statement stmt, conn_.Prepare("DELETE FROM replay_keys WHERE expires <= ?1",
                                                   "deleting expired replay keys"));
    stmt.BindTime(1, before);
    return stmt.Run();
  }

  absl::StatusOr<int64_t> Count(std::string_view scope, std::string_view key,
                                absl::Time window_start, absl::Time window_end,
                                int64_t increment) override {
    RETURN_IF_ERROR(CheckWindow(window_start, window_end, increment));
    ASSIGN_OR_RETURN(
        Statement stmt,
        conn_.Prepare("INSERT INTO rate_counters (scope, key, window_start, window_end, count) "
                      "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, key) DO UPDATE SET "
                      "count = CASE WHEN rate_counters.window_start >= excluded.window_start "
                      "THEN rate_counters.count + excluded.count ELSE excluded.count END, "
                      "window_end = CASE WHEN rate_counters.window_start >= "
                      "excluded.window_start THEN rate_counters.window_end "
                      "ELSE excluded.window_end END, "
                      "window_start = max(rate_counters.window_start, excluded.window_start) "
                      "RETURNING count",
                      "counting in a rate window"));
    stmt.BindText(1, scope);
    stmt.BindText(2, key);
    stmt.BindTime(3, window_start);
    stmt.BindTime(4, window_end);
    stmt.BindInt(5, increment);
    ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) return absl::InternalError("counting in a rate window: no count returned");
    return stmt.Int(0);
  }

  absl::StatusOr<int> DeleteEndedWindows(absl::Time before) override {
    ASSIGN_OR_RETURN(Statement stmt,
                     conn_.Prepare("DELETE FROM rate_counters WHERE window_end <= ?1",
                                   "deleting ended rate windows"));
    stmt.BindTime(1, before);
    return stmt.Run();
  }

 private:
  Connection& conn_;
};

class SqliteTransaction final : public Transaction {
 public:
  explicit SqliteTransaction(Connection& conn)
      : tenants_(conn),
        api_tokens_(conn),
        users_(conn),
        groups_(conn),
        factors_(conn),
        sessions_(conn),
        authn_transactions_(conn),
        events_(conn),
        provider_tokens_(conn),
        logs_(conn),
        support_(conn),
        oidc_(conn),
        incidents_(conn.db()),
        shared_state_(conn) {}

  TenantRepository& Tenants() override { return tenants_; }
  ApiTokenRepository& ApiTokens() override { return api_tokens_; }
  UserRepository& Users() override { return users_; }
  GroupRepository& Groups() override { return groups_; }
  FactorRepository& Factors() override { return factors_; }
  SessionRepository& Sessions() override { return sessions_; }
  AuthnTransactionRepository& AuthnTransactions() override { return authn_transactions_; }
  EventRepository& Events() override { return events_; }
  ProviderTokenRepository& ProviderTokens() override { return provider_tokens_; }
  LogRepository& Logs() override { return logs_; }
  SupportRepository& Support() override { return support_; }
  OidcRepository& Oidc() override { return oidc_; }
  IncidentRepository& Incidents() override { return incidents_; }
  SharedStateRepository& SharedState() override { return shared_state_; }

 private:
  SqliteTenants tenants_;
  SqliteApiTokens api_tokens_;
  SqliteUsers users_;
  SqliteGroups groups_;
  SqliteFactors factors_;
  SqliteSessions sessions_;
  SqliteAuthnTransactions authn_transactions_;
  SqliteEvents events_;
  SqliteProviderTokens provider_tokens_;
  SqliteLogs logs_;
  SqliteSupport support_;
  SqliteOidc oidc_;
  sqlite::SqliteIncidentRepository incidents_;
  SqliteSharedState shared_state_;
};

// The stores whose transaction callbacks are running on this thread, innermost last. A nested
// Write would wait forever for the write lock its own thread holds, and nested Reads could
// drain the pool, so both are refused instead.
thread_local std::vector<const void*> active_stores;

class ActiveStoreScope {
 public:
  explicit ActiveStoreScope(const void* store) { active_stores.push_back(store); }
  ~ActiveStoreScope() { active_stores.pop_back(); }
  ActiveStoreScope(const ActiveStoreScope&) = delete;
  ActiveStoreScope& operator=(const ActiveStoreScope&) = delete;

  static bool Contains(const void* store) {
    return std::find(active_stores.begin(), active_stores.end(), store) != active_stores.end();
  }
};

// One Write waiting for its callback to run, and what became of it. The leader of the group that
// runs it writes `status` and `exception` before it marks it done.
struct PendingWrite {
  explicit PendingWrite(absl::FunctionRef<absl::Status(Transaction&)> callback) : fn(callback) {}

  absl::FunctionRef<absl::Status(Transaction&)> fn;
  absl::Status status;
  std::exception_ptr exception;  // what fn threw; rethrown on the thread that called Write
  bool done = false;             // guarded by WriteQueue::mu_
  bool leads = false;            // guarded by WriteQueue::mu_: it runs the next group
};

// Forms the writers into groups that share one transaction and one commit (group commit): while
// a group commits, the writers that arrive queue up, and the first of them then runs the whole
// queue, up to kMaxGroupWrites, as the next group. One group runs at a time, and groups are taken
// in arrival order, so nobody waits behind more than the writers that were already queued (a
// plain mutex lets a thread that writes in a loop take it back again and again while another
// writer, such as the log sequencer, waits indefinitely).
class WriteQueue {
 public:
  // Bounds the work that the first writer of a group waits for after its own callback.
  static constexpr size_t kMaxGroupWrites = 256;

  // Blocks until another writer's group has run `write` (returns an empty group), or until
  // `write` leads the next group (returns the group, `write` first, in arrival order). A leader
  // must call Finish with its group.
  std::vector<PendingWrite*> Join(PendingWrite& write) {
    absl::MutexLock lock(&mu_);
    waiting_.push_back(&write);
    if (!leading_) {
      leading_ = true;
      write.leads = true;
    }
    mu_.Await(absl::Condition(&DoneOrLeads, &write));
    if (write.done) return {};
    // Invariant: the writer that leads is the oldest one waiting.
    const size_t size = std::min(waiting_.size(), kMaxGroupWrites);
    std::vector<PendingWrite*> group(waiting_.begin(), waiting_.begin() + size);
    waiting_.erase(waiting_.begin(), waiting_.begin() + size);
    return group;
  }

  // Wakes every member of `group` (none may be touched afterwards: their Writes return) and
  // hands the lead to the oldest writer waiting.
  void Finish(const std::vector<PendingWrite*>& group) {
    absl::MutexLock lock(&mu_);
    for (PendingWrite* write : group) write->done = true;
    if (waiting_.empty()) {
      leading_ = false;
    } else {
      waiting_.front()->leads = true;
    }
  }

 private:
  static bool DoneOrLeads(PendingWrite* write) { return write->done || write->leads; }

  absl::Mutex mu_;
  std::deque<PendingWrite*> waiting_ ABSL_GUARDED_BY(mu_);
  // A leader has been chosen and has not finished. When false, nobody is waiting.
  bool leading_ ABSL_GUARDED_BY(mu_) = false;
};

// Copies committed pages from the WAL into the database file on its own thread and connection,
// so that commits do not do it (SQLite's default is that the commit that crosses
// wal_autocheckpoint pages does the copy and the fsync, stalling its caller). PASSIVE
// checkpoints never block writers; when the WAL grows past kRestartFrames anyway (writers
// outpacing the copy), a RESTART checkpoint waits for a quiet moment so the WAL starts over.
class Checkpointer {
 public:
  explicit Checkpointer(sqlite3* db) : db_(db), thread_([this] { Run(); }) {}
  ~Checkpointer() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
    sqlite3_close_v2(db_);
  }

 private:
  static constexpr int kRestartFrames = 16384;  // 64 MiB of 4 KiB pages
  static constexpr absl::Duration kInterval = absl::Milliseconds(20);

  void Run() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), kInterval)) return;
      }
      int frames = 0;
      int copied = 0;
      sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &copied);
      if (frames > kRestartFrames) {
        sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_RESTART, &frames, &copied);
      }
    }
  }

  sqlite3* const db_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// A leader lease of the SQLite store: an exclusive flock() on a lock file beside the database.
// The kernel releases it when the descriptor closes, also when the process dies.
class FileLeaderLease final : public LeaderLease {
 public:
  FileLeaderLease(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~FileLeaderLease() override { ::close(fd_); }

  // The lock is the file's: a lock file deleted or replaced since (by hand) would let another
  // process lock a new file of that name, so the lease is then lost.
  bool Held() override {
    absl::MutexLock lock(&mu_);
    if (lost_) return false;
    struct stat held {};
    struct stat named {};
    if (::fstat(fd_, &held) != 0 || ::stat(path_.c_str(), &named) != 0 ||
        held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
      lost_ = true;
    }
    return !lost_;
  }

 private:
  const std::string path_;
  const int fd_;
  absl::Mutex mu_;
  bool lost_ ABSL_GUARDED_BY(mu_) = false;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, std::unique_ptr<Connection> writer,
              std::vector<std::unique_ptr<Connection>> readers,
              std::unique_ptr<Checkpointer> checkpointer)
      : path_(std::move(path)),
        checkpointer_(std::move(checkpointer)),
        writer_(std::move(writer)),
        readers_(std::move(readers)) {
    for (auto& reader : readers_) idle_.push_back(reader.get());
  }
  ~SqliteStore() override { Close(); }

  absl::Status Write(absl::FunctionRef<absl::Status(Transaction&)> fn) override {
    const auto start = std::chrono::steady_clock::now();
    if (ActiveStoreScope::Contains(this)) return NestedError();
    PendingWrite write(fn);
    std::vector<PendingWrite*> group = writes_.Join(write);
    if (!group.empty()) {
      RunGroup(group);
      writes_.Finish(group);
    }
    Report("write", start, write.status.ok());
    if (write.exception) std::rethrow_exception(write.exception);
    return write.status;
  }

  absl::Status Read(absl::FunctionRef<absl::Status(Transaction&)> fn) override {
    const auto start = std::chrono::steady_clock::now();
    if (ActiveStoreScope::Contains(this)) return NestedError();
    ASSIGN_OR_RETURN(Connection * reader, AcquireReader());
    absl::Cleanup release = [&] { ReleaseReader(reader); };
    const absl::Status status = RunTransaction(*reader, "BEGIN DEFERRED", fn);
    std::move(release).Invoke();
    Report("read", start, status.ok());
    return status;
  }

  absl::Status Ping() override {
    ASSIGN_OR_RETURN(Connection * reader, AcquireReader());
    absl::Cleanup release = [&] { ReleaseReader(reader); };
    ASSIGN_OR_RETURN(Statement stmt, reader->Prepare("SELECT 1 FROM schema_migrations LIMIT 1",
                                                     "checking the database"));
    return stmt.Step().status();
  }

  void Close() override {
    checkpointer_.reset();  // stopped before the connections it works beside
    {
      absl::MutexLock lock(&pool_mu_);
      closed_ = true;
      // In-flight reads finish first; their connections come back to idle_.
      pool_mu_.Await(absl::Condition(this, &SqliteStore::AllReadersIdle));
      idle_.clear();
      readers_.clear();
    }
    absl::MutexLock lock(&write_mu_);
    if (writer_ == nullptr) return;
    // Folds the WAL back into the database file so that the file alone is the whole database.
    writer_->Checkpoint();
    writer_.reset();
  }

  void SetObserver(StoreObserver* observer) override {
    observer_.store(observer, std::memory_order_release);
  }

  // Another process on the same file (custos demo, an admin command) takes the same lock file;
  // the file stays when the lease ends, since removing it would race with a process opening it.
  absl::StatusOr<std::unique_ptr<LeaderLease>> TryLead(std::string_view name) override {
    RETURN_IF_ERROR(LeaderLease::CheckName(name));
    {
      absl::MutexLock lock(&pool_mu_);
      if (closed_) return ClosedError();
    }
    std::string path = fmt::format("{}.{}.lock", path_, name);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return absl::InternalError(fmt::format("opening {}: {}", path, std::strerror(errno)));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) return nullptr;
      return absl::InternalError(fmt::format("locking {}: {}", path, std::strerror(error)));
    }
    return std::make_unique<FileLeaderLease>(std::move(path), fd);
  }

 private:
  static absl::Status ClosedError() { return absl::FailedPreconditionError("the store is closed"); }
  static absl::Status NestedError() {
    return absl::FailedPreconditionError(
        "a store transaction cannot start inside another transaction of the same store");
  }

  // Runs every member of `group` and sets its status: all in one transaction, unless the engine
  // ends one midway, when the members not yet run get the next.
  void RunGroup(const std::vector<PendingWrite*>& group) {
    absl::MutexLock lock(&write_mu_);
    if (writer_ == nullptr) {
      for (PendingWrite* write : group) write->status = ClosedError();
      return;
    }
    // The callbacks of the whole group run on this thread: a transaction that one of them starts
    // on this store is refused here as it would be on its own thread.
    ActiveStoreScope scope(this);
    const std::span<PendingWrite* const> members(group);
    size_t finished = 0;
    while (finished < members.size()) {
      finished += RunGroupTransaction(*writer_, members.subspan(finished));
    }
  }

  // Runs members, in order, in one transaction, each callback in its own savepoint, and commits
  // them together. Returns how many it ran (at least one); each of them has its final status.
  static size_t RunGroupTransaction(Connection& conn, std::span<PendingWrite* const> members) {
    if (const absl::Status begun = conn.Exec("BEGIN IMMEDIATE"); !begun.ok()) {
      for (PendingWrite* write : members) write->status = begun;
      return members.size();
    }
    // Whatever way this returns, the connection must not stay inside the transaction.
    absl::Cleanup rollback = [&] { conn.RollbackIfOpen(); };
    SqliteTransaction txn(conn);
    size_t ran = 0;
    while (ran < members.size()) {
      PendingWrite& write = *members[ran++];
      write.status = RunInSavepoint(conn, txn, write);
      if (sqlite3_get_autocommit(conn.db()) != 0) {
        // The engine rolled the whole transaction back (after an I/O error or a full disk, say),
        // or a savepoint could not be undone: nothing that ran in it stays.
        const absl::Status lost = absl::InternalError(fmt::format(
            "the write transaction ended before its commit, after: {}", write.status.ToString()));
        for (PendingWrite* member : members.first(ran)) {
          if (member->status.ok()) member->status = lost;
        }
        return ran;
      }
    }
    // A failed callback keeps its own status; every other member shares the commit's outcome.
    const absl::Status committed = conn.Exec("COMMIT");
    if (!committed.ok()) {
      for (PendingWrite* write : members) {
        if (write->status.ok()) write->status = committed;
      }
    }
    return ran;
  }

  // Runs one callback of a group inside a savepoint, so that its failure undoes its own changes
  // and nobody else's. Ends the whole transaction when the savepoint cannot be undone, rather
  // than let a failed callback's changes commit.
  static absl::Status RunInSavepoint(Connection& conn, SqliteTransaction& txn,
                                     PendingWrite& write) {
    RETURN_IF_ERROR(conn.Exec("SAVEPOINT group_member"));
    absl::Status status;
    try {
      status = write.fn(txn);
    } catch (...) {
      // Thrown on the leader's thread; its own caller rethrows it.
      write.exception = std::current_exception();
      status = absl::InternalError("the write callback threw an exception");
    }
    if (status.ok()) {
      status = conn.Exec("RELEASE group_member");
      if (status.ok()) return status;
    }
    const absl::Status undone = conn.Exec("ROLLBACK TO group_member");
    const absl::Status released = conn.Exec("RELEASE group_member");
    if (!undone.ok() || !released.ok()) conn.RollbackIfOpen();
    return status;
  }

  absl::Status RunTransaction(Connection& conn, std::string_view begin,
                              absl::FunctionRef<absl::Status(Transaction&)> fn) {
    RETURN_IF_ERROR(conn.Exec(begin));
    // Whatever way this returns (error, failed commit, exception from fn), the connection must
    // not stay inside the transaction.
    absl::Cleanup rollback = [&] { conn.RollbackIfOpen(); };
    ActiveStoreScope scope(this);
    SqliteTransaction txn(conn);
    RETURN_IF_ERROR(fn(txn));
    return conn.Exec("COMMIT");
  }

  absl::StatusOr<Connection*> AcquireReader() {
    absl::MutexLock lock(&pool_mu_);
    pool_mu_.Await(absl::Condition(this, &SqliteStore::ReaderAvailableOrClosed));
    if (closed_) return ClosedError();
    Connection* reader = idle_.back();
    idle_.pop_back();
    return reader;
  }

  void ReleaseReader(Connection* reader) {
    absl::MutexLock lock(&pool_mu_);
    idle_.push_back(reader);
  }

  bool ReaderAvailableOrClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_mu_) {
    return closed_ || !idle_.empty();
  }
  bool AllReadersIdle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(pool_mu_) {
    return idle_.size() == readers_.size();
  }

  void Report(std::string_view kind, std::chrono::steady_clock::time_point start, bool ok) {
    StoreObserver* observer = observer_.load(std::memory_order_acquire);
    if (observer == nullptr) return;
    observer->OnTransaction(kind, absl::FromChrono(std::chrono::steady_clock::now() - start), ok);
  }

  const std::string path_;  // the database file; lock files sit beside it
  std::unique_ptr<Checkpointer> checkpointer_;
  WriteQueue writes_;
  absl::Mutex write_mu_;  // the write connection: held by the leader of the running group
  std::unique_ptr<Connection> writer_ ABSL_GUARDED_BY(write_mu_);

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<Connection>> readers_ ABSL_GUARDED_BY(pool_mu_);
  std::vector<Connection*> idle_ ABSL_GUARDED_BY(pool_mu_);
  bool closed_ ABSL_GUARDED_BY(pool_mu_) = false;

  std::atomic<StoreObserver*> observer_{nullptr};
};

absl::Status PrepareFile(const std::string& path) {
  const std::filesystem::path file(path);
  if (file.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(file.parent_path(), error);
    if (error) {
      return absl::InternalError(
          fmt::format("creating {}: {}", file.parent_path().string(), error.message()));
    }
  }
  // The database holds password hashes and sealed secrets: only its owner may read it. SQLite
  // gives the -wal and -shm files the same mode. An existing file keeps its mode.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InternalError(fmt::format("opening {}: {}", path, std::strerror(errno)));
  }
  ::close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const SqliteOptions& options) {
  if (options.path.empty() || options.path == ":memory:" || options.path.starts_with("file:")) {
    return absl::InvalidArgumentError("SqliteOptions.path must name a database file");
  }
  if (options.read_connections < 1) {
    return absl::InvalidArgumentError(fmt::format(
        "SqliteOptions.read_connections must be at least 1, got {}", options.read_connections));
  }
  RETURN_IF_ERROR(PrepareFile(options.path));
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> writer,
                   Connection::Open(options.path, /*read_only=*/false, options.synchronous_full,
                                    options.writer_cache_mib));
  RETURN_IF_ERROR(sqlite::ApplyMigrations(writer->db(), sqlite::SchemaMigrations()));
  std::vector<std::unique_ptr<Connection>> readers;
  for (int i = 0; i < options.read_connections; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> reader,
                     Connection::Open(options.path, /*read_only=*/true, options.synchronous_full,
                                      options.writer_cache_mib));
    readers.push_back(std::move(reader));
  }
  // Commits leave the WAL to the checkpointer.
  if (const int rc =
          sqlite3_exec(writer->db(), "PRAGMA wal_autocheckpoint=0", nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return ErrorFromSqlite(writer->db(), rc, "handing WAL checkpoints to their own thread");
  }
  sqlite3* checkpoint_db = nullptr;
  if (const int rc = sqlite3_open_v2(options.path.c_str(), &checkpoint_db,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
      rc != SQLITE_OK) {
    absl::Status error = ErrorFromSqlite(checkpoint_db, rc, "opening the checkpoint connection");
    sqlite3_close_v2(checkpoint_db);
    return error;
  }
  // A RESTART checkpoint holds new writers back while it waits for readers: never for long.
  sqlite3_busy_timeout(checkpoint_db, 100);
  return std::make_unique<SqliteStore>(options.path, std::move(writer), std::move(readers),
                                       std::make_unique<Checkpointer>(checkpoint_db));
}

}  // namespace custos::store
