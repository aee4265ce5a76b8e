#include "authn/sign_in.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "authn/totp_factor.h"
#include "authn/utf8.h"
#include "common/errors.h"
#include "common/json.h"
#include "common/status_macros.h"
#include "crypto/hash.h"

namespace custos::authn {
namespace {

// Logins are short; a longer "username" cannot name a user, and is not worth keeping whole in
// an event or the delay map.
constexpr size_t kMaxUsernameBytes = 256;
constexpr int kMaxLockoutThreshold = 100;
// ValidateSession writes last_active at most this often per session.
constexpr absl::Duration kTouchInterval = absl::Minutes(1);
constexpr size_t kTokenBytes = 32;

// How a factor verification failed, for the progressive delay.
enum class Failure { kNone, kCredentials, kPasscode, kToken, kFactor };

constexpr std::string_view kCredentialPassword = "PASSWORD";
constexpr std::string_view kCredentialOtp = "OTP";
constexpr std::string_view kCredentialRecoveryToken = "RECOVERY_TOKEN";

// A state token is found by the SHA-256 of a purpose label and the token, so a token issued
// for one step (factor verification, password reset) is unknown to the other.
constexpr std::string_view kMfaPurpose = "custos-authn-mfa:";
constexpr std::string_view kRecoveryPurpose = "custos-authn-recovery:";

std::string StateTokenHash(std::string_view purpose, std::string_view token) {
  return crypto::Sha256Hex(std::string(purpose) + std::string(token));
}

absl::Status AuthFailed() {
  return ApiError(absl::StatusCode::kUnauthenticated, kErrAuthFailed, "Authentication failed");
}

absl::Status InvalidToken() {
  return ApiError(absl::StatusCode::kUnauthenticated, kErrInvalidToken, "Invalid token provided");
}

absl::Status InvalidSession() {
  return ApiError(absl::StatusCode::kPermissionDenied, kErrInvalidSession, "Invalid session");
}

std::string ProfileString(const Json& profile, const char* key) {
  auto it = profile.find(key);
  return it != profile.end() && it->is_string() ? it->get<std::string>() : std::string();
}

AuthnUser ToAuthnUser(const store::UserRecord& u) {
  AuthnUser user;
  user.id = u.id;
  user.login = u.login;
  user.password_changed = u.password_changed;
  absl::StatusOr<Json> profile = ParseJson(u.profile_json);
  if (profile.ok() && profile->is_object()) {
    user.first_name = ProfileString(*profile, "firstName");
    user.last_name = ProfileString(*profile, "lastName");
    user.locale = ProfileString(*profile, "locale");
    user.time_zone = ProfileString(*profile, "timeZone");
  }
  return user;
}

audit::Principal UserPrincipal(const store::UserRecord& u) {
  AuthnUser user = ToAuthnUser(u);
  std::string display = user.first_name;
  if (!user.last_name.empty()) display += (display.empty() ? "" : " ") + user.last_name;
  if (display.empty()) display = u.login;
  return {u.id.value(), "User", u.login, display};
}

audit::Principal UnknownUser(std::string_view typed) {
  return {"unknown", "User", typed.empty() ? "unknown" : std::string(typed), ""};
}

audit::RequestContext As(audit::RequestContext context, audit::Principal actor) {
  context.actor = std::move(actor);
  return context;
}

audit::EventSpec Spec(std::string_view type, std::string message, std::string_view outcome,
                      std::string_view reason, std::string_view credential_type) {
  audit::EventSpec spec;
  spec.event_type = std::string(type);
  spec.display_message = std::move(message);
  spec.outcome = std::string(outcome);
  spec.reason = std::string(reason);
  spec.credential_type = std::string(credential_type);
  spec.severity = outcome == audit::kFailure ? "WARN" : "INFO";
  return spec;
}

bool IsActiveTotp(const store::FactorRecord& f) {
  return f.status == store::kFactorActive && f.factor_type == kTotpFactorType;
}

absl::StatusOr<std::vector<AuthnFactor>> ActiveTotpFactors(store::Transaction& tx,
                                                           const store::UserRecord& user) {
  ASSIGN_OR_RETURN(std::vector<store::FactorRecord> all,
                   tx.Factors().ListForUser(user.tenant_id, user.id));
  std::vector<AuthnFactor> out;
  for (const store::FactorRecord& f : all) {
    if (IsActiveTotp(f)) out.push_back({f.id, f.factor_type, f.provider});
  }
  return out;
}

// Why a user who is not ACTIVE was refused.
std::string_view NotActiveReason(const store::UserRecord& u) {
  return u.status == store::kUserLockedOut ? kReasonLockedOut : kReasonUserNotActive;
}

// An activation (PROVISIONED) or a password reset (RECOVERY) is what a recovery token completes.
bool AwaitsRecovery(const store::UserRecord& u) {
  return u.status == store::kUserRecovery || u.status == store::kUserProvisioned;
}

}  // namespace

SignIn::SignIn(store::Store& store, const Config& config, const Clock& clock,
               crypto::Random& random, const crypto::PasswordHasher& hasher,
               const crypto::Sealer& sealer)
    : store_(store),
      config_(config),
      clock_(clock),
      random_(random),
      hasher_(hasher),
      sealer_(sealer),
      policy_(config.password_min_length, config.password_max_length),
      lockout_threshold_(std::clamp(config.lockout_threshold, 1, kMaxLockoutThreshold)),
      delay_(clock) {}

store::EventRecord SignIn::Event(const TenantId& tenant, const audit::RequestContext& context,
                                 const audit::EventSpec& spec) const {
  return audit::MakeEvent(tenant, context, spec, clock_, random_);
}

absl::Status SignIn::CountFailure(store::Transaction& tx, store::UserRecord& user,
                                  const audit::RequestContext& context,
                                  audit::EventSpec failure_event, absl::Time now) {
  user.failed_sign_ins += 1;
  const bool lock = user.failed_sign_ins >= lockout_threshold_;
  if (lock) {
    user.status = std::string(store::kUserLockedOut);
    user.status_changed = now;
    user.last_updated = now;
  }
  RETURN_IF_ERROR(tx.Users().Update(user));
  failure_event.targets.push_back(UserPrincipal(user));
  failure_event.debug_data["failedSignIns"] = std::to_string(user.failed_sign_ins);
  RETURN_IF_ERROR(tx.Events().Append(Event(user.tenant_id, context, failure_event)).status());
  if (lock) {
    audit::EventSpec spec =
        Spec(kEventAccountLock, "Max sign in attempts exceeded", audit::kSuccess, "", "");
    spec.severity = "WARN";
    spec.targets.push_back(UserPrincipal(user));
    spec.debug_data["failedSignIns"] = std::to_string(user.failed_sign_ins);
    spec.debug_data["lockoutThreshold"] = std::to_string(lockout_threshold_);
    RETURN_IF_ERROR(tx.Events().Append(Event(user.tenant_id, context, spec)).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<AuthnResult> SignIn::StartSession(store::Transaction& tx, store::UserRecord& user,
                                                 std::string_view amr,
                                                 audit::RequestContext context, absl::Time now) {
  AuthnResult result;
  result.status = AuthnStatus::kSuccess;
  result.token = random_.Token(kTokenBytes);
  result.session_id = SessionId(random_.Id(kSessionIdPrefix));

  store::SessionRecord session;
  session.id = result.session_id;
  session.tenant_id = user.tenant_id;
  session.user_id = user.id;
  session.token_hash = crypto::Sha256Hex(result.token);
  session.created = now;
  session.last_active = now;
  session.expires = now + config_.session_lifetime;
  session.amr = std::string(amr);
  session.ip_address = context.ip_address;
  session.user_agent = context.user_agent;
  RETURN_IF_ERROR(tx.Sessions().Insert(session));

  user.failed_sign_ins = 0;
  user.last_login = now;
  RETURN_IF_ERROR(tx.Users().Update(user));

  context.external_session_id = session.id.value();
  audit::EventSpec spec = Spec(kEventSessionStart, "User login to Custos", audit::kSuccess, "",
                               amr == "pwd" ? kCredentialPassword : kCredentialOtp);
  spec.targets.push_back(UserPrincipal(user));
  spec.debug_data["amr"] = session.amr;
  RETURN_IF_ERROR(tx.Events().Append(Event(user.tenant_id, context, spec)).status());

  result.expires_at = std::min(now + config_.session_idle_timeout, session.expires);
  result.user = ToAuthnUser(user);
  return result;
}

absl::StatusOr<AuthnResult> SignIn::StartMfa(store::Transaction& tx, const store::UserRecord& user,
                                             std::vector<AuthnFactor> factors,
                                             const audit::RequestContext& context, absl::Time now) {
  AuthnResult result;
  result.status = AuthnStatus::kMfaRequired;
  result.token = random_.Token(kTokenBytes);
  result.expires_at = now + config_.state_token_lifetime;
  result.user = ToAuthnUser(user);
  result.factors = std::move(factors);

  store::AuthnTransactionRecord txn;
  txn.id = random_.Id(kAuthnTransactionIdPrefix);
  txn.tenant_id = user.tenant_id;
  txn.user_id = user.id;
  txn.state_token_hash = StateTokenHash(kMfaPurpose, result.token);
  txn.created = now;
  txn.expires = result.expires_at;
  RETURN_IF_ERROR(tx.AuthnTransactions().Insert(txn));

  audit::EventSpec spec = Spec(kEventSessionStart, "User login to Custos: second factor required",
                               kOutcomeChallenge, kReasonMfaRequired, kCredentialPassword);
  spec.targets.push_back(UserPrincipal(user));
  RETURN_IF_ERROR(tx.Events().Append(Event(user.tenant_id, context, spec)).status());
  return result;
}

AuthnAttempt SignIn::Authenticate(const TenantId& tenant, std::string_view username,
                                  std::string_view password, const audit::RequestContext& context) {
  const std::string_view typed = internal::Utf8Prefix(username, kMaxUsernameBytes);
  const std::string key = ProgressiveDelay::Key(tenant, typed);
  AuthnAttempt attempt;
  attempt.delay = delay_.DelayFor(key);

  std::optional<store::UserRecord> found;
  if (!username.empty() && username.size() <= kMaxUsernameBytes) {
    absl::Status st = store_.Read([&](store::Transaction& tx) -> absl::Status {
      absl::StatusOr<store::UserRecord> u = tx.Users().GetByLogin(tenant, username);
      if (u.ok()) {
        found = *std::move(u);
      } else if (!absl::IsNotFound(u.status())) {
        return u.status();
      }
      return absl::OkStatus();
    });
    if (!st.ok()) {
      attempt.result = st;
      return attempt;
    }
  }

  // The Argon2id check runs whatever the user's state, against a dummy hash when there is no
  // real one, so that every credential failure costs the same time.
  const bool has_hash = found.has_value() && !found->password_hash.empty();
  const std::string& encoded = has_hash ? found->password_hash : hasher_.DummyHash();
  const bool password_ok = hasher_.Verify(encoded, password) && has_hash;
  std::string rehash;
  if (password_ok && found->status == store::kUserActive && hasher_.NeedsRehash(encoded)) {
    // A failure only means the old hash stays; it still verifies.
    absl::StatusOr<std::string> h = hasher_.Hash(password);
    if (h.ok()) rehash = *std::move(h);
  }

  const absl::Time now = clock_.Now();
  bool failed = true;
  absl::StatusOr<AuthnResult> result = AuthFailed();
  absl::Status st = store_.Write([&](store::Transaction& tx) -> absl::Status {
    failed = true;
    result = AuthFailed();
    if (!found.has_value()) {
      audit::EventSpec spec = Spec(kEventSessionStart, "User login to Custos", audit::kFailure,
                                   kReasonUnknownUser, kCredentialPassword);
      return tx.Events().Append(Event(tenant, As(context, UnknownUser(typed)), spec)).status();
    }
    // The row as it is now: a concurrent attempt may have counted a failure or locked it.
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, found->id));
    const audit::RequestContext ctx = As(context, UserPrincipal(user));
    if (user.status != store::kUserActive) {
      audit::EventSpec spec = Spec(kEventSessionStart, "User login to Custos", audit::kFailure,
                                   NotActiveReason(user), kCredentialPassword);
      spec.targets.push_back(UserPrincipal(user));
      spec.debug_data["userStatus"] = user.status;
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    // A password changed since it was checked makes the check stale.
    if (!password_ok || user.password_hash != found->password_hash) {
      return CountFailure(tx, user, ctx,
                          Spec(kEventSessionStart, "User login to Custos", audit::kFailure,
                               kReasonInvalidCredentials, kCredentialPassword),
                          now);
    }
    if (!rehash.empty()) user.password_hash = rehash;
    ASSIGN_OR_RETURN(std::vector<AuthnFactor> factors, ActiveTotpFactors(tx, user));
    failed = false;
    if (factors.empty()) {
      result = StartSession(tx, user, "pwd", ctx, now);
      return result.status();
    }
    // The failure count stays until the second factor is passed: resetting it here would let
    // someone who knows the password guess passcodes without ever being locked out.
    if (!rehash.empty()) RETURN_IF_ERROR(tx.Users().Update(user));
    result = StartMfa(tx, user, std::move(factors), ctx, now);
    return result.status();
  });
  if (!st.ok()) {
    attempt.result = st;
    return attempt;
  }
  if (failed) {
    delay_.RecordFailure(key);
  } else if (result.ok() && result->status == AuthnStatus::kSuccess) {
    delay_.Reset(key);
  }
  attempt.result = std::move(result);
  return attempt;
}

AuthnAttempt SignIn::VerifyFactor(const TenantId& tenant, std::string_view state_token,
                                  const FactorId& factor_id, std::string_view passcode,
                                  const audit::RequestContext& context) {
  const std::string hash = StateTokenHash(kMfaPurpose, state_token);
  const absl::Time now = clock_.Now();
  AuthnAttempt attempt;
  std::string key;
  Failure failure = Failure::kNone;
  absl::StatusOr<AuthnResult> result = AuthFailed();
  // One write transaction: it sees the transaction, user and factor as they are, so two
  // concurrent requests cannot both use the same state token or the same code.
  absl::Status st = store_.Write([&](store::Transaction& tx) -> absl::Status {
    key.clear();
    failure = Failure::kToken;
    result = InvalidToken();
    auto mfa_event = [&](std::string_view outcome, std::string_view reason) {
      audit::EventSpec spec =
          Spec(kEventAuthViaMfa, "Authentication of user via MFA", outcome, reason, kCredentialOtp);
      spec.debug_data["factorId"] = factor_id.value();
      return spec;
    };
    absl::StatusOr<store::AuthnTransactionRecord> txn =
        tx.AuthnTransactions().FindByHash(tenant, hash);
    if (!txn.ok() && !absl::IsNotFound(txn.status())) return txn.status();
    if (!txn.ok()) {
      return tx.Events()
          .Append(Event(tenant, As(context, UnknownUser("")),
                        mfa_event(audit::kFailure, kReasonInvalidToken)))
          .status();
    }
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, txn->user_id));
    const audit::RequestContext ctx = As(context, UserPrincipal(user));
    key = ProgressiveDelay::Key(tenant, user.login);
    if (now >= txn->expires) {
      audit::EventSpec spec = mfa_event(audit::kFailure, kReasonInvalidToken);
      spec.targets.push_back(UserPrincipal(user));
      spec.debug_data["stateTokenExpired"] = "true";
      RETURN_IF_ERROR(tx.AuthnTransactions().Delete(tenant, txn->id));
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    if (user.status != store::kUserActive) {
      failure = Failure::kCredentials;
      result = AuthFailed();
      audit::EventSpec spec = mfa_event(audit::kFailure, NotActiveReason(user));
      spec.targets.push_back(UserPrincipal(user));
      spec.debug_data["userStatus"] = user.status;
      RETURN_IF_ERROR(tx.AuthnTransactions().Delete(tenant, txn->id));
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    absl::StatusOr<store::FactorRecord> factor = tx.Factors().Get(tenant, user.id, factor_id);
    if (!factor.ok() && !absl::IsNotFound(factor.status())) return factor.status();
    if (!factor.ok() || !IsActiveTotp(*factor)) {
      failure = Failure::kFactor;
      result = NotFoundError(factor_id.value() + " (UserFactor)");
      audit::EventSpec spec = mfa_event(audit::kFailure, kReasonUnknownFactor);
      spec.targets.push_back(UserPrincipal(user));
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    absl::StatusOr<int64_t> step =
        CheckTotpCode(*factor, passcode, sealer_, now, config_.totp_skew_steps);
    if (!step.ok() && !absl::IsPermissionDenied(step.status())) return step.status();
    if (!step.ok()) {
      failure = Failure::kPasscode;
      result = step.status();
      RETURN_IF_ERROR(
          CountFailure(tx, user, ctx, mfa_event(audit::kFailure, kReasonInvalidCredentials), now));
      // A locked-out user's transaction cannot finish; drop it now.
      if (user.status == store::kUserLockedOut) {
        RETURN_IF_ERROR(tx.AuthnTransactions().Delete(tenant, txn->id));
      }
      return absl::OkStatus();
    }
    factor->last_used_step = *step;
    factor->last_updated = now;
    RETURN_IF_ERROR(tx.Factors().Update(*factor));
    RETURN_IF_ERROR(tx.AuthnTransactions().Delete(tenant, txn->id));
    audit::EventSpec spec = mfa_event(audit::kSuccess, "");
    spec.targets.push_back(UserPrincipal(user));
    RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    failure = Failure::kNone;
    result = StartSession(tx, user, "pwd otp", ctx, now);
    return result.status();
  });
  if (!key.empty()) attempt.delay = delay_.DelayFor(key);
  if (!st.ok()) {
    attempt.result = st;
    return attempt;
  }
  if (!key.empty()) {
    if (failure == Failure::kPasscode || failure == Failure::kCredentials) {
      delay_.RecordFailure(key);
    } else if (failure == Failure::kNone) {
      delay_.Reset(key);
    }
  }
  attempt.result = std::move(result);
  return attempt;
}

absl::StatusOr<SessionInfo> SignIn::ValidateSession(const TenantId& tenant, std::string_view token,
                                                    SessionUse use) {
  const std::string hash = crypto::Sha256Hex(token);
  const absl::Time now = clock_.Now();
  std::optional<SessionInfo> info;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
    absl::StatusOr<store::SessionRecord> session = tx.Sessions().FindByHash(tenant, hash);
    if (absl::IsNotFound(session.status())) return absl::OkStatus();
    RETURN_IF_ERROR(session.status());
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, session->user_id));
    if (user.status != store::kUserActive) return absl::OkStatus();
    if (now >= session->expires || now - session->last_active >= config_.session_idle_timeout) {
      return absl::OkStatus();
    }
    info = SessionInfo{*std::move(session), ToAuthnUser(user), absl::Time()};
    return absl::OkStatus();
  }));
  if (!info.has_value()) return InvalidSession();
  if (use == SessionUse::kActivity && now - info->session.last_active >= kTouchInterval) {
    // Best effort: a session that cannot be touched is still valid now; it only ends sooner.
    absl::Status touched = store_.Write(
        [&](store::Transaction& tx) { return tx.Sessions().Touch(tenant, info->session.id, now); });
    if (touched.ok()) info->session.last_active = now;
  }
  info->expires_at =
      std::min(info->session.last_active + config_.session_idle_timeout, info->session.expires);
  return *std::move(info);
}

