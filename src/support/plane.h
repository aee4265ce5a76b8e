#pragma once

// The support access plane's rules: vendors and operators of the provider realm, managed devices
// and their posture, device-bound operator tokens, support cases, tenant support policy, access
// requests and grants, and confirmations of guarded actions. api/support translates HTTP to
// these calls; support::AccessGate (access_gate.h) decides each operator request using them.
//
// Every change is written with its System Log events in one store transaction. Events about a
// tenant go to the tenant's log (with the operator id, vendor, device, case and justification)
// and to the provider log (with internal detail as well), see AppendTransparencyEvents. A
// refused decision (e.g. approving an expired request) records a FAILURE event and changes
// nothing else. Requests too malformed to be a decision are refused by api/ before this runs.
//
// Errors carry the management API's codes (common/errors.h): kInvalidArgument E0000001 with the
// problem, kNotFound E0000007, kFailedPrecondition/kPermissionDenied E0000038 for a wrong
// status, with a machine-readable reason (common/errors.h ReasonOf) where a client may act on it.
//
// Thread-safe: holds only references to thread-safe services.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"
#include "crypto/random.h"
#include "store/records.h"
#include "store/store.h"
#include "support/posture.h"

namespace custos::support {

// The provider realm: a built-in tenant whose id is store::kProviderLogId (so its events are the
// provider log) and whose URL name is "provider". Its users are operators and provider admins;
// its admin API tokens (`custos admin create-api-token --tenant provider`) administer vendors,
// operators and devices.
inline constexpr std::string_view kProviderTenantName = "provider";

// Scope entries of access requests and grants.
inline constexpr std::string_view kScopeRead = "read";
inline constexpr std::string_view kActionPasswordReset = "password_reset";
inline constexpr std::string_view kActionMfaReset = "mfa_reset";
inline constexpr std::string_view kActionConfigChange = "config_change";

// Justification codes.
inline constexpr std::string_view kJustificationCustomerInitiated = "CUSTOMER_INITIATED_SUPPORT";
inline constexpr std::string_view kJustificationProviderReview = "PROVIDER_INITIATED_REVIEW";
inline constexpr std::string_view kJustificationIncidentResponse = "INCIDENT_RESPONSE";

// Creates the provider tenant (id kProviderLogId, name "provider") when it does not exist, with
// its tenant.lifecycle.create event. Idempotent.
absl::Status EnsureProviderTenant(store::Store& store, const Clock& clock, crypto::Random& random);

// An authenticated operator request, as the access gate established it: a valid, unexpired,
// unrevoked operator token, presented with a valid DPoP proof by the device it is bound to, that
// device ACTIVE and compliant, its vendor and operator ACTIVE, its session alive.
struct OperatorContext {
  store::OperatorRecord op;
  std::string login;         // the operator's provider-tenant login
  std::string display_name;  // "First Last", or the login
  store::VendorRecord vendor;
  store::DeviceRecord device;
  store::OperatorTokenRecord token;
  // The request, with the operator as actor (type "User", alternate_id the login) and
  // external_session_id the provider session id.
  audit::RequestContext request;
};

// What a transparency event says about the support work it records; empty members are left
// out.
struct SupportFacts {
  std::string operator_id;
  std::string operator_login;
  std::string vendor_id;
  std::string vendor_name;
  std::string employing_entity;
  std::string country;
  std::string device_id;
  std::string case_id;
  std::string justification;
  std::string request_id;  // access request id
  std::string grant_id;
  std::string scope;
};

// The facts of an operator context (operator, vendor, device).
SupportFacts FactsOf(const OperatorContext& op);

// Appends the event `spec` describes to the tenant's log (when `tenant` is not null) and to the
// provider log, in `tx`. Both carry in debugContext.debugData: operatorId, vendorId,
// vendorName, deviceId, caseId, justification, accessRequestId, grantId, scope (those set in
// `facts`); the provider copy adds operatorLogin, employingEntity, country, tenantId and
// tenantName, and the request's ip and user agent stay in client of both. `spec.debug_data` is
// added to both. When `tenant` is the provider tenant itself, one event is appended.
absl::Status AppendTransparencyEvents(store::Transaction& tx, const Clock& clock,
                                      crypto::Random& random, const store::TenantRecord* tenant,
                                      const audit::RequestContext& context,
                                      const SupportFacts& facts, audit::EventSpec spec);

// ---- Views (the JSON the API returns) ----
Json VendorView(const store::VendorRecord& vendor);
Json DeviceView(const store::DeviceRecord& device, const Compliance& compliance);

struct NewVendor {
  std::string name;              // 1..200 bytes
  std::string employing_entity;  // 1..200 bytes
  std::string country;           // two ASCII letters; stored upper case
};

struct KillSwitchResult {
  store::VendorRecord vendor;
  int sessions = 0;  // provider sessions ended
  int tokens = 0;    // operator tokens revoked
  int grants = 0;    // grants revoked, across tenants
  int devices = 0;   // devices revoked
};

struct IssuedEnrollmentToken {
  store::EnrollmentTokenRecord record;
  std::string token;  // shown once; "cde_" + 43 base64url characters
};

struct IssuedOperatorToken {
  store::OperatorTokenRecord record;
  std::string token;  // shown once; "cop_" + 43 base64url characters
};

// A pending or decided access request with what an approver needs to see.
struct AccessRequestInfo {
  store::AccessRequestRecord request;
  store::OperatorRecord op;
  std::string operator_login;
  std::string operator_name;
  store::VendorRecord vendor;
  store::DeviceRecord device;
  Compliance device_compliance;
  std::optional<store::GrantRecord> grant;  // when approved
};
// {"id","status","tenantId","caseId","justification","scope":[..],"duration":"8h","created",
//  "expiresAt","decidedBy","decided","reason","operator":{"id","login","name","status"},
//  "vendor":{"id","name","employingEntity","country","status"},
//  "device":{"id","name","status","compliant","failures":[..],"postureReportedAt"},
//  "grant":{...GrantView...}}
Json AccessRequestView(const AccessRequestInfo& info);
// {"id","status","tenantId","requestId","operatorId","vendorId","deviceId","caseId",
//  "justification","scope":[..],"created","expiresAt","ended","endReason","firstUsed"}
Json GrantView(const store::GrantRecord& grant);
Json CaseView(const store::SupportCaseRecord& support_case);
Json ConfirmationView(const store::ConfirmationRecord& confirmation);

struct NewAccessRequest {
  std::string tenant_name;
  std::string case_id;
  std::string justification;               // one of the kJustification* codes
  std::vector<std::string> scope;          // kScopeRead and/or kAction*; non-empty, no repeats
  std::optional<absl::Duration> duration;  // default grant_default_duration; max grant_max
};

class SupportPlane {
 public:
  // All references must outlive this object. Policy defaults and lifetimes come from `config`.
  SupportPlane(store::Store& store, const Config& config, const Clock& clock,
               crypto::Random& random);

