#include "support/access_gate.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "crypto/hash.h"
#include "support/posture.h"

namespace custos::support {
namespace {

bool ScopeHas(std::string_view scope, std::string_view need) {
  size_t start = 0;
  while (start <= scope.size()) {
    size_t end = scope.find(' ', start);
    if (end == std::string_view::npos) end = scope.size();
    if (scope.substr(start, end - start) == need) return true;
    start = end + 1;
  }
  return false;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The operator's name as their profile has it, or the login.
std::string DisplayName(const store::UserRecord& user) {
  Json profile = Json::parse(user.profile_json, nullptr, false);
  std::string name;
  if (profile.is_object()) {
    for (const char* key : {"firstName", "lastName"}) {
      auto it = profile.find(key);
      if (it != profile.end() && it->is_string() && !it->get<std::string>().empty()) {
        if (!name.empty()) name += ' ';
        name += it->get<std::string>();
      }
    }
  }
  return name.empty() ? user.login : name;
}

SupportFacts GrantFacts(const OperatorContext& op, const store::GrantRecord& grant) {
  SupportFacts facts = FactsOf(op);
  facts.case_id = grant.case_id;
  facts.justification = grant.justification;
  facts.request_id = grant.request_id;
  facts.grant_id = grant.id;
  facts.scope = grant.scope;
  return facts;
}

audit::Principal TenantTarget(const store::TenantRecord& tenant) {
  return {tenant.id.value(), "Tenant", tenant.name, tenant.name};
}

// Marks the grant used and records user.session.impersonation.initiate the first time.
absl::Status InitiateOnFirstUse(store::Transaction& tx, const Clock& clock, crypto::Random& random,
                                const OperatorContext& op, const TenantAccess& access) {
  ASSIGN_OR_RETURN(store::GrantRecord grant,
                   tx.Support().GetGrant(access.tenant.id, access.grant.id));
  if (grant.first_used.has_value()) return absl::OkStatus();
  grant.first_used = clock.Now();
  RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
  audit::EventSpec spec{
      .event_type = "user.session.impersonation.initiate",
      .display_message = "Support operator starts working in the tenant under a grant",
      .targets = {TenantTarget(access.tenant), {grant.id, "SupportGrant", grant.case_id, ""}}};
  return AppendTransparencyEvents(tx, clock, random, &access.tenant, op.request,
                                  GrantFacts(op, grant), std::move(spec));
}

// Inside a write transaction: is everything the gate checked still so? The reason when not
// (a kill switch, revocation or suspension may have committed since the gate's read).
absl::StatusOr<std::string> StillValid(store::Transaction& tx, const OperatorContext& op,
                                       const TenantAccess& access, absl::Time now) {
  ASSIGN_OR_RETURN(store::OperatorTokenRecord token,
                   tx.Support().FindOperatorTokenByHash(op.token.token_hash));
  if (token.revoked.has_value()) return std::string("token_revoked");
  ASSIGN_OR_RETURN(store::VendorRecord vendor, tx.Support().GetVendor(op.vendor.id));
  if (vendor.status != store::kStatusActive) return std::string("vendor_suspended");
  ASSIGN_OR_RETURN(store::OperatorRecord oper, tx.Support().GetOperator(op.op.user_id));
  if (oper.status != store::kStatusActive) return std::string("operator_suspended");
  ASSIGN_OR_RETURN(store::DeviceRecord device, tx.Support().GetDevice(op.device.id));
  if (device.status == store::kDeviceLocked) return std::string("device_locked");
  if (device.status != store::kDeviceActive) return std::string("device_revoked");
  ASSIGN_OR_RETURN(store::GrantRecord grant,
                   tx.Support().GetGrant(access.tenant.id, access.grant.id));
  if (grant.status != store::kGrantActive || grant.expires <= now) {
    return std::string("grant_expired");
  }
  return std::string();
}

// The outcome reason of a failure, for a log the tenant reads: the client's own mistake in its
// words, anything else without internal detail.
std::string ReasonFor(const absl::Status& error, std::string_view not_found) {
  if (absl::IsNotFound(error)) return std::string(not_found);
  if (absl::IsInvalidArgument(error)) return std::string(error.message());
  return "internal_error";
}

// The rollback of a transaction that found the request no longer valid.
constexpr char kStale[] = "stale support request";

}  // namespace

AccessGate::AccessGate(store::Store& store, const Config& config, const Clock& clock,
                       crypto::Random& random, SupportPlane& plane, DpopVerifier& dpop,
                       AnomalyDetector& anomalies, RateLimit* refusal_limiter)
    : store_(store),
      config_(config),
      clock_(clock),
      random_(random),
      plane_(plane),
      dpop_(dpop),
      anomalies_(anomalies),
      refusal_limiter_(refusal_limiter) {}

absl::Status AccessGate::Refuse(const audit::RequestContext& context, const OperatorContext* op,
                                const store::TenantRecord* tenant, absl::StatusCode code,
                                std::string_view reason, std::string message,
                                std::string_view action) {
  // Unauthenticated refusals cost a log entry each; bound them per address like refused API
  // tokens. An authenticated operator's refusals are always recorded.
  if (op == nullptr && refusal_limiter_ != nullptr &&
      !refusal_limiter_->Acquire(RateLimitKeyOf(context.ip_address)).allowed) {
    return ApiError(absl::StatusCode::kResourceExhausted, kErrRateLimit,
                    "API call exceeded rate limit due to too many requests.",
                    {"too many refused credentials from this address; retry later"});
  }
  audit::RequestContext ctx = op != nullptr ? op->request : context;
  if (op == nullptr) ctx.actor = {"unknown", "User", "unknown", "Unknown operator"};
  audit::EventSpec spec{.event_type = "support.gate.deny",
                        .display_message = "Support access gate refuses a request",
                        .severity = "WARN",
                        .outcome = std::string(audit::kDeny),
                        .reason = std::string(reason),
                        .debug_data = {{"detail", message}}};
  if (tenant != nullptr) spec.targets.push_back(TenantTarget(*tenant));
  if (!action.empty()) spec.debug_data["action"] = std::string(action);
  const SupportFacts facts = op != nullptr ? FactsOf(*op) : SupportFacts{};
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) {
    return AppendTransparencyEvents(tx, clock_, random_, tenant, ctx, facts, spec);
  }));
  std::string_view error_code = code == absl::StatusCode::kUnauthenticated ? kErrInvalidToken
                                : code == absl::StatusCode::kNotFound      ? kErrNotFound
                                                                           : kErrForbidden;
  return WithReason(ApiError(code, error_code, std::move(message)), reason);
}

