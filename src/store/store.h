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
#include <memory>
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
  // Replaces the mutable fields (log_public, support_policy). kNotFound when the tenant does not
  // exist.
  virtual absl::Status Update(const TenantRecord& tenant) = 0;
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
  // By id; kNotFound when the session has ended (or never existed).
  virtual absl::StatusOr<SessionRecord> Get(const TenantId& tenant, const SessionId& id) = 0;
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
  // Non-empty: only events of this eventType; `limit` counts the matching ones.
  std::string event_type;
};

class EventRepository {
 public:
  virtual ~EventRepository() = default;
  // Appends in the current transaction; assigns and returns `seq` (event.seq and
  // event.log_index are ignored). kAlreadyExists when the uuid is taken; kInvalidArgument when
  // the json is longer than kMaxEventBytes (it could not be a log entry). The tenant may be
  // kProviderLogId (no tenant row needed); any other tenant must exist.
  virtual absl::StatusOr<int64_t> Append(const EventRecord& event) = 0;
  // Events of one log (a tenant, or kProviderLogId), each with its log_index when sequenced.
  virtual absl::StatusOr<std::vector<EventRecord>> Query(const TenantId& tenant,
                                                         const EventQuery& query) = 0;
};

// Provider tokens (reading the provider log when it is not public).
class ProviderTokenRepository {
 public:
  virtual ~ProviderTokenRepository() = default;
  // kAlreadyExists when the id or the hash is taken.
  virtual absl::Status Insert(const ProviderTokenRecord& token) = 0;
  virtual absl::StatusOr<ProviderTokenRecord> FindByHash(std::string_view token_hash) = 0;
};

// Where an event went in its log.
struct LogEntryRef {
  int64_t seq = 0;     // EventRecord::seq
  std::string log_id;  // must equal the event's tenant_id
  uint64_t index = 0;  // position in that log
};

// The verifiable logs: outbox, entry positions, tiles, tree states, checkpoints and signing
// keys. Log ids are tenant ids or kProviderLogId. Only the sequencer writes entries, tiles,
// states and checkpoints.
//
// The outbox is every appended event that has no position yet, in commit order (the order of
// seq). "Unsequenced" reads it; "AddEntries" gives positions and moves the outbox past them.
class LogRepository {
 public:
  virtual ~LogRepository() = default;

  // Up to `limit` (> 0) events of any log that have no position yet, in commit order,
  // oldest first. Reads across tenants (the sequencer is the only caller). An event stored with
  // a leaf hash comes with it and with an empty json; one without, with its json.
  virtual absl::StatusOr<std::vector<EventRecord>> Unsequenced(int limit) = 0;
  // Records the positions of events returned by Unsequenced. `entries` must be exactly a
  // prefix of what Unsequenced returned, in the same order (kFailedPrecondition otherwise);
  // kAlreadyExists when a (log_id, index) is taken. The outbox then starts after the last one.
  virtual absl::Status AddEntries(const std::vector<LogEntryRef>& entries) = 0;
  // Entries [first, first + count) of a log, in index order, each with log_index set; stops
  // early where an index has no event (so a missing row shows as a short result).
  virtual absl::StatusOr<std::vector<EventRecord>> Entries(std::string_view log_id, uint64_t first,
                                                           int count) = 0;
  // The event with this uuid in this log (log_index set when sequenced). kNotFound otherwise.
  virtual absl::StatusOr<EventRecord> FindEvent(std::string_view log_id, std::string_view uuid) = 0;

  // Inserts or replaces the tile (log_id, level, index).
  virtual absl::Status PutTile(const LogTileRecord& tile) = 0;
  // kNotFound when the tile has never been written.
  virtual absl::StatusOr<LogTileRecord> GetTile(std::string_view log_id, int level,
                                                uint64_t index) = 0;

  // kNotFound for a log that has no entry yet.
  virtual absl::StatusOr<LogStateRecord> GetState(std::string_view log_id) = 0;
  // Inserts or replaces.
  virtual absl::Status PutState(const LogStateRecord& state) = 0;
  // Every log that has a state, by log id.
  virtual absl::StatusOr<std::vector<LogStateRecord>> ListStates() = 0;

  // Inserts; kAlreadyExists when (log_id, size) already has a checkpoint.
  virtual absl::Status PutCheckpoint(const CheckpointRecord& checkpoint) = 0;
  // The checkpoint of the largest size. kNotFound when the log has none.
  virtual absl::StatusOr<CheckpointRecord> LatestCheckpoint(std::string_view log_id) = 0;
  // kNotFound when no checkpoint was signed at exactly this size.
  virtual absl::StatusOr<CheckpointRecord> GetCheckpoint(std::string_view log_id,
                                                         uint64_t size) = 0;

