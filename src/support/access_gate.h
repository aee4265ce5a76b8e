#pragma once

// support::AccessGate: the one gate every operator request passes. It authenticates the request
// (a device-bound operator token with a DPoP proof from an enrolled, compliant, unlocked device
// of an active vendor, for an active operator with a live session), then decides each reach into
// a tenant against the operator's grants, and records every decision, allow or deny, with its
// reason:
//   support.gate.deny    a refused request (provider log; also the tenant's when one was named)
//   support.gate.allow   an allowed request that reads or changes nothing in a tenant
//   support.view         an allowed view into a tenant, with the fields shown (both logs)
//   user.session.impersonation.initiate   the first use of a grant (both logs)
//   support.action.refused / support.action.success / support.action.failure   guarded actions
//   support.confirmation.request           a guarded action waits for a tenant admin
//   support.anomaly.alert                  an anomaly rule fired (provider log)
//
// Refusals are kUnauthenticated (authentication: 401, E0000011) or kPermissionDenied (a tenant:
// 403, E0000006), each with a machine-readable reason (common/errors.h ReasonOf):
//   authentication: token_missing, dpop_scheme_required, dpop_missing, dpop_* (support/dpop.h),
//     token_invalid, token_expired, token_revoked, dpop_key_mismatch, session_ended,
//     operator_suspended, operator_inactive, vendor_suspended, device_locked, device_revoked,
//     device_noncompliant
//   tenant: tenant_unknown, tenant_blocked, no_grant, grant_expired, grant_other_device,
//     case_closed, scope_missing, confirmation_required, confirmation_denied, and
//     operator_suspended when an anomaly rule suspends the operator during the request
// Refused guarded actions count towards the refused-actions anomaly rule, except the normal
// first step of asking for a confirmation (confirmation_required).
//
// Thread-safe.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/rate_limiter.h"
#include "crypto/random.h"
#include "store/store.h"
#include "support/anomaly.h"
#include "support/dpop.h"
#include "support/plane.h"

namespace custos::support {

// What the gate needs of an HTTP request.
struct GateRequest {
  std::string method;
  std::string url;            // absolute, as the client addressed it (base URL + path)
  std::string authorization;  // the Authorization header
  std::string dpop;           // the DPoP header
  // The tenant the request reaches into, when its path names one: a refused authentication is
  // then recorded in that tenant's log as well (the tenant sees attempts on its data).
  std::string tenant_name;
  // ip, user agent, request id and path for events; the actor is filled in by the gate.
  audit::RequestContext context;
};

// An allowed reach into a tenant.
struct TenantAccess {
  store::TenantRecord tenant;
  store::GrantRecord grant;
};

// The outcome of asking for a guarded action.
struct GuardedPermit {
  TenantAccess access;
  store::ConfirmationRecord confirmation;  // CONFIRMED before, now USED
  std::string action;
  std::string target;
};

// A refused guarded action that a tenant admin may still confirm.
struct ConfirmationRequired {
  std::string confirmation_id;
};

class AccessGate {
 public:
  // All references must outlive the gate. `refusal_limiter` (may be null) bounds the refused
  // requests per client address that are recorded: beyond it a refusal is answered 429 without
  // an event.
  AccessGate(store::Store& store, const Config& config, const Clock& clock, crypto::Random& random,
             SupportPlane& plane, DpopVerifier& dpop, AnomalyDetector& anomalies,
             RateLimit* refusal_limiter);

  // Authenticates an operator request; a refusal is recorded and returned with its reason.
  // Also applies the new-device and new-network anomaly rules.
  absl::StatusOr<OperatorContext> Authenticate(const GateRequest& request);

  // Records an allowed request that reaches no tenant (`what` names it, e.g. "support.me").
  absl::Status RecordAllow(const OperatorContext& op, std::string_view what);