absl::Status SignIn::EndSession(const TenantId& tenant, std::string_view token,
                                const audit::RequestContext& context) {
  ASSIGN_OR_RETURN(SessionInfo info, ValidateSession(tenant, token));
  return store_.Write([&](store::Transaction& tx) -> absl::Status {
    absl::Status deleted = tx.Sessions().Delete(tenant, info.session.id);
    if (absl::IsNotFound(deleted)) return InvalidSession();
    RETURN_IF_ERROR(deleted);
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, info.session.user_id));
    audit::RequestContext ctx = As(context, UserPrincipal(user));
    ctx.external_session_id = info.session.id.value();
    audit::EventSpec spec =
        Spec(kEventSessionEnd, "User logout from Custos", audit::kSuccess, "", "");
    spec.targets.push_back(UserPrincipal(user));
    return tx.Events().Append(Event(tenant, ctx, spec)).status();
  });
}

absl::StatusOr<int> SignIn::SweepExpired() {
  ASSIGN_OR_RETURN(
      std::vector<store::TenantRecord> tenants,
      store::ReadResult(store_, [](store::Transaction& tx) { return tx.Tenants().List(); }));
  const absl::Time now = clock_.Now();
  int swept = 0;
  // One short transaction per tenant keeps the write lock free for sign-ins in between.
  for (const store::TenantRecord& tenant : tenants) {
    RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
      ASSIGN_OR_RETURN(int sessions, tx.Sessions().DeleteExpired(
                                         tenant.id, now, now - config_.session_idle_timeout));
      ASSIGN_OR_RETURN(int txns, tx.AuthnTransactions().DeleteExpired(tenant.id, now));
      swept += sessions + txns;
      return absl::OkStatus();
    }));
  }
  return swept;
}