absl::StatusOr<OperatorContext> AccessGate::Authenticate(const GateRequest& request) {
  const audit::RequestContext& ctx = request.context;
  // The tenant whose data the request reaches for sees refused attempts in its own log.
  std::optional<store::TenantRecord> tenant;
  if (!request.tenant_name.empty()) {
    absl::StatusOr<store::TenantRecord> found = store::ReadResult(
        store_,
        [&](store::Transaction& tx) { return tx.Tenants().GetByName(request.tenant_name); });
    if (found.ok() && found->id.value() != store::kProviderLogId) tenant = *std::move(found);
  }
  auto refuse = [&](std::string_view reason, std::string message) {
    return Refuse(ctx, nullptr, tenant.has_value() ? &*tenant : nullptr,
                  absl::StatusCode::kUnauthenticated, reason, std::move(message));
  };
  std::string_view authorization = Trim(request.authorization);
  if (authorization.empty()) {
    return refuse("token_missing", "An operator access token is required: Authorization: DPoP");
  }
  const size_t space = authorization.find(' ');
  const std::string scheme = absl::AsciiStrToLower(std::string(authorization.substr(0, space)));
  const std::string_view token =
      space == std::string_view::npos ? std::string_view() : Trim(authorization.substr(space));
  if (scheme != "dpop") {
    return refuse("dpop_scheme_required",
                  "Operator tokens are bound to a device: use Authorization: DPoP with a proof");
  }
  if (token.empty() || token.size() > 512) return refuse("token_invalid", "Invalid token provided");
  if (Trim(request.dpop).empty()) {
    return refuse("dpop_missing", "A DPoP proof from the enrolled device is required");
  }
  // The jti is recorded only once the token is known to be valid (below), so that proofs made
  // with strangers' keys cannot fill the replay cache.
  absl::StatusOr<DpopResult> proof =
      dpop_.Verify(request.dpop, DpopCheck{.method = request.method,
                                           .url = request.url,
                                           .access_token = std::string(token),
                                           .record = false});
  if (!proof.ok()) {
    std::optional<DpopError> error = DpopErrorOf(proof.status());
    if (!error.has_value()) return proof.status();
    return refuse(DpopErrorCode(*error), std::string(proof.status().message()));
  }

  ASSIGN_OR_RETURN(DevicePolicy policy, plane_.GetDevicePolicy());
  const absl::Time now = clock_.Now();
  OperatorContext op;
  std::string reason;
  std::string message;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
    auto fail = [&](std::string_view r, std::string m) {
      reason = std::string(r);
      message = std::move(m);
      return absl::OkStatus();
    };
    absl::StatusOr<store::OperatorTokenRecord> record =
        tx.Support().FindOperatorTokenByHash(crypto::Sha256Hex(token));
    if (absl::IsNotFound(record.status())) return fail("token_invalid", "Invalid token provided");
    RETURN_IF_ERROR(record.status());
    op.token = *std::move(record);
    if (op.token.revoked.has_value()) return fail("token_revoked", "The token was revoked");
    if (op.token.expires <= now) return fail("token_expired", "The token has expired");
    if (op.token.jkt != proof->jkt) {
      return fail("dpop_key_mismatch", "The DPoP proof is not signed by the token's device key");
    }
    absl::StatusOr<store::SessionRecord> session = tx.Sessions().FindByHash(
        TenantId(std::string(store::kProviderLogId)), op.token.session_token_hash);
    if (absl::IsNotFound(session.status()) || (session.ok() && session->expires <= now)) {
      return fail("session_ended", "The operator's session has ended; sign in again");
    }
    RETURN_IF_ERROR(session.status());
    ASSIGN_OR_RETURN(op.op, tx.Support().GetOperator(op.token.operator_id));
    ASSIGN_OR_RETURN(op.vendor, tx.Support().GetVendor(op.op.vendor_id));
    ASSIGN_OR_RETURN(op.device, tx.Support().GetDevice(op.token.device_id));
    ASSIGN_OR_RETURN(store::UserRecord user,
                     tx.Users().Get(TenantId(std::string(store::kProviderLogId)), op.op.user_id));
    op.login = user.login;
    op.display_name = DisplayName(user);
    if (op.vendor.status != store::kStatusActive) {
      return fail("vendor_suspended", "The operator's vendor is suspended");
    }
    if (op.op.status != store::kStatusActive) {
      return fail("operator_suspended", "The operator is suspended");
    }
    if (user.status != store::kUserActive) {
      return fail("operator_inactive", "The operator's account is not active");
    }
    if (op.device.status == store::kDeviceLocked) {
      return fail("device_locked", "The device is locked");
    }
    if (op.device.status != store::kDeviceActive) {
      return fail("device_revoked", "The device is revoked");
    }
    if (op.device.jkt != op.token.jkt) {
      return fail("dpop_key_mismatch", "The device key changed since the token was issued");
    }
    Compliance compliance = plane_.ComplianceOf(op.device, policy);
    if (!compliance.compliant) {
      return fail("device_noncompliant",
                  fmt::format("The device does not comply with the device policy: {}",
                              absl::StrJoin(compliance.failures, ", ")));
    }
    return absl::OkStatus();
  }));
  if (!reason.empty()) return refuse(reason, message);
  if (absl::Status recorded = dpop_.Record(*proof); !recorded.ok()) {
    std::optional<DpopError> error = DpopErrorOf(recorded);
    if (!error.has_value()) return recorded;
    return refuse(DpopErrorCode(*error), std::string(recorded.message()));
  }
  op.request = ctx;
  op.request.actor = {op.op.user_id.value(), "User", op.login, op.display_name};
  op.request.external_session_id = op.token.session_id.value();
  RETURN_IF_ERROR(CheckSightings(op));
  return op;
}