  // kAlreadyExists when the id is taken.
  virtual absl::Status InsertKey(const LogKeyRecord& key) = 0;
  // Every key, oldest first.
  virtual absl::StatusOr<std::vector<LogKeyRecord>> ListKeys() = 0;
  // Sets `retired`. kNotFound when the id does not exist.
  virtual absl::Status RetireKey(std::string_view id, absl::Time when) = 0;
};

// Which operator tokens RevokeOperatorTokens ends: every unrevoked token matching all the set
// fields (at least one must be set).
struct OperatorTokenFilter {
  std::optional<std::string> vendor_id;
  std::optional<UserId> operator_id;
  std::optional<std::string> device_id;
  std::optional<SessionId> session_id;
};

// The support access plane's records (records.h). Tenant-scoped records (cases, requests,
// grants, confirmations) are read per tenant, except by the methods named "...AcrossTenants",
// which the provider side uses for one operator or vendor. Lists are ordered by id, ascending,
// unless they say otherwise. Update* replaces every mutable field of the row with the same id
// (and tenant); kNotFound when there is none.
class SupportRepository {
 public:
  virtual ~SupportRepository() = default;

  // Vendors. kAlreadyExists when the id or the name is taken.
  virtual absl::Status InsertVendor(const VendorRecord& vendor) = 0;
  virtual absl::Status UpdateVendor(const VendorRecord& vendor) = 0;
  virtual absl::StatusOr<VendorRecord> GetVendor(std::string_view id) = 0;
  virtual absl::StatusOr<std::vector<VendorRecord>> ListVendors() = 0;

  // Operators, by their provider-tenant user id. kAlreadyExists when the user is already one;
  // kNotFound when the vendor does not exist.
  virtual absl::Status InsertOperator(const OperatorRecord& op) = 0;
  virtual absl::Status UpdateOperator(const OperatorRecord& op) = 0;
  virtual absl::StatusOr<OperatorRecord> GetOperator(const UserId& user_id) = 0;
  // Every operator, or only the vendor's when `vendor_id` is set; by user id.
  virtual absl::StatusOr<std::vector<OperatorRecord>> ListOperators(
      std::optional<std::string> vendor_id) = 0;

  // Devices. kAlreadyExists when the id or the jkt is taken; kNotFound for an unknown vendor.
  virtual absl::Status InsertDevice(const DeviceRecord& device) = 0;
  virtual absl::Status UpdateDevice(const DeviceRecord& device) = 0;
  virtual absl::StatusOr<DeviceRecord> GetDevice(std::string_view id) = 0;
  virtual absl::StatusOr<DeviceRecord> GetDeviceByJkt(std::string_view jkt) = 0;
  virtual absl::StatusOr<std::vector<DeviceRecord>> ListDevices(
      std::optional<std::string> vendor_id) = 0;

  // Enrolment tokens. kAlreadyExists when the id or hash is taken.
  virtual absl::Status InsertEnrollmentToken(const EnrollmentTokenRecord& token) = 0;
  virtual absl::StatusOr<EnrollmentTokenRecord> FindEnrollmentTokenByHash(
      std::string_view token_hash) = 0;
  virtual absl::Status UpdateEnrollmentToken(const EnrollmentTokenRecord& token) = 0;

  // Operator access tokens. kAlreadyExists when the id or hash is taken.
  virtual absl::Status InsertOperatorToken(const OperatorTokenRecord& token) = 0;
  virtual absl::StatusOr<OperatorTokenRecord> FindOperatorTokenByHash(
      std::string_view token_hash) = 0;
  // Sets `revoked = when` on every unrevoked token matching `filter`; returns how many.
  // kInvalidArgument when no field of the filter is set.
  virtual absl::StatusOr<int> RevokeOperatorTokens(const OperatorTokenFilter& filter,
                                                   absl::Time when) = 0;

  // Support cases. kNotFound (insert) when the tenant does not exist.
  virtual absl::Status InsertCase(const SupportCaseRecord& support_case) = 0;
  virtual absl::Status UpdateCase(const SupportCaseRecord& support_case) = 0;
  virtual absl::StatusOr<SupportCaseRecord> GetCase(const TenantId& tenant,
                                                    std::string_view id) = 0;
  virtual absl::StatusOr<std::vector<SupportCaseRecord>> ListCases(const TenantId& tenant) = 0;

