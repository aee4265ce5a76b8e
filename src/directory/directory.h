#pragma once

// The tenant directory: users, their lifecycle, groups and membership, and second factors.
// Rules live here; api/management translates HTTP to these calls.
//
// Every change is written with its System Log event in one store transaction; a refused
// lifecycle change (e.g. suspending a user who is not active) records a FAILURE event and
// changes nothing else. Requests too malformed to be a decision (bad JSON, unknown or mistyped
// fields) are refused before any of this runs and record no event.
//
// Thread-safe: holds only references to thread-safe services.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "audit/event.h"
#include "authn/password_policy.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/json.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::directory {

// The user as the API shows it, without links: id, status, created, activated,
// statusChanged, lastLogin, lastUpdated, passwordChanged, type, profile, credentials.
// Also the object that `filter` and `search` expressions are evaluated against.
Json UserView(const store::UserRecord& user);
Json GroupView(const store::GroupRecord& group);
// A factor without secrets.
Json FactorView(const store::FactorRecord& factor, std::string_view login);

struct ListQuery {
  std::string after;  // exclusive id cursor
  int limit = 200;
  std::string filter;  // expression over UserView / GroupView
  std::string search;  // same grammar, any property
  std::string q;       // prefix match on login, email, firstName, lastName (or group name)
  // Records examined per call at most; a page may then hold fewer than `limit` matches (even
  // none) and still have a next cursor.
  int scan_budget = 10000;
};

template <typename T>
struct ListResult {
  std::vector<T> items;
  std::string next_after;  // empty when there is no next page
};

// A one-time token issued by activation or a password reset, shown to the admin once.
struct IssuedToken {
  store::UserRecord user;
  std::string token;
};

struct FactorEnrollment {
  store::FactorRecord factor;
  std::string shared_secret;  // base32
  std::string otpauth_uri;
};

class Directory {
 public:
  Directory(store::Store& store, const Config& config, const Clock& clock, crypto::Random& random,
            const crypto::PasswordHasher& hasher, const crypto::Sealer& sealer);

  // Users. `password` is set when the create request carried credentials.password.value.
  absl::StatusOr<store::UserRecord> CreateUser(const TenantId& tenant,
                                               const audit::RequestContext& ctx,
                                               const Json& profile,
                                               const std::optional<std::string>& password,
                                               bool activate);
  // By id, or else by login (case-insensitive).
  absl::StatusOr<store::UserRecord> GetUser(const TenantId& tenant, std::string_view id_or_login);
  absl::StatusOr<ListResult<store::UserRecord>> ListUsers(const TenantId& tenant,
                                                          const ListQuery& query);
  // partial: merge into the profile (POST); otherwise replace it (PUT). A password, when
  // given, is changed too.
  absl::StatusOr<store::UserRecord> UpdateUser(const TenantId& tenant,
                                               const audit::RequestContext& ctx,
                                               std::string_view id_or_login, const Json& profile,
                                               const std::optional<std::string>& password,
                                               bool partial);
  // As the reference API: a user not yet DEPROVISIONED is deactivated (returns false); a
  // DEPROVISIONED user is deleted for good with its memberships, factors and sessions (true).
  absl::StatusOr<bool> DeleteUser(const TenantId& tenant, const audit::RequestContext& ctx,
                                  std::string_view id_or_login);

  // Lifecycle.
  absl::StatusOr<IssuedToken> Activate(const TenantId& tenant, const audit::RequestContext& ctx,
                                       std::string_view id);
  absl::Status Deactivate(const TenantId& tenant, const audit::RequestContext& ctx,
                          std::string_view id);
  absl::Status Suspend(const TenantId& tenant, const audit::RequestContext& ctx,
                       std::string_view id);
  absl::Status Unsuspend(const TenantId& tenant, const audit::RequestContext& ctx,
                         std::string_view id);
  absl::Status Unlock(const TenantId& tenant, const audit::RequestContext& ctx,
                      std::string_view id);
  absl::StatusOr<IssuedToken> ResetPassword(const TenantId& tenant,
                                            const audit::RequestContext& ctx, std::string_view id);
  absl::Status ResetFactors(const TenantId& tenant, const audit::RequestContext& ctx,
                            std::string_view id);
  // Ends every session of the user; returns how many.
  absl::StatusOr<int> ClearSessions(const TenantId& tenant, const audit::RequestContext& ctx,
                                    std::string_view id);