absl::Status AccessGate::CheckSightings(const OperatorContext& op) {
  if (!config_.anomaly_new_device_or_network) return absl::OkStatus();
  const std::pair<std::string_view, std::string> sightings[] = {
      {kRuleNewDevice, op.device.id}, {kRuleNewNetwork, NetworkOf(op.request.ip_address)}};
  for (const auto& [rule, value] : sightings) {
    const std::string kind = rule == kRuleNewDevice ? "device" : "network";
    const std::string key = fmt::format("{}|{}|{}", op.op.user_id.value(), kind, value);
    {
      absl::MutexLock lock(&mu_);
      if (known_sightings_.contains(key)) continue;
    }
    int known_before = -1;
    RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
      ASSIGN_OR_RETURN(known_before,
                       tx.Support().AddSighting(store::SightingRecord{.operator_id = op.op.user_id,
                                                                      .kind = kind,
                                                                      .value = value,
                                                                      .first_seen = clock_.Now()}));
      return absl::OkStatus();
    }));
    {
      absl::MutexLock lock(&mu_);
      known_sightings_.insert(key);
    }
    // The first device or network of an operator is how they start, not an anomaly.
    if (known_before > 0) {
      RETURN_IF_ERROR(RaiseAlert(
          op, {std::string(rule),
               fmt::format("first use of {} {} ({} known before)", kind, value, known_before)}));
    }
  }
  return absl::OkStatus();
}