  // ---- Vendors and operators (provider admins) ----
  // kAlreadyExists E0000001-style validation error when the name is taken. Event
  // support.vendor.create.
  absl::StatusOr<store::VendorRecord> CreateVendor(const audit::RequestContext& ctx,
                                                   const NewVendor& vendor);
  absl::StatusOr<store::VendorRecord> GetVendor(std::string_view id);
  absl::StatusOr<std::vector<store::VendorRecord>> ListVendors();
  // The kill switch, in one transaction: the vendor SUSPENDED; every provider session of its
  // operators deleted; every operator token of the vendor revoked; every ACTIVE grant of its
  // operators REVOKED (end_reason "vendor_suspended", event user.session.impersonation.revoke in
  // each tenant); every non-revoked device of the vendor REVOKED. Event support.vendor.suspend
  // with the counts. Suspending a suspended vendor: FAILURE event, E0000038.
  absl::StatusOr<KillSwitchResult> SuspendVendor(const audit::RequestContext& ctx,
                                                 std::string_view vendor_id,
                                                 std::string_view reason);
  // ACTIVE again. Revoked devices stay revoked and revoked grants stay revoked.
  absl::StatusOr<store::VendorRecord> UnsuspendVendor(const audit::RequestContext& ctx,
                                                      std::string_view vendor_id);

  // Makes an existing provider-tenant user an operator of the vendor (event
  // support.operator.create). kNotFound for an unknown user or vendor; validation error when
  // already an operator or the vendor is suspended.
  absl::StatusOr<store::OperatorRecord> CreateOperator(const audit::RequestContext& ctx,
                                                       const UserId& user_id,
                                                       std::string_view vendor_id);
  absl::StatusOr<store::OperatorRecord> GetOperator(const UserId& user_id);
  absl::StatusOr<std::vector<store::OperatorRecord>> ListOperators(
      std::optional<std::string> vendor_id);
  // Suspends (sessions deleted, tokens revoked; grants kept but unusable while suspended) or
  // reinstates. Events support.operator.suspend / support.operator.unsuspend; FAILURE + E0000038
  // when already in that status. `reason` is recorded ("anomaly: tenant_spread", ...).
  absl::StatusOr<store::OperatorRecord> SuspendOperator(const audit::RequestContext& ctx,
                                                        const UserId& user_id,
                                                        std::string_view reason);
  absl::StatusOr<store::OperatorRecord> UnsuspendOperator(const audit::RequestContext& ctx,
                                                          const UserId& user_id);