  // Decides a reach into the tenant named `tenant_name` that needs `need` (kScopeRead or an
  // action): an ACTIVE, unexpired grant of this operator for this device, whose case is open and
  // whose scope holds `need`, while the tenant's policy is not blocked. A refusal is recorded in
  // both logs and returned (kNotFound E0000007 for an unknown tenant, recorded in the provider
  // log only). An allowed reach is recorded by RecordView or the guarded-action calls.
  absl::StatusOr<TenantAccess> AuthorizeTenant(const OperatorContext& op,
                                               std::string_view tenant_name, std::string_view need);

  // Records an allowed view (support.view, both logs; the first use of the grant also records
  // user.session.impersonation.initiate) with the fields shown. Must succeed before the data is
  // sent. Checks again, in the same transaction, that the token, operator, vendor, device and
  // grant are still valid, so that a kill switch or revocation that committed while the data
  // was read refuses the request. Applies the tenant-spread anomaly rule.
  absl::Status RecordView(const OperatorContext& op, const TenantAccess& access,
                          std::string_view resource, const std::vector<std::string>& shown);

  // Records an allowed reach whose read then failed (e.g. an unknown user id): support.view with
  // outcome FAILURE and the error, both logs.
  absl::Status RecordFailedView(const OperatorContext& op, const TenantAccess& access,
                                std::string_view resource, const absl::Status& error);

  // A guarded action (`action` on `target`) needs a grant naming the action and a confirmation
  // by a tenant admin. Refusals for want of a grant or scope come from AuthorizeTenant
  // (support.gate.deny). Then `check_target` (when set) must accept the target (e.g. the user
  // exists): otherwise support.action.refused with the error, and no confirmation is asked for.
  // With a CONFIRMED, unexpired confirmation for this grant, action and target, marks it USED
  // (re-checking, as RecordView does, that everything is still valid) and returns the permit.
  // Otherwise records support.action.refused and returns kPermissionDenied with reason
  // confirmation_required (a PENDING confirmation now exists; its id is in
  // `*confirmation_required`) or confirmation_denied. Applies the refused-actions rule (not to
  // confirmation_required, the normal first step).
  absl::StatusOr<GuardedPermit> BeginGuardedAction(
      const OperatorContext& op, std::string_view tenant_name, std::string_view action,
      std::string_view target, ConfirmationRequired* confirmation_required,
      const std::function<absl::Status(const TenantAccess&)>& check_target = nullptr);

  // Records how the permitted action ended: support.action.success, or support.action.failure
  // with the error.
  absl::Status FinishGuardedAction(const OperatorContext& op, const GuardedPermit& permit,
                                   const absl::Status& outcome);

 private:
  // Records support.gate.deny and returns the refusal (or a 429 past the limiter).
  // `action`: the guarded action the request tried, when it was one (recorded as debugData
  // action, so that a refusal at the tenant check still shows what was attempted).
  absl::Status Refuse(const audit::RequestContext& context, const OperatorContext* op,
                      const store::TenantRecord* tenant, absl::StatusCode code,
                      std::string_view reason, std::string message, std::string_view action = {});
  absl::Status RaiseAlert(const OperatorContext& op, const Alert& alert);
  // Counts a reach into a tenant (allowed or refused) for the tenant-spread rule.
  absl::Status CountReach(const OperatorContext& op, const store::TenantRecord& tenant);
  // Records support.gate.deny for a request whose access ended in flight (StillValid's reason).
  absl::Status RefuseStale(const OperatorContext& op, const TenantAccess& access,
                           std::string_view reason);
  absl::Status CheckSightings(const OperatorContext& op);

  store::Store& store_;
  const Config& config_;
  const Clock& clock_;
  crypto::Random& random_;
  SupportPlane& plane_;
  DpopVerifier& dpop_;
  AnomalyDetector& anomalies_;
  RateLimit* refusal_limiter_;

  absl::Mutex mu_;
  // "operator|kind|value" sightings already stored, to spare a write per request.
  absl::flat_hash_set<std::string> known_sightings_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos::support