absl::Status AccessGate::RaiseAlert(const OperatorContext& op, const Alert& alert) {
  audit::EventSpec spec{.event_type = "support.anomaly.alert",
                        .display_message = "Support anomaly rule fired",
                        .severity = "WARN",
                        .reason = alert.rule,
                        .targets = {{op.op.user_id.value(), "User", op.login, op.display_name}},
                        .debug_data = {{"rule", alert.rule}, {"detail", alert.detail}}};
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) {
    return AppendTransparencyEvents(tx, clock_, random_, nullptr, op.request, FactsOf(op), spec);
  }));
  if (!config_.anomaly_suspend_operator) return absl::OkStatus();
  audit::RequestContext system = op.request;
  system.actor = audit::SystemPrincipal();
  absl::StatusOr<store::OperatorRecord> suspended =
      plane_.SuspendOperator(system, op.op.user_id, fmt::format("anomaly: {}", alert.rule));
  // Already suspended by a concurrent alert is fine; anything else is an error.
  if (!suspended.ok() && !absl::IsFailedPrecondition(suspended.status()) &&
      !absl::IsPermissionDenied(suspended.status())) {
    return suspended.status();
  }
  return WithReason(ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
                             fmt::format("Anomaly rule {} suspended the operator", alert.rule)),
                    "operator_suspended");
}

absl::Status AccessGate::RecordAllow(const OperatorContext& op, std::string_view what) {
  audit::EventSpec spec{.event_type = "support.gate.allow",
                        .display_message = "Support access gate allows a request",
                        .debug_data = {{"request", std::string(what)}}};
  return store_.Write([&](store::Transaction& tx) {
    return AppendTransparencyEvents(tx, clock_, random_, nullptr, op.request, FactsOf(op), spec);
  });
}

