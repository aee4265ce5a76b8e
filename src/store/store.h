#pragma once

// Repository interfaces. The SQLite store (store/sqlite/) implements them now, PostgreSQL
// later; nothing above store/ sees an engine type.
//
// Tenant isolation: every method on tenant data takes the TenantId and touches only that
// tenant's rows. A method that reads across tenants says so in its name.
//
// All work happens inside a transaction obtained from Store::Write or Store::Read. Errors:
// kNotFound when a row is absent or a record refers to a row that does not exist (e.g. a factor
// for an unknown user, any record for an unknown tenant), kAlreadyExists on a unique-key clash,
// kInvalidArgument for a non-positive page limit, kFailedPrecondition for a write inside a Read,
// kUnavailable when the engine is busy past its timeout (worth a retry), kInternal for other engine
// failures (with the engine's message, which is never shown to API
// clients). Ids are unique per tenant: two tenants may hold rows with the same id.
//
// Times are kept at microsecond precision.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "store/records.h"

namespace custos::store {

class TenantRepository {
 public:
  virtual ~TenantRepository() = default;
  virtual absl::Status Insert(const TenantRecord& tenant) = 0;
  virtual absl::StatusOr<TenantRecord> Get(const TenantId& id) = 0;
  virtual absl::StatusOr<TenantRecord> GetByName(std::string_view name) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<TenantRecord>> List() = 0;
};

class ApiTokenRepository {
 public:
  virtual ~ApiTokenRepository() = default;
  virtual absl::Status Insert(const ApiTokenRecord& token) = 0;
  virtual absl::StatusOr<ApiTokenRecord> FindByHash(const TenantId& tenant,
                                                    std::string_view token_hash) = 0;
  virtual absl::Status TouchLastUsed(const TenantId& tenant, const ApiTokenId& id,
                                     absl::Time when) = 0;
};

struct Page {
  std::string after;  // exclusive cursor: the last id of the previous page; empty for the first
  int limit = 200;    // must be positive
};

class UserRepository {
 public:
  virtual ~UserRepository() = default;
  virtual absl::Status Insert(const UserRecord& user) = 0;
  // Replaces every field of the row with the same tenant and id.
  virtual absl::Status Update(const UserRecord& user) = 0;
  // Also removes the user's group memberships, factors, sessions and authn transactions.
  virtual absl::Status Delete(const TenantId& tenant, const UserId& id) = 0;
  virtual absl::StatusOr<UserRecord> Get(const TenantId& tenant, const UserId& id) = 0;
  // Case-insensitive on login.
  virtual absl::StatusOr<UserRecord> GetByLogin(const TenantId& tenant, std::string_view login) = 0;
  // The user whose recovery_token_hash equals `token_hash` (activation or password reset).
  virtual absl::StatusOr<UserRecord> FindByRecoveryTokenHash(const TenantId& tenant,
                                                             std::string_view token_hash) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<UserRecord>> List(const TenantId& tenant,
                                                       const Page& page) = 0;
  virtual absl::StatusOr<int64_t> Count(const TenantId& tenant) = 0;
};

class GroupRepository {
 public:
  virtual ~GroupRepository() = default;
  virtual absl::Status Insert(const GroupRecord& group) = 0;
  virtual absl::Status Update(const GroupRecord& group) = 0;
  // Also removes its memberships.
  virtual absl::Status Delete(const TenantId& tenant, const GroupId& id) = 0;
  virtual absl::StatusOr<GroupRecord> Get(const TenantId& tenant, const GroupId& id) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<GroupRecord>> List(const TenantId& tenant,
                                                        const Page& page) = 0;
  // AddMember is idempotent, and kNotFound when the group or the user does not exist;
  // RemoveMember returns kNotFound when not a member.
  virtual absl::Status AddMember(const TenantId& tenant, const GroupId& group,
                                 const UserId& user) = 0;
  virtual absl::Status RemoveMember(const TenantId& tenant, const GroupId& group,
                                    const UserId& user) = 0;
  // Member user ids ordered ascending, paged by user id. Empty for an unknown group.
  virtual absl::StatusOr<std::vector<UserId>> ListMembers(const TenantId& tenant,
                                                          const GroupId& group,
                                                          const Page& page) = 0;
  // Ordered by group id, ascending.
  virtual absl::StatusOr<std::vector<GroupId>> ListGroupsOfUser(const TenantId& tenant,
                                                                const UserId& user) = 0;
  virtual absl::Status RemoveUserFromAll(const TenantId& tenant, const UserId& user) = 0;
};

class FactorRepository {
 public:
  virtual ~FactorRepository() = default;
  virtual absl::Status Insert(const FactorRecord& factor) = 0;
  // Matches the row by tenant, id and user_id; kNotFound when the factor is another user's.
  virtual absl::Status Update(const FactorRecord& factor) = 0;
  virtual absl::Status Delete(const TenantId& tenant, const FactorId& id) = 0;
  virtual absl::StatusOr<FactorRecord> Get(const TenantId& tenant, const UserId& user,
                                           const FactorId& id) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<FactorRecord>> ListForUser(const TenantId& tenant,
                                                                const UserId& user) = 0;
  // Returns how many were deleted.
  virtual absl::StatusOr<int> DeleteAllForUser(const TenantId& tenant, const UserId& user) = 0;
};

class SessionRepository {
 public:
  virtual ~SessionRepository() = default;
  virtual absl::Status Insert(const SessionRecord& session) = 0;
  virtual absl::StatusOr<SessionRecord> FindByHash(const TenantId& tenant,
                                                   std::string_view token_hash) = 0;
  virtual absl::Status Touch(const TenantId& tenant, const SessionId& id, absl::Time when) = 0;
  virtual absl::Status Delete(const TenantId& tenant, const SessionId& id) = 0;
  // Returns how many were deleted.
  virtual absl::StatusOr<int> DeleteAllForUser(const TenantId& tenant, const UserId& user) = 0;
  // Deletes sessions past their absolute end (expires <= now) or idle since before
  // `idle_cutoff` (last_active < idle_cutoff); returns how many.
  virtual absl::StatusOr<int> DeleteExpired(const TenantId& tenant, absl::Time now,
                                            absl::Time idle_cutoff) = 0;
};

class AuthnTransactionRepository {
 public:
  virtual ~AuthnTransactionRepository() = default;
  virtual absl::Status Insert(const AuthnTransactionRecord& txn) = 0;
  virtual absl::StatusOr<AuthnTransactionRecord> FindByHash(const TenantId& tenant,
                                                            std::string_view state_token_hash) = 0;
  virtual absl::Status Delete(const TenantId& tenant, std::string_view id) = 0;
  // Deletes transactions with expires <= now; returns how many.
  virtual absl::StatusOr<int> DeleteExpired(const TenantId& tenant, absl::Time now) = 0;
};

struct EventQuery {
  std::optional<absl::Time> since;   // published >= since
  std::optional<absl::Time> until;   // published < until
  std::optional<int64_t> after_seq;  // exclusive cursor in the direction of the sort
  bool descending = false;
  int limit = 100;
};

class EventRepository {
 public:
  virtual ~EventRepository() = default;
  // Appends in the current transaction; assigns and returns `seq` (event.seq is ignored).
  // kAlreadyExists when the uuid is taken.
  virtual absl::StatusOr<int64_t> Append(const EventRecord& event) = 0;
  virtual absl::StatusOr<std::vector<EventRecord>> Query(const TenantId& tenant,
                                                         const EventQuery& query) = 0;
};

// One transaction. Repositories obtained from it are valid only inside the callback that
// received it. Not thread-safe: a transaction belongs to the thread that runs the callback.
class Transaction {
 public:
  virtual ~Transaction() = default;
  virtual TenantRepository& Tenants() = 0;
  virtual ApiTokenRepository& ApiTokens() = 0;
  virtual UserRepository& Users() = 0;
  virtual GroupRepository& Groups() = 0;
  virtual FactorRepository& Factors() = 0;
  virtual SessionRepository& Sessions() = 0;
  virtual AuthnTransactionRepository& AuthnTransactions() = 0;
  virtual EventRepository& Events() = 0;
};

// Observes store latency (for /metrics). Thread-safe implementations only.
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // kind: "read" or "write"; elapsed includes waiting for the write lock.
  virtual void OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) = 0;
};

