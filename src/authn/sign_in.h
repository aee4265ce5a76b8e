#pragma once

// Sign-in for tenant users (docs/sign-in.md): password, then a TOTP factor when the user has an
// active one, then a session; session validation and ending; completing a password recovery.
//
// Answers and their errors (the status carries the management API error code):
//   - SUCCESS: a session token (the session's only credential; the store keeps its SHA-256).
//   - MFA_REQUIRED: a state token for VerifyFactor (also kept only as SHA-256), single use.
//   - kUnauthenticated E0000004 "Authentication failed" for every credential problem: unknown
//     user, wrong password, locked out, user not ACTIVE. The status is the same in every case,
//     and the time taken is about the same (an unknown user is checked against a dummy
//     Argon2id hash), so the answer does not tell whether a username exists.
//   - kPermissionDenied E0000068 for a wrong, malformed or replayed passcode.
//   - kUnauthenticated E0000011 for an unknown, expired or used state or recovery token.
//
// Lockout: every wrong password or passcode of an ACTIVE user adds one to
// users.failed_sign_ins; a full sign-in resets it. At the lockout threshold (config, 1..100,
// default 10) the user becomes LOCKED_OUT and stays so until an administrator unlocks them.
// Independently, answers are held back by a progressive delay (progressive_delay.h), returned
// for the HTTP layer to apply.
//
// Every attempt writes its System Log event in the same store transaction as the state change
// it causes; nothing is returned before that transaction commits. Events never carry a
// password, passcode or token.
//
// Thread-safe. Calls block (Argon2id, store): call from worker threads only.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "authn/password_policy.h"
#include "authn/progressive_delay.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/ids.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::authn {

// Event types written here.
inline constexpr std::string_view kEventSessionStart = "user.session.start";
inline constexpr std::string_view kEventAuthViaMfa = "user.authentication.auth_via_mfa";
inline constexpr std::string_view kEventAccountLock = "user.account.lock";
inline constexpr std::string_view kEventSessionEnd = "user.session.end";
inline constexpr std::string_view kEventSessionClear = "user.session.clear";
inline constexpr std::string_view kEventVerifyRecovery = "user.authentication.verify";
inline constexpr std::string_view kEventResetPassword = "user.account.reset_password";

// outcome.reason values of those events.
inline constexpr std::string_view kReasonInvalidCredentials = "INVALID_CREDENTIALS";
inline constexpr std::string_view kReasonUnknownUser = "UNKNOWN_USER";
inline constexpr std::string_view kReasonLockedOut = "LOCKED_OUT";
inline constexpr std::string_view kReasonUserNotActive = "USER_NOT_ACTIVE";
inline constexpr std::string_view kReasonInvalidToken = "INVALID_TOKEN";
inline constexpr std::string_view kReasonUnknownFactor = "UNKNOWN_FACTOR";
inline constexpr std::string_view kReasonPasswordPolicy = "PASSWORD_POLICY";
inline constexpr std::string_view kReasonMfaRequired = "MFA_REQUIRED";

// The outcome.result of user.session.start when the password was right and a factor is due.
inline constexpr std::string_view kOutcomeChallenge = "CHALLENGE";

// The user as a sign-in answer shows them (no secrets).
struct AuthnUser {
  UserId id;
  std::string login;
  std::optional<absl::Time> password_changed;
  // From the profile; empty when absent.
  std::string first_name;
  std::string last_name;
  std::string locale;
  std::string time_zone;
};

struct AuthnFactor {
  FactorId id;
  std::string factor_type;  // kTotpFactorType
  std::string provider;     // kTotpProvider
};

enum class AuthnStatus { kSuccess, kMfaRequired };

struct AuthnResult {
  AuthnStatus status = AuthnStatus::kSuccess;
  // kSuccess: the session token; kMfaRequired: the state token.
  std::string token;
  // kSuccess: when the session ends if unused (idle timeout, capped by the absolute lifetime);
  // kMfaRequired: when the state token expires.
  absl::Time expires_at;
  AuthnUser user;
  SessionId session_id;              // kSuccess only
  std::vector<AuthnFactor> factors;  // kMfaRequired only: the user's active TOTP factors
};

// An answer and how long the HTTP layer holds it back (ProgressiveDelay).
struct AuthnAttempt {
  absl::StatusOr<AuthnResult> result;
  absl::Duration delay = absl::ZeroDuration();
};

// What a request that presents a session says about its user (ValidateSession).
enum class SessionUse {
  // The user did something: the session's idle timeout starts again.
  kActivity,
  // An automatic request the user did not make (the console's polls, sent with
  // X-Custos-Background: 1): the session is checked as usual, but its idle clock runs on, so
  // an unattended page does not keep it alive.
  kBackground,
};