absl::StatusOr<TenantAccess> AccessGate::AuthorizeTenant(const OperatorContext& op,
                                                         std::string_view tenant_name,
                                                         std::string_view need) {
  const absl::Time now = clock_.Now();
  std::optional<store::TenantRecord> tenant;
  std::optional<store::GrantRecord> chosen;
  std::string reason;
  std::string message;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) -> absl::Status {
    auto fail = [&](std::string_view r, std::string m) {
      reason = std::string(r);
      message = std::move(m);
      return absl::OkStatus();
    };
    absl::StatusOr<store::TenantRecord> found = tx.Tenants().GetByName(tenant_name);
    if (absl::IsNotFound(found.status()) ||
        (found.ok() && found->id.value() == store::kProviderLogId)) {
      return fail("tenant_unknown", "Not found: Resource not found: tenant");
    }
    RETURN_IF_ERROR(found.status());
    tenant = *std::move(found);
    if (tenant->support_policy == store::kSupportPolicyBlocked) {
      return fail("tenant_blocked", "The tenant does not allow support access");
    }
    ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                     tx.Support().ListGrantsOfOperatorAcrossTenants(op.op.user_id));
    std::erase_if(grants, [&](const store::GrantRecord& g) { return g.tenant_id != tenant->id; });
    if (grants.empty()) return fail("no_grant", "No grant for this tenant");
    std::erase_if(grants, [&](const store::GrantRecord& g) {
      return g.status != store::kGrantActive || g.expires <= now;
    });
    if (grants.empty()) {
      return fail("grant_expired", "The grant for this tenant has expired or was revoked");
    }
    std::erase_if(grants, [&](const store::GrantRecord& g) { return g.device_id != op.device.id; });
    if (grants.empty()) {
      return fail("grant_other_device", "The grant for this tenant is bound to another device");
    }
    std::vector<store::GrantRecord> open;
    for (store::GrantRecord& g : grants) {
      ASSIGN_OR_RETURN(store::SupportCaseRecord c, tx.Support().GetCase(tenant->id, g.case_id));
      if (c.status == store::kCaseOpen) open.push_back(std::move(g));
    }
    if (open.empty()) return fail("case_closed", "The grant's support case is closed");
    std::erase_if(open, [&](const store::GrantRecord& g) { return !ScopeHas(g.scope, need); });
    if (open.empty()) {
      return fail("scope_missing", fmt::format("No grant for this tenant includes {}", need));
    }
    chosen = *std::max_element(open.begin(), open.end(),
                               [](const auto& a, const auto& b) { return a.expires < b.expires; });
    return absl::OkStatus();
  }));
  if (!reason.empty()) {
    const absl::StatusCode code = reason == "tenant_unknown" ? absl::StatusCode::kNotFound
                                                             : absl::StatusCode::kPermissionDenied;
    // An unknown tenant has no log to write to: the provider log alone records it.
    absl::Status refused =
        Refuse(op.request, &op, reason == "tenant_unknown" ? nullptr : &*tenant, code, reason,
               message, need == kScopeRead ? std::string_view() : need);
    // Probing tenants without a grant is reaching them too, for the tenant-spread rule.
    if (reason != "tenant_unknown") RETURN_IF_ERROR(CountReach(op, *tenant));
    return refused;
  }
  return TenantAccess{.tenant = *std::move(tenant), .grant = *std::move(chosen)};
}

absl::Status AccessGate::RecordView(const OperatorContext& op, const TenantAccess& access,
                                    std::string_view resource,
                                    const std::vector<std::string>& shown) {
  audit::EventSpec spec{
      .event_type = "support.view",
      .display_message = "Support operator views tenant data (redacted)",
      .targets = {TenantTarget(access.tenant)},
      .debug_data = {{"resource", std::string(resource)}, {"fields", absl::StrJoin(shown, ",")}}};
  std::string stale;
  absl::Status written = store_.Write([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(stale, StillValid(tx, op, access, clock_.Now()));
    if (!stale.empty()) return absl::AbortedError(kStale);
    RETURN_IF_ERROR(InitiateOnFirstUse(tx, clock_, random_, op, access));
    return AppendTransparencyEvents(tx, clock_, random_, &access.tenant, op.request,
                                    GrantFacts(op, access.grant), spec);
  });
  if (!stale.empty()) return RefuseStale(op, access, stale);
  RETURN_IF_ERROR(written);
  return CountReach(op, access.tenant);
}