  // Access requests.
  virtual absl::Status InsertAccessRequest(const AccessRequestRecord& request) = 0;
  virtual absl::Status UpdateAccessRequest(const AccessRequestRecord& request) = 0;
  virtual absl::StatusOr<AccessRequestRecord> GetAccessRequest(const TenantId& tenant,
                                                               std::string_view id) = 0;
  // The tenant's requests, only those with `status` when set.
  virtual absl::StatusOr<std::vector<AccessRequestRecord>> ListAccessRequests(
      const TenantId& tenant, std::optional<std::string> status) = 0;
  // One operator's requests in every tenant.
  virtual absl::StatusOr<std::vector<AccessRequestRecord>>
  ListAccessRequestsOfOperatorAcrossTenants(const UserId& operator_id) = 0;

  // Grants.
  virtual absl::Status InsertGrant(const GrantRecord& grant) = 0;
  virtual absl::Status UpdateGrant(const GrantRecord& grant) = 0;
  virtual absl::StatusOr<GrantRecord> GetGrant(const TenantId& tenant, std::string_view id) = 0;
  // The tenant's grants, only those with `status` when set.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListGrants(
      const TenantId& tenant, std::optional<std::string> status) = 0;
  // Every ACTIVE grant of the tenant for this case.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListActiveGrantsOfCase(
      const TenantId& tenant, std::string_view case_id) = 0;
  // Every grant (any status) of one operator, in every tenant.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListGrantsOfOperatorAcrossTenants(
      const UserId& operator_id) = 0;
  // Every ACTIVE grant of the vendor's operators, in every tenant (the kill switch).
  virtual absl::StatusOr<std::vector<GrantRecord>> ListActiveGrantsOfVendorAcrossTenants(
      std::string_view vendor_id) = 0;

  // Confirmations of guarded actions.
  virtual absl::Status InsertConfirmation(const ConfirmationRecord& confirmation) = 0;
  virtual absl::Status UpdateConfirmation(const ConfirmationRecord& confirmation) = 0;
  virtual absl::StatusOr<ConfirmationRecord> GetConfirmation(const TenantId& tenant,
                                                             std::string_view id) = 0;
  // The tenant's confirmations, only those with `status` when set.
  virtual absl::StatusOr<std::vector<ConfirmationRecord>> ListConfirmations(
      const TenantId& tenant, std::optional<std::string> status) = 0;
  // The newest confirmation (largest created, then id) for this grant, action and target
  // whatever its status; kNotFound when there is none.
  virtual absl::StatusOr<ConfirmationRecord> FindConfirmation(const TenantId& tenant,
                                                              std::string_view grant_id,
                                                              std::string_view action,
                                                              std::string_view target) = 0;

  // Records a sighting. When (operator, kind, value) is new, returns how many other values of
  // that operator and kind were known before it; -1 when it was already known (nothing changes).
  virtual absl::StatusOr<int> AddSighting(const SightingRecord& sighting) = 0;

  // Provider-wide settings of the support plane (e.g. "device_policy", a JSON text). kNotFound
  // when never set; PutSetting inserts or replaces.
  virtual absl::StatusOr<std::string> GetSetting(std::string_view key) = 0;
  virtual absl::Status PutSetting(std::string_view key, std::string_view value) = 0;
};

// OpenID Connect state of each tenant: signing keys, apps, authorization codes, refresh tokens
// and revoked access tokens. Everything is per tenant.
class OidcRepository {
 public:
  virtual ~OidcRepository() = default;

  // Keys. kAlreadyExists when the (tenant, kid) is taken.
  virtual absl::Status InsertKey(const OidcKeyRecord& key) = 0;
  virtual absl::Status UpdateKey(const OidcKeyRecord& key) = 0;  // kNotFound when absent
  // The tenant's keys, oldest first.
  virtual absl::StatusOr<std::vector<OidcKeyRecord>> ListKeys(const TenantId& tenant) = 0;

  // Apps. kAlreadyExists when the id is taken; kNotFound for an unknown tenant.
  virtual absl::Status InsertApp(const AppRecord& app) = 0;
  virtual absl::Status UpdateApp(const AppRecord& app) = 0;
  virtual absl::Status DeleteApp(const TenantId& tenant, std::string_view id) = 0;
  virtual absl::StatusOr<AppRecord> GetApp(const TenantId& tenant, std::string_view id) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<AppRecord>> ListApps(const TenantId& tenant,
                                                          const Page& page) = 0;