// A valid session, as ValidateSession finds it.
struct SessionInfo {
  store::SessionRecord session;
  AuthnUser user;
  // When the session ends if unused from now on.
  absl::Time expires_at;
};

// A verified recovery token: a state token for ResetPassword.
struct RecoveryResult {
  std::string state_token;
  absl::Time expires_at;
  AuthnUser user;
};

class SignIn {
 public:
  // All references must outlive this object.
  SignIn(store::Store& store, const Config& config, const Clock& clock, crypto::Random& random,
         const crypto::PasswordHasher& hasher, const crypto::Sealer& sealer);

  // Primary authentication. `context` describes the request; its actor is ignored (the actor
  // of the events is the user, or the username as typed when no such user exists).
  AuthnAttempt Authenticate(const TenantId& tenant, std::string_view username,
                            std::string_view password, const audit::RequestContext& context);

  // Second step after MFA_REQUIRED. kNotFound (E0000007) when the factor is not an active TOTP
  // factor of the transaction's user.
  AuthnAttempt VerifyFactor(const TenantId& tenant, std::string_view state_token,
                            const FactorId& factor, std::string_view passcode,
                            const audit::RequestContext& context);

  // The session behind `token` when it exists, is within both its idle timeout and its
  // absolute lifetime, and its user is ACTIVE; for SessionUse::kActivity records the activity
  // (at most once a minute), for kBackground leaves last_active as it is.
  // kPermissionDenied E0000005 "Invalid session" otherwise.
  absl::StatusOr<SessionInfo> ValidateSession(const TenantId& tenant, std::string_view token,
                                              SessionUse use = SessionUse::kActivity);

  // Validates as above, then ends the session (event user.session.end).
  absl::Status EndSession(const TenantId& tenant, std::string_view token,
                          const audit::RequestContext& context);

  // Exchanges the one-time token of a password recovery (users.recovery_token_hash, set by
  // the management API's reset_password or activate) for a state token. The user must be in
  // RECOVERY or PROVISIONED and
  // the token unexpired; otherwise kUnauthenticated E0000011.
  absl::StatusOr<RecoveryResult> VerifyRecoveryToken(const TenantId& tenant,
                                                     std::string_view recovery_token,
                                                     const audit::RequestContext& context);

  // Sets a new password with a state token from VerifyRecoveryToken: checks the password
  // policy (kInvalidArgument E0000080; the state token stays usable), stores the Argon2id
  // hash, makes the user ACTIVE, clears the recovery token, ends all their sessions. Then signs
  // in: SUCCESS with a new session, or MFA_REQUIRED when the user has an active TOTP factor
  // (a recovery token alone never skips the second factor).
  AuthnAttempt ResetPassword(const TenantId& tenant, std::string_view state_token,
                             std::string_view new_password, const audit::RequestContext& context);

  // Deletes, tenant by tenant, sessions past their lifetime or idle timeout and sign-in
  // transactions past their expiry; returns how many rows went. These rows are already
  // refused by ValidateSession and VerifyFactor: the sweep only reclaims space, so it writes no
  // System Log event. `custos serve` runs it every few minutes.
  absl::StatusOr<int> SweepExpired();

  const PasswordPolicy& policy() const { return policy_; }

 private:
  store::EventRecord Event(const TenantId& tenant, const audit::RequestContext& context,
                           const audit::EventSpec& spec) const;
  // Counts a failed password or passcode of `user` (fresh from `tx`): appends `failure_event`,
  // locks the user at the threshold (and appends user.account.lock), updates the row.
  absl::Status CountFailure(store::Transaction& tx, store::UserRecord& user,
                            const audit::RequestContext& context, audit::EventSpec failure_event,
                            absl::Time now);
  // Creates a session for `user` and appends user.session.start SUCCESS. Resets the failure
  // count and sets last_login; updates the row.
  absl::StatusOr<AuthnResult> StartSession(store::Transaction& tx, store::UserRecord& user,
                                           std::string_view amr, audit::RequestContext context,
                                           absl::Time now);
  // Creates an MFA transaction and appends user.session.start CHALLENGE.
  absl::StatusOr<AuthnResult> StartMfa(store::Transaction& tx, const store::UserRecord& user,
                                       std::vector<AuthnFactor> factors,
                                       const audit::RequestContext& context, absl::Time now);

  store::Store& store_;
  const Config& config_;
  const Clock& clock_;
  crypto::Random& random_;
  const crypto::PasswordHasher& hasher_;
  const crypto::Sealer& sealer_;
  const PasswordPolicy policy_;
  const int lockout_threshold_;
  ProgressiveDelay delay_;
};

}  // namespace custos::authn