absl::StatusOr<RecoveryResult> SignIn::VerifyRecoveryToken(const TenantId& tenant,
                                                           std::string_view recovery_token,
                                                           const audit::RequestContext& context) {
  const std::string hash = crypto::Sha256Hex(recovery_token);
  std::optional<store::UserRecord> found;
  if (!recovery_token.empty()) {
    RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
      absl::StatusOr<store::UserRecord> user = tx.Users().FindByRecoveryTokenHash(tenant, hash);
      if (user.ok()) {
        found = std::move(*user);
      } else if (!absl::IsNotFound(user.status())) {
        return user.status();
      }
      return absl::OkStatus();
    }));
  }
  const absl::Time now = clock_.Now();
  absl::StatusOr<RecoveryResult> result = InvalidToken();
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    result = InvalidToken();
    audit::EventSpec spec = Spec(kEventVerifyRecovery, "Verify user recovery token",
                                 audit::kFailure, kReasonInvalidToken, kCredentialRecoveryToken);
    if (!found.has_value()) {
      return tx.Events().Append(Event(tenant, As(context, UnknownUser("")), spec)).status();
    }
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, found->id));
    const audit::RequestContext ctx = As(context, UserPrincipal(user));
    spec.targets.push_back(UserPrincipal(user));
    const bool valid = AwaitsRecovery(user) && user.recovery_token_hash == hash &&
                       user.recovery_expires.has_value() && now < *user.recovery_expires;
    if (!valid) {
      spec.debug_data["userStatus"] = user.status;
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    RecoveryResult ok;
    ok.state_token = random_.Token(kTokenBytes);
    ok.expires_at = now + config_.state_token_lifetime;
    ok.user = ToAuthnUser(user);
    store::AuthnTransactionRecord txn;
    txn.id = random_.Id(kAuthnTransactionIdPrefix);
    txn.tenant_id = tenant;
    txn.user_id = user.id;
    txn.state_token_hash = StateTokenHash(kRecoveryPurpose, ok.state_token);
    txn.created = now;
    txn.expires = ok.expires_at;
    RETURN_IF_ERROR(tx.AuthnTransactions().Insert(txn));
    spec.outcome = std::string(audit::kSuccess);
    spec.reason.clear();
    spec.severity = "INFO";
    RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    result = std::move(ok);
    return absl::OkStatus();
  }));
  return result;
}