  // Authorization codes. kAlreadyExists when the hash is taken.
  virtual absl::Status InsertCode(const AuthCodeRecord& code) = 0;
  virtual absl::StatusOr<AuthCodeRecord> FindCode(const TenantId& tenant,
                                                  std::string_view code_hash) = 0;
  virtual absl::Status UpdateCode(const AuthCodeRecord& code) = 0;
  // Deletes codes with expires <= now; returns how many.
  virtual absl::StatusOr<int> DeleteExpiredCodes(const TenantId& tenant, absl::Time now) = 0;

  // Refresh tokens. kAlreadyExists when the id or hash is taken.
  virtual absl::Status InsertRefreshToken(const RefreshTokenRecord& token) = 0;
  virtual absl::StatusOr<RefreshTokenRecord> FindRefreshToken(const TenantId& tenant,
                                                              std::string_view token_hash) = 0;
  virtual absl::Status UpdateRefreshToken(const RefreshTokenRecord& token) = 0;
  // Sets revoked = when on every unrevoked token of the family; returns how many.
  virtual absl::StatusOr<int> RevokeFamily(const TenantId& tenant, std::string_view family_id,
                                           absl::Time when) = 0;
  // Sets revoked = when on every unrevoked refresh token of the user's session (sign-out).
  virtual absl::StatusOr<int> RevokeRefreshTokensOfSession(const TenantId& tenant,
                                                           const SessionId& session,
                                                           absl::Time when) = 0;
  // Ends every token the user holds, as the directory does with the user's sessions (suspension,
  // deactivation, a password reset, an admin clearing the sessions): sets revoked = when on every
  // unrevoked refresh token of the user, in every session, and records `when` as the user's
  // token revocation time (revoked_tokens row with jti kUserRevocationPrefix + user id, kept
  // until `keep_until`; a later call moves both forward). Returns the refresh tokens revoked.
  virtual absl::StatusOr<int> RevokeTokensOfUser(const TenantId& tenant, const UserId& user,
                                                 absl::Time when, absl::Time keep_until) = 0;
  // The user's token revocation time (RevokeTokensOfUser), when one is recorded: access tokens
  // issued before it are revoked.
  virtual absl::StatusOr<std::optional<absl::Time>> UserTokensRevokedAt(const TenantId& tenant,
                                                                        const UserId& user) = 0;
  // Deletes tokens with expires <= now; returns how many.
  virtual absl::StatusOr<int> DeleteExpiredRefreshTokens(const TenantId& tenant,
                                                         absl::Time now) = 0;

  // Revoked access tokens and families. Inserting an existing (tenant, jti) does nothing.
  virtual absl::Status InsertRevoked(const RevokedTokenRecord& revoked) = 0;
  // True when the jti (or "family:<id>") is revoked.
  virtual absl::StatusOr<bool> IsRevoked(const TenantId& tenant, std::string_view jti) = 0;
  virtual absl::StatusOr<int> DeleteExpiredRevoked(const TenantId& tenant, absl::Time now) = 0;
};

// Which support activity rows QueryActivity returns: those published in [from, to) that match
// the filters, oldest first (by published, then seq).
//
// The id lists are OR-ed: a row matches when its operator_id is in operator_ids, OR its
// vendor_id is in vendor_ids, OR its device_id in device_ids, OR its session_id in session_ids,
// OR its ip in ips. An empty list adds nothing to the OR; when every list is empty, every row in
// the window matches. Empty strings in a list match nothing.
//
// IP ranges (CIDR) are not the store's business: the caller lists the addresses seen in the
// window (ListActivityIps), keeps those in its ranges, and passes them in `ips`.
struct ActivityQuery {
  absl::Time from;  // published >= from
  absl::Time to;    // published < to
  std::vector<std::string> operator_ids;
  std::vector<std::string> vendor_ids;
  std::vector<std::string> device_ids;
  std::vector<std::string> session_ids;
  std::vector<std::string> ips;
  bool by_operator_only = false;  // only rows with by_operator set (the operator acted)
  // Paging: the seq of the last row of the previous page (the rows that follow it in the order
  // above); 0 for the first page.
  int64_t after_seq = 0;
  int limit = 1000;  // must be positive
};