absl::Status AccessGate::RefuseStale(const OperatorContext& op, const TenantAccess& access,
                                     std::string_view reason) {
  const bool credentials = reason != "grant_expired";
  return Refuse(
      op.request, &op, &access.tenant,
      credentials ? absl::StatusCode::kUnauthenticated : absl::StatusCode::kPermissionDenied,
      reason,
      credentials ? "The operator's access ended while the request was in flight"
                  : "The grant ended while the request was in flight");
}

absl::Status AccessGate::CountReach(const OperatorContext& op, const store::TenantRecord& tenant) {
  if (std::optional<Alert> alert =
          anomalies_.OnTenantAccess(op.op.user_id.value(), tenant.id.value(), clock_.Now())) {
    return RaiseAlert(op, *alert);
  }
  return absl::OkStatus();
}

absl::Status AccessGate::RecordFailedView(const OperatorContext& op, const TenantAccess& access,
                                          std::string_view resource, const absl::Status& error) {
  audit::EventSpec spec{.event_type = "support.view",
                        .display_message = "Support operator views tenant data (redacted)",
                        .outcome = std::string(audit::kFailure),
                        .reason = ReasonFor(error, "not_found"),
                        .targets = {TenantTarget(access.tenant)},
                        .debug_data = {{"resource", std::string(resource)}, {"fields", ""}}};
  return store_.Write([&](store::Transaction& tx) {
    return AppendTransparencyEvents(tx, clock_, random_, &access.tenant, op.request,
                                    GrantFacts(op, access.grant), spec);
  });
}