AuthnAttempt SignIn::ResetPassword(const TenantId& tenant, std::string_view state_token,
                                   std::string_view new_password,
                                   const audit::RequestContext& context) {
  const std::string hash = StateTokenHash(kRecoveryPurpose, state_token);
  AuthnAttempt attempt;
  // A transaction is usable while it is unexpired and its user is still in the recovery it was
  // issued for.
  auto usable = [&](const absl::StatusOr<store::AuthnTransactionRecord>& txn,
                    const store::UserRecord& user, absl::Time now) {
    return txn.ok() && now < txn->expires && AwaitsRecovery(user) &&
           !user.recovery_token_hash.empty();
  };
  auto fail_event = [&](std::string_view reason) {
    return Spec(kEventResetPassword, "Fulfill reset password request", audit::kFailure, reason,
                kCredentialRecoveryToken);
  };

  // First pass, read-only: find the user and check the new password before paying for Argon2id.
  std::optional<store::UserRecord> found;
  bool token_ok = false;
  absl::Status st = store_.Read([&](store::Transaction& tx) -> absl::Status {
    absl::StatusOr<store::AuthnTransactionRecord> txn =
        tx.AuthnTransactions().FindByHash(tenant, hash);
    if (!txn.ok() && !absl::IsNotFound(txn.status())) return txn.status();
    if (!txn.ok()) return absl::OkStatus();
    ASSIGN_OR_RETURN(found, tx.Users().Get(tenant, txn->user_id));
    token_ok = usable(txn, *found, clock_.Now());
    return absl::OkStatus();
  });
  if (!st.ok()) {
    attempt.result = st;
    return attempt;
  }
  absl::Status refused = token_ok ? policy_.Check(new_password, found->login) : InvalidToken();
  std::string encoded;
  if (refused.ok()) {
    absl::StatusOr<std::string> h = hasher_.Hash(new_password);
    if (!h.ok()) {
      attempt.result = h.status();
      return attempt;
    }
    encoded = *std::move(h);
  }

  const absl::Time now = clock_.Now();
  bool succeeded = false;
  absl::StatusOr<AuthnResult> result = InvalidToken();
  st = store_.Write([&](store::Transaction& tx) -> absl::Status {
    succeeded = false;
    result = InvalidToken();
    if (!found.has_value()) {
      return tx.Events()
          .Append(Event(tenant, As(context, UnknownUser("")), fail_event(kReasonInvalidToken)))
          .status();
    }
    ASSIGN_OR_RETURN(store::UserRecord user, tx.Users().Get(tenant, found->id));
    const audit::RequestContext ctx = As(context, UserPrincipal(user));
    absl::StatusOr<store::AuthnTransactionRecord> txn =
        tx.AuthnTransactions().FindByHash(tenant, hash);
    if (!txn.ok() && !absl::IsNotFound(txn.status())) return txn.status();
    const absl::Status outcome = usable(txn, user, now) ? refused : InvalidToken();
    if (!outcome.ok()) {
      result = outcome;
      const bool policy = absl::IsInvalidArgument(outcome);
      audit::EventSpec spec = fail_event(policy ? kReasonPasswordPolicy : kReasonInvalidToken);
      spec.targets.push_back(UserPrincipal(user));
      if (policy) {
        // The causes name the broken rules, never the password.
        spec.debug_data["passwordPolicy"] =
            fmt::format("{}", fmt::join(ErrorCausesOf(outcome), "; "));
      }
      return tx.Events().Append(Event(tenant, ctx, spec)).status();
    }
    user.password_hash = encoded;
    user.status = std::string(store::kUserActive);
    user.status_changed = now;
    user.password_changed = now;
    user.last_updated = now;
    user.failed_sign_ins = 0;
    user.recovery_token_hash.clear();
    user.recovery_expires.reset();
    RETURN_IF_ERROR(tx.Users().Update(user));
    RETURN_IF_ERROR(tx.AuthnTransactions().Delete(tenant, txn->id));
    ASSIGN_OR_RETURN(int revoked, tx.Sessions().DeleteAllForUser(tenant, user.id));
    // The new password ends what the old one opened, refresh tokens of apps included.
    RETURN_IF_ERROR(
        tx.Oidc()
            .RevokeTokensOfUser(tenant, user.id, clock_.Now(), clock_.Now() + absl::Hours(25))
            .status());
    audit::EventSpec spec = Spec(kEventResetPassword, "Fulfill reset password request",
                                 audit::kSuccess, "", kCredentialRecoveryToken);
    spec.targets.push_back(UserPrincipal(user));
    spec.debug_data["sessionsEnded"] = std::to_string(revoked);
    RETURN_IF_ERROR(tx.Events().Append(Event(tenant, ctx, spec)).status());
    succeeded = true;
    ASSIGN_OR_RETURN(std::vector<AuthnFactor> factors, ActiveTotpFactors(tx, user));
    if (factors.empty()) {
      result = StartSession(tx, user, "pwd", ctx, now);
    } else {
      result = StartMfa(tx, user, std::move(factors), ctx, now);
    }
    return result.status();
  });
  if (!st.ok()) {
    attempt.result = st;
    return attempt;
  }
  if (succeeded) delay_.Reset(ProgressiveDelay::Key(tenant, found->login));
  attempt.result = std::move(result);
  return attempt;
}

}  // namespace custos::authn