// Incident response (incident/): the support activity index, incidents, tenants' security
// contacts, the notification outbox, and the public status notices. Incidents, activity and
// notices are the provider's; contacts and notifications are tenant data, read per tenant except
// by the methods that say otherwise. Update* replaces the mutable fields of the row with the same
// id (and tenant); kNotFound when there is none.
class IncidentRepository {
 public:
  virtual ~IncidentRepository() = default;

  // ---- Support activity ----

  // Stores the row and returns its seq (row.seq is ignored). kNotFound when the tenant does not
  // exist.
  virtual absl::StatusOr<int64_t> InsertActivity(const SupportActivityRecord& row) = 0;
  // Reads across tenants; see ActivityQuery. kInvalidArgument for a non-positive limit or an
  // after_seq that names no row. Uses an index for each non-empty list, so the cost follows the
  // rows matched rather than the rows in the window (except when every list is empty).
  virtual absl::StatusOr<std::vector<SupportActivityRecord>> QueryActivity(
      const ActivityQuery& query) = 0;
  // Every distinct non-empty ip of a row published in [from, to), ascending (byte order).
  // Costs one index probe per distinct ip of the whole index, not a scan of the window.
  virtual absl::StatusOr<std::vector<std::string>> ListActivityIps(absl::Time from,
                                                                   absl::Time to) = 0;

  // ---- Incidents ----

  // kAlreadyExists when the id is taken.
  virtual absl::Status Insert(const IncidentRecord& incident) = 0;
  virtual absl::StatusOr<IncidentRecord> Get(std::string_view id) = 0;
  // The `limit` (> 0) newest incidents: by created, then id, descending.
  virtual absl::StatusOr<std::vector<IncidentRecord>> List(int limit) = 0;
  // Replaces everything but id, created and created_by.
  virtual absl::Status Update(const IncidentRecord& incident) = 0;

  // ---- Security contacts (per tenant) ----

  // kAlreadyExists when the tenant already has the id; kNotFound for an unknown tenant.
  virtual absl::Status InsertContact(const SecurityContactRecord& contact) = 0;
  // Ordered by id, ascending.
  virtual absl::StatusOr<std::vector<SecurityContactRecord>> ListContacts(
      const TenantId& tenant) = 0;
  virtual absl::StatusOr<SecurityContactRecord> GetContact(const TenantId& tenant,
                                                           std::string_view id) = 0;
  // The tenant's notifications that name the contact stay (with its id).
  virtual absl::Status DeleteContact(const TenantId& tenant, std::string_view id) = 0;

  // ---- Notifications (the outbox) ----

  // kAlreadyExists when the tenant already has the id; kNotFound when the tenant or the incident
  // does not exist. The contact is not checked.
  virtual absl::Status InsertNotification(const NotificationRecord& notification) = 0;
  // Every notification of the incident, in every tenant; by created, then id.
  virtual absl::StatusOr<std::vector<NotificationRecord>> ListNotifications(
      std::string_view incident_id) = 0;
  // The tenant's notifications of every incident; by created, then id.
  virtual absl::StatusOr<std::vector<NotificationRecord>> ListNotificationsForTenant(
      const TenantId& tenant) = 0;
  virtual absl::StatusOr<NotificationRecord> GetNotification(const TenantId& tenant,
                                                             std::string_view id) = 0;
  // Replaces status, attempts, next_attempt, lease_until, last_error, delivered, acknowledged
  // and acknowledged_by.
  virtual absl::Status UpdateNotification(const NotificationRecord& notification) = 0;
  // Leases up to `limit` (> 0) due rows, across tenants, to the caller: rows with status
  // PENDING, next_attempt <= now and no lease (lease_until unset or < now). Sets their
  // lease_until to `lease_until` and returns them so (by next_attempt, then tenant and id). A
  // row stays out of every later LeaseDue until its lease lapses or an UpdateNotification
  // clears it. kFailedPrecondition inside a Read.
  virtual absl::StatusOr<std::vector<NotificationRecord>> LeaseDue(absl::Time now,
                                                                   absl::Time lease_until,
                                                                   int limit) = 0;
  // Whether LeaseDue(now, …) would hand out a row; allowed in a Read, so that an idle worker
  // asks without taking the write lock.
  virtual absl::StatusOr<bool> AnyDue(absl::Time now) = 0;

  // ---- Status notices (public) ----

  // kAlreadyExists when the id is taken.
  virtual absl::Status InsertNotice(const StatusNoticeRecord& notice) = 0;
  // Replaces kind, title, body, incident_id and updated.
  virtual absl::Status UpdateNotice(const StatusNoticeRecord& notice) = 0;
  // The `limit` (> 0) newest notices: by published, then id, descending.
  virtual absl::StatusOr<std::vector<StatusNoticeRecord>> ListNotices(int limit) = 0;
};