  // ---- Devices ----
  // A single-use enrolment token for a device of `vendor_id` (ACTIVE vendor), valid for
  // support.enrollment_token_lifetime. Event support.device.enrollment_token.create.
  absl::StatusOr<IssuedEnrollmentToken> CreateEnrollmentToken(const audit::RequestContext& ctx,
                                                              std::string_view vendor_id,
                                                              std::string_view device_name);
  // Enrols the device whose public key is `jwk`: `token` must be unused, unexpired, of an ACTIVE
  // vendor, and issued after the vendor's last status change (a kill switch voids older ones);
  // `proof_jkt` (the thumbprint of the key that signed the request's DPoP proof, checked by the
  // caller) must equal the jwk's thumbprint; the key must not be enrolled already. Marks the token
  // used and creates the ACTIVE device (event support.device.enroll). Refusals record a FAILURE
  // event: kUnauthenticated E0000011 for an unknown, used or expired token (one message for all
  // three), validation errors for a bad jwk or a proof by another key.
  absl::StatusOr<store::DeviceRecord> EnrollDevice(const audit::RequestContext& ctx,
                                                   std::string_view token, const Json& jwk,
                                                   std::string_view proof_jkt);
  // Accepts a posture report (posture.h) from an ACTIVE or LOCKED device: verified with the
  // device's key, iat within dpop_max_age of now and later than the last accepted report's.
  // Stores it (event support.device.posture, with compliant and failures). Refusals record a
  // FAILURE event (kUnauthenticated for a bad signature, validation errors otherwise; kNotFound
  // for an unknown device records nothing).
  absl::StatusOr<store::DeviceRecord> ReportPosture(const audit::RequestContext& ctx,
                                                    std::string_view device_id,
                                                    std::string_view report_jws);
  absl::StatusOr<store::DeviceRecord> GetDevice(std::string_view id);
  absl::StatusOr<std::vector<store::DeviceRecord>> ListDevices(
      std::optional<std::string> vendor_id);
  // ACTIVE -> LOCKED (lock), LOCKED -> ACTIVE (unlock), ACTIVE|LOCKED -> REVOKED (revoke; its
  // tokens are revoked). Events support.device.lock|unlock|revoke; FAILURE + E0000038 otherwise.
  absl::StatusOr<store::DeviceRecord> SetDeviceStatus(const audit::RequestContext& ctx,
                                                      std::string_view device_id,
                                                      std::string_view action);
  // The device policy in force: the stored one, or the config defaults.
  absl::StatusOr<DevicePolicy> GetDevicePolicy();
  // Replaces the stored policy (event support.device.policy.update).
  absl::StatusOr<DevicePolicy> SetDevicePolicy(const audit::RequestContext& ctx,
                                               const DevicePolicy& policy);
  // The device's compliance under the policy in force, now.
  Compliance ComplianceOf(const store::DeviceRecord& device, const DevicePolicy& policy) const;

  // ---- Operator tokens ----
  // Exchanges a provider-tenant session token for an operator token bound to the device whose
  // key thumbprint is `proof_jkt` (verified DPoP proof). Requires: the session valid (not
  // expired, not idle past authn.session_idle_timeout) with a second factor in its amr; its
  // user an ACTIVE operator of an ACTIVE vendor; the device ACTIVE, compliant and of the same
  // vendor. Event support.token.issue; each refusal records a FAILURE event and returns
  // kUnauthenticated with a reason (ReasonOf): session_invalid, second_factor_required,
  // not_an_operator, operator_suspended, vendor_suspended, device_unknown, device_locked,
  // device_revoked, device_noncompliant, device_wrong_vendor.
  absl::StatusOr<IssuedOperatorToken> IssueOperatorToken(const audit::RequestContext& ctx,
                                                         std::string_view session_token,
                                                         std::string_view proof_jkt);

  // ---- Cases and policy ----
  // Opened by the tenant (ctx is a tenant admin) or by an operator (`op` set). Event
  // support.case.open in the tenant's and the provider's logs.
  absl::StatusOr<store::SupportCaseRecord> OpenCase(const audit::RequestContext& ctx,
                                                    const OperatorContext* op,
                                                    const store::TenantRecord& tenant,
                                                    std::string_view subject);
  absl::StatusOr<std::vector<store::SupportCaseRecord>> ListCases(const TenantId& tenant);
  // Closes the case; its ACTIVE grants end (status ENDED, end_reason "case_closed", event
  // user.session.impersonation.end each). Event support.case.close.
  absl::StatusOr<store::SupportCaseRecord> CloseCase(const audit::RequestContext& ctx,
                                                     const store::TenantRecord& tenant,
                                                     std::string_view case_id);
  // One of store::kSupportPolicy*; otherwise a validation error. Setting kSupportPolicyBlocked
  // revokes every ACTIVE grant of the tenant (end_reason "policy_blocked") and denies every
  // pending request. Event support.policy.update (tenant and provider logs).
  absl::StatusOr<store::TenantRecord> SetPolicy(const audit::RequestContext& ctx,
                                                const store::TenantRecord& tenant,
                                                std::string_view policy);