  // Groups.
  absl::StatusOr<store::GroupRecord> CreateGroup(const TenantId& tenant,
                                                 const audit::RequestContext& ctx,
                                                 const Json& profile);
  absl::StatusOr<store::GroupRecord> GetGroup(const TenantId& tenant, std::string_view id);
  absl::StatusOr<ListResult<store::GroupRecord>> ListGroups(const TenantId& tenant,
                                                            const ListQuery& query);
  absl::StatusOr<store::GroupRecord> UpdateGroup(const TenantId& tenant,
                                                 const audit::RequestContext& ctx,
                                                 std::string_view id, const Json& profile);
  absl::Status DeleteGroup(const TenantId& tenant, const audit::RequestContext& ctx,
                           std::string_view id);
  absl::Status AddMember(const TenantId& tenant, const audit::RequestContext& ctx,
                         std::string_view group_id, std::string_view user_id);
  absl::Status RemoveMember(const TenantId& tenant, const audit::RequestContext& ctx,
                            std::string_view group_id, std::string_view user_id);
  absl::StatusOr<ListResult<store::UserRecord>> ListMembers(const TenantId& tenant,
                                                            std::string_view group_id,
                                                            const std::string& after, int limit);

  // Factors.
  absl::StatusOr<std::vector<store::FactorRecord>> ListFactors(const TenantId& tenant,
                                                               std::string_view user_id);
  absl::StatusOr<store::FactorRecord> GetFactor(const TenantId& tenant, std::string_view user_id,
                                                std::string_view factor_id);
  // Only token:software:totp (provider GOOGLE) for now. A user has at most one TOTP factor; a
  // pending one is replaced.
  absl::StatusOr<FactorEnrollment> EnrollFactor(const TenantId& tenant,
                                                const audit::RequestContext& ctx,
                                                std::string_view user_id,
                                                std::string_view factor_type,
                                                std::string_view provider, std::string_view issuer);
  absl::StatusOr<store::FactorRecord> ActivateFactor(const TenantId& tenant,
                                                     const audit::RequestContext& ctx,
                                                     std::string_view user_id,
                                                     std::string_view factor_id,
                                                     std::string_view passcode);
  // A wrong code records a FAILURE event and counts towards lockout like a wrong password.
  absl::Status VerifyFactor(const TenantId& tenant, const audit::RequestContext& ctx,
                            std::string_view user_id, std::string_view factor_id,
                            std::string_view passcode);
  absl::Status DeleteFactor(const TenantId& tenant, const audit::RequestContext& ctx,
                            std::string_view user_id, std::string_view factor_id);

 private:
  store::EventRecord Event(const TenantId& tenant, const audit::RequestContext& ctx,
                           audit::EventSpec spec) const;
  // What a lifecycle change does to a user whose status allowed it, inside its transaction;
  // statusChanged and lastUpdated are already set to `now`.
  using Change =
      absl::FunctionRef<absl::Status(store::Transaction&, store::UserRecord&, absl::Time now)>;
  // The error for a user whose status does not allow the change.
  using Refusal = absl::FunctionRef<absl::Status(const store::UserRecord&)>;
  // Runs a lifecycle change with its event when the user's status is in `allowed_from`;
  // otherwise records a FAILURE event, changes nothing else and returns `refusal(user)`.
  absl::Status Transition(const TenantId& tenant, const audit::RequestContext& ctx,
                          std::string_view id, std::string_view event_type,
                          std::string_view display, std::vector<std::string_view> allowed_from,
                          Refusal refusal, Change change);
  // The plain case: the status becomes `to` (sessions end when `to` is SUSPENDED or
  // DEPROVISIONED; failed sign-ins reset when it is ACTIVE).
  absl::Status Transition(const TenantId& tenant, const audit::RequestContext& ctx,
                          std::string_view id, std::string_view event_type,
                          std::string_view display, std::vector<std::string_view> allowed_from,
                          std::string_view to, absl::Status refusal);

  store::Store& store_;
  const Config& config_;
  const Clock& clock_;
  crypto::Random& random_;
  const crypto::PasswordHasher& hasher_;
  const crypto::Sealer& sealer_;
  authn::PasswordPolicy policy_;
};

}  // namespace custos::directory