// Thread-safe: any thread may call Write or Read concurrently. Writes are serialised;
// reads run concurrently with each other and with a write (snapshot isolation). A callback must
// not start another transaction on the same store: such a call fails with kFailedPrecondition
// (it would deadlock), and Close must not be called from a callback.
class Store {
 public:
  virtual ~Store() = default;
  // Runs `fn` in a write transaction. Commits, durably, when fn returns OK; rolls back
  // otherwise and returns fn's status. Nothing fn wrote is visible unless the commit succeeds.
  virtual absl::Status Write(absl::FunctionRef<absl::Status(Transaction&)> fn) = 0;
  // Runs `fn` in a read-only transaction that sees one consistent snapshot.
  virtual absl::Status Read(absl::FunctionRef<absl::Status(Transaction&)> fn) = 0;
  // Cheap liveness check for /readyz.
  virtual absl::Status Ping() = 0;
  // Waits for running transactions, flushes and closes. Further calls fail with
  // kFailedPrecondition; a second Close does nothing.
  virtual void Close() = 0;
  virtual void SetObserver(StoreObserver* observer) = 0;
};

// Runs `fn` (Transaction& -> absl::StatusOr<T>) in a read transaction and returns its result;
// a failure of the transaction itself takes precedence.
template <typename Fn>
auto ReadResult(Store& store, Fn fn) -> decltype(fn(std::declval<Transaction&>())) {
  decltype(fn(std::declval<Transaction&>())) result = absl::UnknownError("not run");
  absl::Status st = store.Read([&](Transaction& tx) {
    result = fn(tx);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return result;
}

}  // namespace custos::store