  // ---- Access requests and grants ----
  // An operator asks. The case must exist in that tenant and be OPEN. Under kSupportPolicyBlocked
  // the request is refused (event support.access.request DENY, reason policy_blocked, E0000006,
  // nothing stored). Under kSupportPolicyAutoApproveRead, a read-only request for a case the
  // tenant opened is approved at once by "policy". Otherwise it is PENDING until
  // access_request_lifetime from now. Events support.access.request, and
  // user.session.impersonation.grant when approved.
  absl::StatusOr<AccessRequestInfo> RequestAccess(const OperatorContext& op,
                                                  const NewAccessRequest& request);
  absl::StatusOr<AccessRequestInfo> GetAccessRequest(const TenantId& tenant, std::string_view id);
  absl::StatusOr<std::vector<AccessRequestInfo>> ListAccessRequests(
      const TenantId& tenant, std::optional<std::string> status);
  absl::StatusOr<std::vector<AccessRequestInfo>> ListAccessRequestsOfOperator(
      const UserId& operator_id);
  // A tenant admin approves a PENDING, unexpired request, optionally for a shorter duration
  // (never longer than asked). The grant binds operator, device and case; it expires after the
  // duration. Event user.session.impersonation.grant. Refused with a FAILURE event
  // (support.access.approve) and E0000038: an expired request (reason request_expired), one
  // already decided (request_not_pending), a closed case (case_closed), a longer duration
  // (validation error), a suspended operator or vendor.
  absl::StatusOr<AccessRequestInfo> Approve(const audit::RequestContext& ctx,
                                            const store::TenantRecord& tenant,
                                            std::string_view request_id,
                                            std::optional<absl::Duration> duration,
                                            std::string_view reason);
  // Event support.access.deny; refusals as Approve's.
  absl::StatusOr<AccessRequestInfo> Deny(const audit::RequestContext& ctx,
                                         const store::TenantRecord& tenant,
                                         std::string_view request_id, std::string_view reason);
  absl::StatusOr<std::vector<store::GrantRecord>> ListGrants(const TenantId& tenant,
                                                             std::optional<std::string> status);
  absl::StatusOr<std::vector<store::GrantRecord>> ListGrantsOfOperator(const UserId& operator_id);
  // New expiry: max(expires, now) + by, at most now + grant_max_duration; only an ACTIVE,
  // unexpired grant. Event user.session.impersonation.extend.
  absl::StatusOr<store::GrantRecord> ExtendGrant(const audit::RequestContext& ctx,
                                                 const store::TenantRecord& tenant,
                                                 std::string_view grant_id, absl::Duration by);
  // Event user.session.impersonation.revoke.
  absl::StatusOr<store::GrantRecord> RevokeGrant(const audit::RequestContext& ctx,
                                                 const store::TenantRecord& tenant,
                                                 std::string_view grant_id,
                                                 std::string_view reason);

  // ---- Confirmations ----
  absl::StatusOr<std::vector<store::ConfirmationRecord>> ListConfirmations(
      const TenantId& tenant, std::optional<std::string> status);
  // A tenant admin confirms or denies a PENDING, unexpired confirmation. Events
  // support.confirmation.confirm / support.confirmation.deny; refusals FAILURE + E0000038
  // (reason confirmation_expired or confirmation_not_pending).
  absl::StatusOr<store::ConfirmationRecord> DecideConfirmation(const audit::RequestContext& ctx,
                                                               const store::TenantRecord& tenant,
                                                               std::string_view confirmation_id,
                                                               bool confirm);

  // ---- Housekeeping ----
  // Marks pending requests past their expiry EXPIRED (event support.access.request.expire) and
  // ACTIVE grants past theirs ENDED with end_reason "expired" (event
  // user.session.impersonation.end), and pending confirmations past theirs EXPIRED (event
  // support.confirmation.expire). Returns how many rows changed. `custos serve` runs it every
  // minute.
  absl::StatusOr<int> SweepExpired();

 private:
  store::Store& store_;
  const Config& config_;
  const Clock& clock_;
  crypto::Random& random_;
};

}  // namespace custos::support