absl::StatusOr<GuardedPermit> AccessGate::BeginGuardedAction(
    const OperatorContext& op, std::string_view tenant_name, std::string_view action,
    std::string_view target, ConfirmationRequired* confirmation_required,
    const std::function<absl::Status(const TenantAccess&)>& check_target) {
  // A suspension by the rule refuses the request that fired it with operator_suspended (as
  // RecordView's), so the caller learns why its credentials stop working.
  auto count_refusal = [&]() -> absl::Status {
    if (std::optional<Alert> alert =
            anomalies_.OnRefusedAction(op.op.user_id.value(), clock_.Now())) {
      return RaiseAlert(op, *alert);
    }
    return absl::OkStatus();
  };
  absl::StatusOr<TenantAccess> access = AuthorizeTenant(op, tenant_name, action);
  if (!access.ok()) {
    if (absl::IsPermissionDenied(access.status())) RETURN_IF_ERROR(count_refusal());
    return access.status();
  }
  const absl::Time now = clock_.Now();
  const audit::Principal target_principal{std::string(target), "SupportActionTarget",
                                          std::string(target), ""};
  if (check_target) {
    if (absl::Status bad_target = check_target(*access); !bad_target.ok()) {
      audit::EventSpec refused{.event_type = "support.action.refused",
                               .display_message = "Guarded support action refused",
                               .severity = "WARN",
                               .outcome = std::string(audit::kDeny),
                               .reason = ReasonFor(bad_target, "target_not_found"),
                               .targets = {TenantTarget(access->tenant), target_principal},
                               .debug_data = {{"action", std::string(action)}}};
      RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) {
        return AppendTransparencyEvents(tx, clock_, random_, &access->tenant, op.request,
                                        GrantFacts(op, access->grant), refused);
      }));
      return bad_target;
    }
  }
  std::optional<GuardedPermit> permit;
  std::string reason;
  std::string confirmation_id;
  std::string stale;
  absl::Status written = store_.Write([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(stale, StillValid(tx, op, *access, now));
    if (!stale.empty()) return absl::AbortedError(kStale);
    RETURN_IF_ERROR(InitiateOnFirstUse(tx, clock_, random_, op, *access));
    absl::StatusOr<store::ConfirmationRecord> latest =
        tx.Support().FindConfirmation(access->tenant.id, access->grant.id, action, target);
    if (!latest.ok() && !absl::IsNotFound(latest.status())) return latest.status();
    const SupportFacts facts = GrantFacts(op, access->grant);
    if (latest.ok() && latest->status == store::kConfirmationConfirmed && latest->expires > now) {
      latest->status = std::string(store::kConfirmationUsed);
      RETURN_IF_ERROR(tx.Support().UpdateConfirmation(*latest));
      permit = GuardedPermit{.access = *access,
                             .confirmation = *latest,
                             .action = std::string(action),
                             .target = std::string(target)};
      return absl::OkStatus();
    }
    if (latest.ok() && latest->status == store::kConfirmationPending && latest->expires > now) {
      reason = "confirmation_required";
      confirmation_id = latest->id;
    } else if (latest.ok() && latest->status == store::kConfirmationDenied &&
               latest->decided.has_value() &&
               *latest->decided + config_.confirmation_lifetime > now) {
      reason = "confirmation_denied";
      confirmation_id = latest->id;
    } else {
      store::ConfirmationRecord pending{.id = random_.Id(store::kConfirmationIdPrefix),
                                        .tenant_id = access->tenant.id,
                                        .grant_id = access->grant.id,
                                        .operator_id = op.op.user_id,
                                        .action = std::string(action),
                                        .target = std::string(target),
                                        .status = std::string(store::kConfirmationPending),
                                        .created = now,
                                        .expires = now + config_.confirmation_lifetime};
      RETURN_IF_ERROR(tx.Support().InsertConfirmation(pending));
      audit::EventSpec asked{
          .event_type = "support.confirmation.request",
          .display_message = "Support asks a tenant admin to confirm a guarded action",
          .targets = {TenantTarget(access->tenant), target_principal},
          .debug_data = {{"action", std::string(action)}, {"confirmationId", pending.id}}};
      RETURN_IF_ERROR(
          AppendTransparencyEvents(tx, clock_, random_, &access->tenant, op.request, facts, asked));
      reason = "confirmation_required";
      confirmation_id = pending.id;
    }
    audit::EventSpec refused{
        .event_type = "support.action.refused",
        .display_message = "Guarded support action refused",
        .severity = "WARN",
        .outcome = std::string(audit::kDeny),
        .reason = reason,
        .targets = {TenantTarget(access->tenant), target_principal},
        .debug_data = {{"action", std::string(action)}, {"confirmationId", confirmation_id}}};
    return AppendTransparencyEvents(tx, clock_, random_, &access->tenant, op.request, facts,
                                    refused);
  });
  if (!stale.empty()) return RefuseStale(op, *access, stale);
  RETURN_IF_ERROR(written);
  if (permit.has_value()) return *std::move(permit);
  // Asking for a confirmation is the normal first step of a guarded action, not an anomaly.
  if (reason != "confirmation_required") RETURN_IF_ERROR(count_refusal());
  if (confirmation_required != nullptr) confirmation_required->confirmation_id = confirmation_id;
  return WithReason(
      ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
               reason == "confirmation_denied"
                   ? fmt::format("A tenant admin denied this {} (confirmation {})", action,
                                 confirmation_id)
                   : fmt::format("This {} needs a tenant admin's confirmation (confirmation {})",
                                 action, confirmation_id)),
      reason);
}

absl::Status AccessGate::FinishGuardedAction(const OperatorContext& op, const GuardedPermit& permit,
                                             const absl::Status& outcome) {
  audit::EventSpec spec{
      .event_type = outcome.ok() ? "support.action.success" : "support.action.failure",
      .display_message =
          outcome.ok() ? "Guarded support action done" : "Guarded support action failed",
      .severity = outcome.ok() ? "INFO" : "WARN",
      .outcome = std::string(outcome.ok() ? audit::kSuccess : audit::kFailure),
      .reason = outcome.ok() ? "" : ReasonFor(outcome, "not_found"),
      .targets = {TenantTarget(permit.access.tenant),
                  {permit.target, "SupportActionTarget", permit.target, ""}},
      .debug_data = {{"action", permit.action}, {"confirmationId", permit.confirmation.id}}};
  return store_.Write([&](store::Transaction& tx) {
    return AppendTransparencyEvents(tx, clock_, random_, &permit.access.tenant, op.request,
                                    GrantFacts(op, permit.access.grant), spec);
  });
}

}  // namespace custos::support