// Short-lived state that several `custos serve` processes on one database share, so that they
// act as one service: one-time values already used (e.g. the jti of each accepted DPoP proof)
// and request counts of fixed rate-limit windows. Not tenant data and no rules: `scope` names
// the use (e.g. "dpop.support"), `key` is the caller's (e.g. a client address), and what to
// remember for how long, or what limit a count reaches, is the caller's business. Nothing here
// is logged. Every method writes: kFailedPrecondition inside a Read.
class SharedStateRepository {
 public:
  virtual ~SharedStateRepository() = default;

  // Remembers (scope, key) until `expires`. True when it was not remembered at `now` (never,
  // or only until a time <= now: that row is replaced); false when it still is (nothing
  // changes). Two transactions that remember the same pair concurrently get one true.
  virtual absl::StatusOr<bool> Remember(std::string_view scope, std::string_view key,
                                        absl::Time expires, absl::Time now) = 0;
  // Deletes what was remembered only until a time <= `before`; returns how many rows.
  virtual absl::StatusOr<int> DeleteExpiredKeys(absl::Time before) = 0;

  // Adds `increment` (>= 0; 0 reads) to the count of (scope, key) in the fixed window
  // [window_start, window_end) and returns the count after it. A count of an earlier window of
  // (scope, key) is replaced by this one's (it starts from `increment`); when a later window is
  // counted already (another process's clock is ahead), the increment goes to that window and
  // its count is returned. kInvalidArgument for a negative increment or an empty window.
  virtual absl::StatusOr<int64_t> Count(std::string_view scope, std::string_view key,
                                        absl::Time window_start, absl::Time window_end,
                                        int64_t increment) = 0;
  // Deletes the counts of windows that ended at or before `before`; returns how many rows.
  virtual absl::StatusOr<int> DeleteEndedWindows(absl::Time before) = 0;
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
  virtual ProviderTokenRepository& ProviderTokens() = 0;
  virtual LogRepository& Logs() = 0;
  virtual SupportRepository& Support() = 0;
  virtual OidcRepository& Oidc() = 0;
  virtual IncidentRepository& Incidents() = 0;
  virtual SharedStateRepository& SharedState() = 0;
};

// Observes store latency (for /metrics). Thread-safe implementations only.
class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // kind: "read" or "write"; elapsed includes waiting for the write lock.
  virtual void OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) = 0;
};

// Being the one holder of a name among every process on a store (Store::TryLead), e.g. the one
// node that runs the log sequencer. Held until the lease is destroyed, or until it is lost (the
// PostgreSQL session that holds it ended): a holder must call Held() before each piece of work it
// alone may do, and must still not rely on it alone for safety (a process that stalls after
// Held() said yes may be overtaken; the work must be fenced in the store as well).
// Thread-safe. A lease does not use its store: it may be destroyed before or after it.
class LeaderLease {
 public:
  virtual ~LeaderLease() = default;
  // Whether the lease is still held; once false, always false (destroy it and TryLead again).
  // May wait on the network (PostgreSQL: one round trip, bounded by TCP timeouts of about
  // 10 s when the server vanished).
  virtual bool Held() = 0;

  // Lease names are 1 to 64 characters of a-z, 0-9 and '-'.
  static absl::Status CheckName(std::string_view name) {
    bool ok = !name.empty() && name.size() <= 64;
    for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (ok) return absl::OkStatus();
    return absl::InvalidArgumentError("a lease name is 1 to 64 characters of a-z, 0-9 and '-'");
  }
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
  // Tries to become the one holder of `name` among every process on this store (and every
  // other TryLead of this store). Returns a held lease, or nullptr while another process or
  // lease holds it. kInvalidArgument for a bad name (LeaderLease::CheckName),
  // kFailedPrecondition after Close, kUnimplemented for a store that has no leases, kUnavailable
  // or kInternal when the engine fails. PostgreSQL: a session advisory lock on a connection of
  // its own, released when the lease is destroyed or the session ends (the server notices a
  // vanished client within about 10 s). SQLite: an flock() on <database>.<name>.lock.
  virtual absl::StatusOr<std::unique_ptr<LeaderLease>> TryLead(std::string_view name) {
    (void)name;
    return absl::UnimplementedError("this store has no leader leases");
  }
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
