#include "support/plane.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/hash.h"
#include "support/jwk.h"

namespace custos::support {
namespace {

using store::Transaction;

constexpr std::string_view kDevicePolicySetting = "device_policy";
constexpr std::string_view kEnrollmentTokenPrefix = "cde_";
constexpr std::string_view kOperatorTokenPrefix = "cop_";
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxSubjectBytes = 1000;
// Who decided a request that no person decided.
constexpr std::string_view kDecidedByPolicy = "policy";

// RFC 8176 methods that prove a second factor on top of the password.
constexpr std::string_view kSecondFactorMethods[] = {"otp", "hwk", "swk", "mfa", "fido"};

TenantId ProviderTenantId() { return TenantId(std::string(store::kProviderLogId)); }

Json TimeOrNull(const std::optional<absl::Time>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

Json TextOrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::vector<std::string> ScopeList(const std::string& scope) {
  return absl::StrSplit(scope, ' ', absl::SkipEmpty());
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

audit::Principal UserTarget(const store::UserRecord& user) {
  return {user.id.value(), "User", user.login, DisplayName(user)};
}
audit::Principal OperatorTarget(const UserId& id, const std::string& login) {
  return {id.value(), "User", login, ""};
}
audit::Principal VendorTarget(const store::VendorRecord& vendor) {
  return {vendor.id, "SupportVendor", vendor.name, vendor.name};
}
audit::Principal DeviceTarget(const store::DeviceRecord& device) {
  return {device.id, "SupportDevice", device.name, device.name};
}
audit::Principal TenantTarget(const store::TenantRecord& tenant) {
  return {tenant.id.value(), "Tenant", tenant.name, tenant.name};
}
audit::Principal CaseTarget(const store::SupportCaseRecord& support_case) {
  return {support_case.id, "SupportCase", support_case.id, support_case.subject};
}
audit::Principal RequestTarget(const store::AccessRequestRecord& request) {
  return {request.id, "SupportAccessRequest", request.case_id, ""};
}
audit::Principal GrantTarget(const store::GrantRecord& grant) {
  return {grant.id, "SupportGrant", grant.case_id, ""};
}
audit::Principal ConfirmationTarget(const store::ConfirmationRecord& confirmation) {
  return {confirmation.id, "SupportConfirmation", confirmation.action, confirmation.target};
}

absl::Status WrongStatus(std::string message, std::string_view reason = {}) {
  absl::Status status =
      ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus, std::move(message));
  return reason.empty() ? status : WithReason(std::move(status), reason);
}

absl::Status AppendProviderEvent(Transaction& tx, const Clock& clock, crypto::Random& random,
                                 const audit::RequestContext& ctx, const audit::EventSpec& spec) {
  return tx.Events()
      .Append(audit::MakeEvent(ProviderTenantId(), ctx, spec, clock, random))
      .status();
}

audit::EventSpec Failure(audit::EventSpec spec, std::string reason,
                         std::string_view outcome = audit::kFailure) {
  spec.outcome = std::string(outcome);
  spec.reason = std::move(reason);
  return spec;
}

// A refused decision: the caller's error and what records it. The attempt's transaction rolls
// back, so nothing it may have changed stays; the record is written in a transaction of its own.
struct Refusal {
  absl::Status error;
  std::function<absl::Status(Transaction&)> record;

  absl::Status Refuse(absl::Status e, std::function<absl::Status(Transaction&)> r) {
    error = e;
    record = std::move(r);
    return e;
  }
};

absl::Status WriteDecision(store::Store& store,
                           absl::FunctionRef<absl::Status(Transaction&, Refusal&)> attempt) {
  Refusal refusal;
  absl::Status status = store.Write([&](Transaction& tx) { return attempt(tx, refusal); });
  if (refusal.error.ok()) return status;
  RETURN_IF_ERROR(store.Write([&](Transaction& tx) { return refusal.record(tx); }));
  return refusal.error;
}

absl::StatusOr<store::VendorRecord> FindVendor(Transaction& tx, std::string_view id) {
  absl::StatusOr<store::VendorRecord> vendor = tx.Support().GetVendor(id);
  if (absl::IsNotFound(vendor.status())) return NotFoundError(fmt::format("{} (Vendor)", id));
  return vendor;
}

absl::StatusOr<store::OperatorRecord> FindOperator(Transaction& tx, const UserId& id) {
  absl::StatusOr<store::OperatorRecord> op = tx.Support().GetOperator(id);
  if (absl::IsNotFound(op.status())) {
    return NotFoundError(fmt::format("{} (Operator)", id.value()));
  }
  return op;
}

absl::StatusOr<store::DeviceRecord> FindDevice(Transaction& tx, std::string_view id) {
  absl::StatusOr<store::DeviceRecord> device = tx.Support().GetDevice(id);
  if (absl::IsNotFound(device.status())) return NotFoundError(fmt::format("{} (Device)", id));
  return device;
}

absl::StatusOr<store::SupportCaseRecord> FindCase(Transaction& tx, const TenantId& tenant,
                                                  std::string_view id) {
  absl::StatusOr<store::SupportCaseRecord> found = tx.Support().GetCase(tenant, id);
  if (absl::IsNotFound(found.status())) return NotFoundError(fmt::format("{} (SupportCase)", id));
  return found;
}

absl::StatusOr<store::AccessRequestRecord> FindRequest(Transaction& tx, const TenantId& tenant,
                                                       std::string_view id) {
  absl::StatusOr<store::AccessRequestRecord> found = tx.Support().GetAccessRequest(tenant, id);
  if (absl::IsNotFound(found.status())) {
    return NotFoundError(fmt::format("{} (SupportAccessRequest)", id));
  }
  return found;
}

absl::StatusOr<store::GrantRecord> FindGrant(Transaction& tx, const TenantId& tenant,
                                             std::string_view id) {
  absl::StatusOr<store::GrantRecord> found = tx.Support().GetGrant(tenant, id);
  if (absl::IsNotFound(found.status())) return NotFoundError(fmt::format("{} (SupportGrant)", id));
  return found;
}

// The provider-tenant user behind an operator; nullopt when the user was deleted.
absl::StatusOr<std::optional<store::UserRecord>> OperatorUser(Transaction& tx, const UserId& id) {
  absl::StatusOr<store::UserRecord> user = tx.Users().Get(ProviderTenantId(), id);
  if (absl::IsNotFound(user.status())) return std::nullopt;
  RETURN_IF_ERROR(user.status());
  return *std::move(user);
}

// The facts of stored support work (a request or a grant) as a transparency event tells them.
absl::StatusOr<SupportFacts> StoredFacts(Transaction& tx, const UserId& operator_id,
                                         std::string_view vendor_id, std::string_view device_id) {
  SupportFacts facts;
  facts.operator_id = operator_id.value();
  facts.vendor_id = std::string(vendor_id);
  facts.device_id = std::string(device_id);
  ASSIGN_OR_RETURN(std::optional<store::UserRecord> user, OperatorUser(tx, operator_id));
  if (user) facts.operator_login = user->login;
  absl::StatusOr<store::VendorRecord> vendor = tx.Support().GetVendor(vendor_id);
  if (vendor.ok()) {
    facts.vendor_name = vendor->name;
    facts.employing_entity = vendor->employing_entity;
    facts.country = vendor->country;
  } else if (!absl::IsNotFound(vendor.status())) {
    return vendor.status();
  }
  return facts;
}

absl::StatusOr<SupportFacts> RequestFacts(Transaction& tx,
                                          const store::AccessRequestRecord& request) {
  ASSIGN_OR_RETURN(SupportFacts facts,
                   StoredFacts(tx, request.operator_id, request.vendor_id, request.device_id));
  facts.case_id = request.case_id;
  facts.justification = request.justification;
  facts.request_id = request.id;
  facts.scope = request.scope;
  facts.grant_id = request.grant_id;
  return facts;
}

absl::StatusOr<SupportFacts> GrantFacts(Transaction& tx, const store::GrantRecord& grant) {
  ASSIGN_OR_RETURN(SupportFacts facts,
                   StoredFacts(tx, grant.operator_id, grant.vendor_id, grant.device_id));
  facts.case_id = grant.case_id;
  facts.justification = grant.justification;
  facts.request_id = grant.request_id;
  facts.grant_id = grant.id;
  facts.scope = grant.scope;
  return facts;
}

absl::StatusOr<DevicePolicy> DefaultDevicePolicy(const Config& config) {
  ASSIGN_OR_RETURN(std::vector<std::string> signals, ParseSignalList(config.required_posture));
  return DevicePolicy{.max_posture_age = config.posture_max_age,
                      .required_signals = std::move(signals),
                      .max_patch_age = config.max_patch_age};
}

absl::StatusOr<DevicePolicy> DevicePolicyIn(Transaction& tx, const Config& config) {
  ASSIGN_OR_RETURN(DevicePolicy defaults, DefaultDevicePolicy(config));
  absl::StatusOr<std::string> stored = tx.Support().GetSetting(kDevicePolicySetting);
  if (absl::IsNotFound(stored.status())) return defaults;
  RETURN_IF_ERROR(stored.status());
  absl::StatusOr<Json> json = ParseJson(*stored);
  if (!json.ok()) return absl::InternalError("the stored device policy is not JSON");
  absl::StatusOr<DevicePolicy> policy = ParseDevicePolicy(*json, defaults);
  if (!policy.ok()) {
    return absl::InternalError(fmt::format("the stored device policy is invalid: {}",
                                           std::string(policy.status().message())));
  }
  return policy;
}

absl::StatusOr<AccessRequestInfo> InfoOf(Transaction& tx, const SupportPlane& plane,
                                         const DevicePolicy& policy,
                                         store::AccessRequestRecord request) {
  AccessRequestInfo info;
  ASSIGN_OR_RETURN(info.op, tx.Support().GetOperator(request.operator_id));
  ASSIGN_OR_RETURN(std::optional<store::UserRecord> user, OperatorUser(tx, request.operator_id));
  if (user) {
    info.operator_login = user->login;
    info.operator_name = DisplayName(*user);
  }
  ASSIGN_OR_RETURN(info.vendor, tx.Support().GetVendor(request.vendor_id));
  ASSIGN_OR_RETURN(info.device, tx.Support().GetDevice(request.device_id));
  info.device_compliance = plane.ComplianceOf(info.device, policy);
  if (!request.grant_id.empty()) {
    ASSIGN_OR_RETURN(info.grant, tx.Support().GetGrant(request.tenant_id, request.grant_id));
  }
  info.request = std::move(request);
  return info;
}

bool HasSecondFactor(const std::string& amr) {
  const std::vector<std::string> methods = absl::StrSplit(amr, ' ', absl::SkipEmpty());
  for (const std::string& method : methods) {
    for (std::string_view second : kSecondFactorMethods) {
      if (method == second) return true;
    }
  }
  return false;
}

bool IsJustification(std::string_view code) {
  return code == kJustificationCustomerInitiated || code == kJustificationProviderReview ||
         code == kJustificationIncidentResponse;
}

bool IsScopeEntry(std::string_view entry) {
  return entry == kScopeRead || entry == kActionPasswordReset || entry == kActionMfaReset ||
         entry == kActionConfigChange;
}

std::string BoolText(bool b) { return b ? "true" : "false"; }

audit::RequestContext SystemContext() {
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  return ctx;
}

}  // namespace

absl::Status EnsureProviderTenant(store::Store& store, const Clock& clock, crypto::Random& random) {
  const TenantId id = ProviderTenantId();
  absl::StatusOr<store::TenantRecord> existing =
      store::ReadResult(store, [&](Transaction& tx) { return tx.Tenants().Get(id); });
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  return store.Write([&](Transaction& tx) -> absl::Status {
    // Another process may have created it since the read.
    absl::StatusOr<store::TenantRecord> again = tx.Tenants().Get(id);
    if (again.ok()) return absl::OkStatus();
    if (!absl::IsNotFound(again.status())) return again.status();
    store::TenantRecord tenant{id, std::string(kProviderTenantName), clock.Now()};
    absl::Status inserted = tx.Tenants().Insert(tenant);
    if (absl::IsAlreadyExists(inserted)) {
      return absl::FailedPreconditionError(
          fmt::format("a tenant named '{}' exists that is not the provider realm; rename it first",
                      kProviderTenantName));
    }
    RETURN_IF_ERROR(inserted);
    audit::EventSpec spec{.event_type = "tenant.lifecycle.create",
                          .display_message = "Create tenant",
                          .targets = {TenantTarget(tenant)}};
    return tx.Events().Append(audit::MakeEvent(id, SystemContext(), spec, clock, random)).status();
  });
}

SupportFacts FactsOf(const OperatorContext& op) {
  SupportFacts facts;
  facts.operator_id = op.op.user_id.value();
  facts.operator_login = op.login;
  facts.vendor_id = op.vendor.id;
  facts.vendor_name = op.vendor.name;
  facts.employing_entity = op.vendor.employing_entity;
  facts.country = op.vendor.country;
  facts.device_id = op.device.id;
  return facts;
}

absl::Status AppendTransparencyEvents(store::Transaction& tx, const Clock& clock,
                                      crypto::Random& random, const store::TenantRecord* tenant,
                                      const audit::RequestContext& context,
                                      const SupportFacts& facts, audit::EventSpec spec) {
  auto put = [](std::map<std::string, std::string>& data, const char* key,
                const std::string& value) {
    if (!value.empty()) data[key] = value;
  };
  std::map<std::string, std::string> shared = spec.debug_data;
  put(shared, "operatorId", facts.operator_id);
  put(shared, "vendorId", facts.vendor_id);
  put(shared, "vendorName", facts.vendor_name);
  put(shared, "deviceId", facts.device_id);
  put(shared, "caseId", facts.case_id);
  put(shared, "justification", facts.justification);
  put(shared, "accessRequestId", facts.request_id);
  put(shared, "grantId", facts.grant_id);
  put(shared, "scope", facts.scope);
  const bool is_provider = tenant != nullptr && tenant->id.value() == store::kProviderLogId;
  std::optional<store::SupportActivityRecord> activity;
  if (tenant != nullptr && !is_provider) {
    audit::EventSpec tenant_spec = spec;
    tenant_spec.debug_data = shared;
    const store::EventRecord event =
        audit::MakeEvent(tenant->id, context, tenant_spec, clock, random);
    RETURN_IF_ERROR(tx.Events().Append(event).status());
    auto debug = [&spec](const char* key) {
      auto it = spec.debug_data.find(key);
      return it != spec.debug_data.end() ? it->second : std::string();
    };
    // The gate makes the operator the actor of their own requests, and an unauthenticated
    // attempt's actor "unknown" (no operator in facts); anyone else who acts on an operator's
    // request (a tenant admin approving it) is not the operator.
    activity = store::SupportActivityRecord{
        .published = event.published,
        .tenant_id = tenant->id,
        .tenant_event_uuid = event.uuid,
        .event_type = spec.event_type,
        .outcome = spec.outcome,
        .reason = spec.reason,
        .actor_id = context.actor.id,
        .by_operator = !facts.operator_id.empty() && context.actor.id == facts.operator_id,
        .operator_id = facts.operator_id,
        .vendor_id = facts.vendor_id,
        .device_id = facts.device_id,
        .session_id = context.external_session_id,
        .ip = context.ip_address,
        .grant_id = facts.grant_id,
        .case_id = facts.case_id,
        // A view names what it read; a guarded action (allowed or refused, also at the tenant
        // check) the action it tried.
        .resource = !debug("resource").empty() ? debug("resource") : debug("action"),
        .fields = debug("fields")};
  }
  put(shared, "operatorLogin", facts.operator_login);
  put(shared, "employingEntity", facts.employing_entity);
  put(shared, "country", facts.country);
  if (tenant != nullptr) {
    put(shared, "tenantId", tenant->id.value());
    put(shared, "tenantName", tenant->name);
  }
  spec.debug_data = std::move(shared);
  const store::EventRecord provider_event =
      audit::MakeEvent(ProviderTenantId(), context, spec, clock, random);
  RETURN_IF_ERROR(tx.Events().Append(provider_event).status());
  if (!activity.has_value()) return absl::OkStatus();
  activity->provider_event_uuid = provider_event.uuid;
  return tx.Incidents().InsertActivity(*activity).status();
}

// ---- Views ----

Json VendorView(const store::VendorRecord& vendor) {
  return {{"id", vendor.id},
          {"name", vendor.name},
          {"employingEntity", vendor.employing_entity},
          {"country", vendor.country},
          {"status", vendor.status},
          {"created", FormatRfc3339(vendor.created)},
          {"statusChanged", FormatRfc3339(vendor.status_changed)}};
}

Json DeviceView(const store::DeviceRecord& device, const Compliance& compliance) {
  Json posture = nullptr;
  if (!device.posture_json.empty()) {
    posture = Json::parse(device.posture_json, nullptr, false);
    if (posture.is_discarded()) posture = nullptr;
  }
  return {{"id", device.id},
          {"vendorId", device.vendor_id},
          {"name", device.name},
          {"status", device.status},
          {"jkt", device.jkt},
          {"enrolled", FormatRfc3339(device.enrolled)},
          {"statusChanged", FormatRfc3339(device.status_changed)},
          {"posture", posture},
          {"postureReportedAt", TimeOrNull(device.posture_reported)},
          {"compliance", {{"compliant", compliance.compliant}, {"failures", compliance.failures}}}};
}

Json GrantView(const store::GrantRecord& grant) {
  return {{"id", grant.id},
          {"status", grant.status},
          {"tenantId", grant.tenant_id.value()},
          {"requestId", grant.request_id},
          {"operatorId", grant.operator_id.value()},
          {"vendorId", grant.vendor_id},
          {"deviceId", grant.device_id},
          {"caseId", grant.case_id},
          {"justification", grant.justification},
          {"scope", ScopeList(grant.scope)},
          {"created", FormatRfc3339(grant.created)},
          {"expiresAt", FormatRfc3339(grant.expires)},
          {"ended", TimeOrNull(grant.ended)},
          {"endReason", TextOrNull(grant.end_reason)},
          {"firstUsed", TimeOrNull(grant.first_used)}};
}

Json AccessRequestView(const AccessRequestInfo& info) {
  const store::AccessRequestRecord& r = info.request;
  return {{"id", r.id},
          {"status", r.status},
          {"tenantId", r.tenant_id.value()},
          {"caseId", r.case_id},
          {"justification", r.justification},
          {"scope", ScopeList(r.scope)},
          {"duration", absl::FormatDuration(r.duration)},
          {"created", FormatRfc3339(r.created)},
          {"expiresAt", FormatRfc3339(r.expires)},
          {"decidedBy", TextOrNull(r.decided_by)},
          {"decided", TimeOrNull(r.decided)},
          {"reason", TextOrNull(r.reason)},
          {"operator",
           {{"id", info.op.user_id.value()},
            {"login", info.operator_login},
            {"name", info.operator_name},
            {"status", info.op.status}}},
          {"vendor",
           {{"id", info.vendor.id},
            {"name", info.vendor.name},
            {"employingEntity", info.vendor.employing_entity},
            {"country", info.vendor.country},
            {"status", info.vendor.status}}},
          {"device",
           {{"id", info.device.id},
            {"name", info.device.name},
            {"status", info.device.status},
            {"compliant", info.device_compliance.compliant},
            {"failures", info.device_compliance.failures},
            {"postureReportedAt", TimeOrNull(info.device.posture_reported)}}},
          {"grant", info.grant ? GrantView(*info.grant) : Json(nullptr)}};
}

Json CaseView(const store::SupportCaseRecord& support_case) {
  return {{"id", support_case.id},
          {"tenantId", support_case.tenant_id.value()},
          {"subject", support_case.subject},
          {"openedBy", support_case.opened_by},
          {"openedById", support_case.opened_by_id},
          {"status", support_case.status},
          {"created", FormatRfc3339(support_case.created)},
          {"closed", TimeOrNull(support_case.closed)}};
}

Json ConfirmationView(const store::ConfirmationRecord& confirmation) {
  return {{"id", confirmation.id},
          {"tenantId", confirmation.tenant_id.value()},
          {"grantId", confirmation.grant_id},
          {"operatorId", confirmation.operator_id.value()},
          {"action", confirmation.action},
          {"target", confirmation.target},
          {"status", confirmation.status},
          {"created", FormatRfc3339(confirmation.created)},
          {"expiresAt", FormatRfc3339(confirmation.expires)},
          {"decidedBy", TextOrNull(confirmation.decided_by)},
          {"decided", TimeOrNull(confirmation.decided)}};
}

SupportPlane::SupportPlane(store::Store& store, const Config& config, const Clock& clock,
                           crypto::Random& random)
    : store_(store), config_(config), clock_(clock), random_(random) {}

// ---- Vendors and operators ----

absl::StatusOr<store::VendorRecord> SupportPlane::CreateVendor(const audit::RequestContext& ctx,
                                                               const NewVendor& vendor) {
  std::vector<std::string> causes;
  if (vendor.name.empty() || vendor.name.size() > kMaxNameBytes) {
    causes.push_back(fmt::format("name: 1 to {} bytes", kMaxNameBytes));
  }
  if (vendor.employing_entity.empty() || vendor.employing_entity.size() > kMaxNameBytes) {
    causes.push_back(fmt::format("employingEntity: 1 to {} bytes", kMaxNameBytes));
  }
  if (vendor.country.size() != 2 || !absl::ascii_isalpha(vendor.country[0]) ||
      !absl::ascii_isalpha(vendor.country[1])) {
    causes.push_back("country: two letters (ISO 3166-1 alpha-2)");
  }
  if (!causes.empty()) return ValidationError("Api validation failed: vendor", causes);

  const absl::Time now = clock_.Now();
  store::VendorRecord record{.id = random_.Id(store::kVendorIdPrefix),
                             .name = vendor.name,
                             .employing_entity = vendor.employing_entity,
                             .country = absl::AsciiStrToUpper(vendor.country),
                             .status = std::string(store::kStatusActive),
                             .created = now,
                             .status_changed = now};
  audit::EventSpec spec{.event_type = "support.vendor.create",
                        .display_message = "Create support vendor",
                        .targets = {VendorTarget(record)},
                        .debug_data = {{"vendorId", record.id},
                                       {"employingEntity", record.employing_entity},
                                       {"country", record.country}}};
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    absl::Status inserted = tx.Support().InsertVendor(record);
    if (absl::IsAlreadyExists(inserted)) {
      return refusal.Refuse(
          ApiError(absl::StatusCode::kAlreadyExists, kErrValidation, "Api validation failed: name",
                   {"name: A vendor with this name already exists"}),
          [&](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx, Failure(spec, "name_taken"));
          });
    }
    RETURN_IF_ERROR(inserted);
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return record;
}

absl::StatusOr<store::VendorRecord> SupportPlane::GetVendor(std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindVendor(tx, id); });
}

absl::StatusOr<std::vector<store::VendorRecord>> SupportPlane::ListVendors() {
  return store::ReadResult(store_, [&](Transaction& tx) { return tx.Support().ListVendors(); });
}

absl::StatusOr<KillSwitchResult> SupportPlane::SuspendVendor(const audit::RequestContext& ctx,
                                                             std::string_view vendor_id,
                                                             std::string_view reason) {
  KillSwitchResult result;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(store::VendorRecord vendor, FindVendor(tx, vendor_id));
    audit::EventSpec spec{.event_type = "support.vendor.suspend",
                          .display_message = "Suspend support vendor",
                          .severity = "WARN",
                          .targets = {VendorTarget(vendor)},
                          .debug_data = {{"vendorId", vendor.id}}};
    if (!reason.empty()) spec.debug_data["reason"] = std::string(reason);
    if (vendor.status != store::kStatusActive) {
      return refusal.Refuse(
          WrongStatus(fmt::format("Operation not allowed in the vendor's current status: {}",
                                  vendor.status),
                      "vendor_suspended"),
          [&, spec](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx,
                                       Failure(spec, "vendor already suspended"));
          });
    }
    const absl::Time now = clock_.Now();
    vendor.status = std::string(store::kStatusSuspended);
    vendor.status_changed = now;
    RETURN_IF_ERROR(tx.Support().UpdateVendor(vendor));

    ASSIGN_OR_RETURN(std::vector<store::OperatorRecord> operators,
                     tx.Support().ListOperators(vendor.id));
    for (const store::OperatorRecord& op : operators) {
      ASSIGN_OR_RETURN(int ended, tx.Sessions().DeleteAllForUser(ProviderTenantId(), op.user_id));
      result.sessions += ended;
    }
    ASSIGN_OR_RETURN(result.tokens, tx.Support().RevokeOperatorTokens(
                                        store::OperatorTokenFilter{.vendor_id = vendor.id}, now));

    ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                     tx.Support().ListActiveGrantsOfVendorAcrossTenants(vendor.id));
    for (store::GrantRecord& grant : grants) {
      // A grant past its expiry is no longer usable; the sweep ends it as expired.
      if (grant.expires <= now) continue;
      grant.status = std::string(store::kGrantRevoked);
      grant.ended = now;
      grant.end_reason = "vendor_suspended";
      RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
      ASSIGN_OR_RETURN(store::TenantRecord tenant, tx.Tenants().Get(grant.tenant_id));
      ASSIGN_OR_RETURN(SupportFacts facts, GrantFacts(tx, grant));
      audit::EventSpec revoke{.event_type = "user.session.impersonation.revoke",
                              .display_message = "Support access revoked: vendor suspended",
                              .severity = "WARN",
                              .reason = "vendor_suspended",
                              .targets = {TenantTarget(tenant), GrantTarget(grant)}};
      RETURN_IF_ERROR(
          AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(revoke)));
      ++result.grants;
    }

    ASSIGN_OR_RETURN(std::vector<store::DeviceRecord> devices, tx.Support().ListDevices(vendor.id));
    for (store::DeviceRecord& device : devices) {
      if (device.status == store::kDeviceRevoked) continue;
      device.status = std::string(store::kDeviceRevoked);
      device.status_changed = now;
      RETURN_IF_ERROR(tx.Support().UpdateDevice(device));
      ++result.devices;
    }
    spec.debug_data["sessionsEnded"] = std::to_string(result.sessions);
    spec.debug_data["tokensRevoked"] = std::to_string(result.tokens);
    spec.debug_data["grantsRevoked"] = std::to_string(result.grants);
    spec.debug_data["devicesRevoked"] = std::to_string(result.devices);
    result.vendor = vendor;
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return result;
}

absl::StatusOr<store::VendorRecord> SupportPlane::UnsuspendVendor(const audit::RequestContext& ctx,
                                                                  std::string_view vendor_id) {
  store::VendorRecord vendor;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(vendor, FindVendor(tx, vendor_id));
    audit::EventSpec spec{.event_type = "support.vendor.unsuspend",
                          .display_message = "Unsuspend support vendor",
                          .targets = {VendorTarget(vendor)},
                          .debug_data = {{"vendorId", vendor.id}}};
    if (vendor.status != store::kStatusSuspended) {
      return refusal.Refuse(
          WrongStatus(fmt::format("Operation not allowed in the vendor's current status: {}",
                                  vendor.status)),
          [&, spec](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx,
                                       Failure(spec, "vendor is not suspended"));
          });
    }
    vendor.status = std::string(store::kStatusActive);
    vendor.status_changed = clock_.Now();
    RETURN_IF_ERROR(tx.Support().UpdateVendor(vendor));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return vendor;
}

absl::StatusOr<store::OperatorRecord> SupportPlane::CreateOperator(const audit::RequestContext& ctx,
                                                                   const UserId& user_id,
                                                                   std::string_view vendor_id) {
  store::OperatorRecord op;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    absl::StatusOr<store::UserRecord> user = tx.Users().Get(ProviderTenantId(), user_id);
    if (absl::IsNotFound(user.status())) {
      return NotFoundError(fmt::format("{} (User)", user_id.value()));
    }
    RETURN_IF_ERROR(user.status());
    ASSIGN_OR_RETURN(store::VendorRecord vendor, FindVendor(tx, vendor_id));
    const absl::Time now = clock_.Now();
    op = {.user_id = user->id,
          .vendor_id = vendor.id,
          .status = std::string(store::kStatusActive),
          .created = now,
          .status_changed = now};
    audit::EventSpec spec{.event_type = "support.operator.create",
                          .display_message = "Create support operator",
                          .targets = {UserTarget(*user), VendorTarget(vendor)},
                          .debug_data = {{"operatorId", user->id.value()},
                                         {"vendorId", vendor.id},
                                         {"vendorName", vendor.name}}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [this, &ctx, spec, why](Transaction& t) {
        return AppendProviderEvent(t, clock_, random_, ctx, Failure(spec, why));
      });
    };
    if (vendor.status != store::kStatusActive) {
      return refuse(WithReason(ValidationError("Api validation failed: vendorId",
                                               {"vendorId: the vendor is suspended"}),
                               "vendor_suspended"),
                    "vendor_suspended");
    }
    absl::Status inserted = tx.Support().InsertOperator(op);
    if (absl::IsAlreadyExists(inserted)) {
      return refuse(ValidationError("Api validation failed: userId",
                                    {"userId: the user is already an operator"}),
                    "already_an_operator");
    }
    RETURN_IF_ERROR(inserted);
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return op;
}

absl::StatusOr<store::OperatorRecord> SupportPlane::GetOperator(const UserId& user_id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindOperator(tx, user_id); });
}

absl::StatusOr<std::vector<store::OperatorRecord>> SupportPlane::ListOperators(
    std::optional<std::string> vendor_id) {
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return tx.Support().ListOperators(vendor_id); });
}

absl::StatusOr<store::OperatorRecord> SupportPlane::SuspendOperator(
    const audit::RequestContext& ctx, const UserId& user_id, std::string_view reason) {
  store::OperatorRecord op;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(op, FindOperator(tx, user_id));
    ASSIGN_OR_RETURN(std::optional<store::UserRecord> user, OperatorUser(tx, op.user_id));
    audit::EventSpec spec{
        .event_type = "support.operator.suspend",
        .display_message = "Suspend support operator",
        .severity = "WARN",
        .targets = {user ? UserTarget(*user) : OperatorTarget(op.user_id, "")},
        .debug_data = {{"operatorId", op.user_id.value()}, {"vendorId", op.vendor_id}}};
    if (!reason.empty()) spec.debug_data["reason"] = std::string(reason);
    if (op.status != store::kStatusActive) {
      return refusal.Refuse(
          WrongStatus(
              fmt::format("Operation not allowed in the operator's current status: {}", op.status),
              "operator_suspended"),
          [&, spec](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx,
                                       Failure(spec, "operator already suspended"));
          });
    }
    const absl::Time now = clock_.Now();
    op.status = std::string(store::kStatusSuspended);
    op.status_changed = now;
    RETURN_IF_ERROR(tx.Support().UpdateOperator(op));
    ASSIGN_OR_RETURN(int sessions, tx.Sessions().DeleteAllForUser(ProviderTenantId(), op.user_id));
    ASSIGN_OR_RETURN(int tokens, tx.Support().RevokeOperatorTokens(
                                     store::OperatorTokenFilter{.operator_id = op.user_id}, now));
    spec.debug_data["sessionsEnded"] = std::to_string(sessions);
    spec.debug_data["tokensRevoked"] = std::to_string(tokens);
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return op;
}

absl::StatusOr<store::OperatorRecord> SupportPlane::UnsuspendOperator(
    const audit::RequestContext& ctx, const UserId& user_id) {
  store::OperatorRecord op;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(op, FindOperator(tx, user_id));
    ASSIGN_OR_RETURN(std::optional<store::UserRecord> user, OperatorUser(tx, op.user_id));
    audit::EventSpec spec{
        .event_type = "support.operator.unsuspend",
        .display_message = "Unsuspend support operator",
        .targets = {user ? UserTarget(*user) : OperatorTarget(op.user_id, "")},
        .debug_data = {{"operatorId", op.user_id.value()}, {"vendorId", op.vendor_id}}};
    if (op.status != store::kStatusSuspended) {
      return refusal.Refuse(
          WrongStatus(
              fmt::format("Operation not allowed in the operator's current status: {}", op.status)),
          [&, spec](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx,
                                       Failure(spec, "operator is not suspended"));
          });
    }
    op.status = std::string(store::kStatusActive);
    op.status_changed = clock_.Now();
    RETURN_IF_ERROR(tx.Support().UpdateOperator(op));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return op;
}

// ---- Devices ----

absl::StatusOr<IssuedEnrollmentToken> SupportPlane::CreateEnrollmentToken(
    const audit::RequestContext& ctx, std::string_view vendor_id, std::string_view device_name) {
  if (device_name.empty() || device_name.size() > kMaxNameBytes) {
    return ValidationError("Api validation failed: name",
                           {fmt::format("name: 1 to {} bytes", kMaxNameBytes)});
  }
  IssuedEnrollmentToken issued;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(store::VendorRecord vendor, FindVendor(tx, vendor_id));
    const absl::Time now = clock_.Now();
    issued.token = std::string(kEnrollmentTokenPrefix) + random_.Token(32);
    issued.record = {.id = random_.Id(store::kEnrollmentTokenIdPrefix),
                     .token_hash = crypto::Sha256Hex(issued.token),
                     .vendor_id = vendor.id,
                     .device_name = std::string(device_name),
                     .created = now,
                     .expires = now + config_.enrollment_token_lifetime};
    audit::EventSpec spec{
        .event_type = "support.device.enrollment_token.create",
        .display_message = "Create device enrolment token",
        .targets = {{issued.record.id, "SupportEnrollmentToken", issued.record.device_name, ""},
                    VendorTarget(vendor)},
        .debug_data = {{"vendorId", vendor.id},
                       {"deviceName", issued.record.device_name},
                       {"expiresAt", FormatRfc3339(issued.record.expires)}}};
    if (vendor.status != store::kStatusActive) {
      return refusal.Refuse(
          WrongStatus("Operation not allowed in the vendor's current status: SUSPENDED",
                      "vendor_suspended"),
          [&, spec](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx, Failure(spec, "vendor_suspended"));
          });
    }
    RETURN_IF_ERROR(tx.Support().InsertEnrollmentToken(issued.record));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return issued;
}

absl::StatusOr<store::DeviceRecord> SupportPlane::EnrollDevice(const audit::RequestContext& ctx,
                                                               std::string_view token,
                                                               const Json& jwk,
                                                               std::string_view proof_jkt) {
  store::DeviceRecord device;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    audit::EventSpec spec{.event_type = "support.device.enroll",
                          .display_message = "Enrol managed device"};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [this, &ctx, spec, why](Transaction& t) {
        return AppendProviderEvent(t, clock_, random_, ctx, Failure(spec, why));
      });
    };
    const absl::Time now = clock_.Now();
    // One answer for every unusable token, so a caller learns nothing about which tokens exist.
    const absl::Status invalid_token =
        ApiError(absl::StatusCode::kUnauthenticated, kErrInvalidToken, "Invalid token provided");
    absl::StatusOr<store::EnrollmentTokenRecord> record =
        tx.Support().FindEnrollmentTokenByHash(crypto::Sha256Hex(token));
    if (absl::IsNotFound(record.status())) return refuse(invalid_token, "token_unknown");
    RETURN_IF_ERROR(record.status());
    spec.debug_data["enrollmentTokenId"] = record->id;
    spec.debug_data["vendorId"] = record->vendor_id;
    if (record->used.has_value()) return refuse(invalid_token, "token_used");
    if (now >= record->expires) return refuse(invalid_token, "token_expired");
    ASSIGN_OR_RETURN(store::VendorRecord vendor, FindVendor(tx, record->vendor_id));
    spec.targets.push_back(VendorTarget(vendor));
    if (vendor.status != store::kStatusActive) {
      return refuse(WrongStatus("Operation not allowed in the vendor's current status: SUSPENDED",
                                "vendor_suspended"),
                    "vendor_suspended");
    }
    // The kill switch voids every enrolment token issued before it: a vendor reinstated later
    // starts over with new tokens.
    if (record->created < vendor.status_changed) return refuse(invalid_token, "token_void");
    absl::StatusOr<PublicJwk> key = ParsePublicJwk(jwk);
    if (!key.ok()) {
      return refuse(ValidationError("Api validation failed: jwk",
                                    {fmt::format("jwk: {}", std::string(key.status().message()))}),
                    "jwk_invalid");
    }
    const std::string jkt = Thumbprint(*key);
    spec.debug_data["jkt"] = jkt;
    if (jkt != proof_jkt) {
      return refuse(ValidationError("Api validation failed: jwk",
                                    {"jwk: the DPoP proof is not signed by this key"}),
                    "proof_key_mismatch");
    }
    const absl::Status key_taken = ValidationError(
        "Api validation failed: jwk", {"jwk: a device with this key is already enrolled"});
    absl::StatusOr<store::DeviceRecord> existing = tx.Support().GetDeviceByJkt(jkt);
    if (existing.ok()) return refuse(key_taken, "key_already_enrolled");
    if (!absl::IsNotFound(existing.status())) return existing.status();

    device = {.id = random_.Id(store::kDeviceIdPrefix),
              .vendor_id = vendor.id,
              .name = record->device_name,
              // Only the members the thumbprint covers: nothing else of what the caller sent.
              .public_jwk = ThumbprintInput(*key),
              .jkt = jkt,
              .status = std::string(store::kDeviceActive),
              .enrolled = now,
              .status_changed = now};
    absl::Status inserted = tx.Support().InsertDevice(device);
    if (absl::IsAlreadyExists(inserted)) return refuse(key_taken, "key_already_enrolled");
    RETURN_IF_ERROR(inserted);
    record->used = now;
    record->device_id = device.id;
    RETURN_IF_ERROR(tx.Support().UpdateEnrollmentToken(*record));
    spec.targets.insert(spec.targets.begin(), DeviceTarget(device));
    spec.debug_data["deviceId"] = device.id;
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return device;
}

absl::StatusOr<store::DeviceRecord> SupportPlane::ReportPosture(const audit::RequestContext& ctx,
                                                                std::string_view device_id,
                                                                std::string_view report_jws) {
  store::DeviceRecord device;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(device, FindDevice(tx, device_id));
    audit::EventSpec spec{.event_type = "support.device.posture",
                          .display_message = "Device reports its posture",
                          .targets = {DeviceTarget(device)},
                          .debug_data = {{"deviceId", device.id}, {"vendorId", device.vendor_id}}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [this, &ctx, spec, why](Transaction& t) {
        return AppendProviderEvent(t, clock_, random_, ctx, Failure(spec, why));
      });
    };
    if (device.status == store::kDeviceRevoked) {
      return refuse(WrongStatus("Operation not allowed in the device's current status: REVOKED",
                                "device_revoked"),
                    "device_revoked");
    }
    absl::StatusOr<Json> jwk = ParseJson(device.public_jwk);
    if (!jwk.ok()) return absl::InternalError("the device's stored key is not JSON");
    ASSIGN_OR_RETURN(PublicJwk key, ParsePublicJwk(*jwk));
    const absl::Time now = clock_.Now();
    absl::StatusOr<PostureReport> report =
        VerifyPostureReport(report_jws, key, device.id, now, config_.dpop_max_age);
    if (absl::IsUnauthenticated(report.status())) {
      return refuse(WithReason(ApiError(absl::StatusCode::kUnauthenticated, kErrAuthFailed,
                                        "Authentication failed: the posture report's signature "
                                        "does not verify with the device key"),
                               "posture_signature_invalid"),
                    "signature_invalid");
    }
    if (!report.ok()) {
      const std::string problem(report.status().message());
      return refuse(
          ValidationError("Api validation failed: report", {fmt::format("report: {}", problem)}),
          problem);
    }
    if (device.posture_reported.has_value() && report->iat <= *device.posture_reported) {
      return refuse(ValidationError("Api validation failed: report",
                                    {"report: not later than the last accepted report"}),
                    "report_not_newer");
    }
    device.posture_json = DumpJson(PostureToJson(report->posture));
    device.posture_reported = report->iat;
    RETURN_IF_ERROR(tx.Support().UpdateDevice(device));
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    const Compliance compliance = ComplianceOf(device, policy);
    spec.debug_data["compliant"] = BoolText(compliance.compliant);
    spec.debug_data["failures"] = absl::StrJoin(compliance.failures, ",");
    spec.debug_data["reportedAt"] = FormatRfc3339(report->iat);
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return device;
}

absl::StatusOr<store::DeviceRecord> SupportPlane::GetDevice(std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindDevice(tx, id); });
}

absl::StatusOr<std::vector<store::DeviceRecord>> SupportPlane::ListDevices(
    std::optional<std::string> vendor_id) {
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return tx.Support().ListDevices(vendor_id); });
}

absl::StatusOr<store::DeviceRecord> SupportPlane::SetDeviceStatus(const audit::RequestContext& ctx,
                                                                  std::string_view device_id,
                                                                  std::string_view action) {
  std::vector<std::string_view> allowed_from;
  std::string_view to;
  if (action == "lock") {
    allowed_from = {store::kDeviceActive};
    to = store::kDeviceLocked;
  } else if (action == "unlock") {
    allowed_from = {store::kDeviceLocked};
    to = store::kDeviceActive;
  } else if (action == "revoke") {
    allowed_from = {store::kDeviceActive, store::kDeviceLocked};
    to = store::kDeviceRevoked;
  } else {
    return ValidationError("Api validation failed: action",
                           {"action: one of lock, unlock, revoke"});
  }
  store::DeviceRecord device;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(device, FindDevice(tx, device_id));
    audit::EventSpec spec{
        .event_type = fmt::format("support.device.{}", action),
        .display_message = fmt::format("{} managed device", action == "lock"     ? "Lock"
                                                            : action == "unlock" ? "Unlock"
                                                                                 : "Revoke"),
        .severity = action == "unlock" ? "INFO" : "WARN",
        .targets = {DeviceTarget(device)},
        .debug_data = {{"deviceId", device.id}, {"vendorId", device.vendor_id}}};
    if (std::find(allowed_from.begin(), allowed_from.end(), device.status) == allowed_from.end()) {
      return refusal.Refuse(
          WrongStatus(fmt::format("Operation not allowed in the device's current status: {}",
                                  device.status)),
          [&, spec, status = device.status](Transaction& t) {
            return AppendProviderEvent(t, clock_, random_, ctx,
                                       Failure(spec, fmt::format("device is {}", status)));
          });
    }
    const absl::Time now = clock_.Now();
    device.status = std::string(to);
    device.status_changed = now;
    RETURN_IF_ERROR(tx.Support().UpdateDevice(device));
    if (to == store::kDeviceRevoked) {
      ASSIGN_OR_RETURN(int tokens, tx.Support().RevokeOperatorTokens(
                                       store::OperatorTokenFilter{.device_id = device.id}, now));
      spec.debug_data["tokensRevoked"] = std::to_string(tokens);
    }
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return device;
}

absl::StatusOr<DevicePolicy> SupportPlane::GetDevicePolicy() {
  return store::ReadResult(store_, [&](Transaction& tx) { return DevicePolicyIn(tx, config_); });
}

absl::StatusOr<DevicePolicy> SupportPlane::SetDevicePolicy(const audit::RequestContext& ctx,
                                                           const DevicePolicy& policy) {
  // The parser holds the policy's rules; a policy it would refuse is never stored.
  ASSIGN_OR_RETURN(DevicePolicy defaults, DefaultDevicePolicy(config_));
  const Json json = DevicePolicyToJson(policy);
  absl::StatusOr<DevicePolicy> checked = ParseDevicePolicy(json, defaults);
  if (!checked.ok()) {
    return ValidationError("Api validation failed: policy",
                           {std::string(checked.status().message())});
  }
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Support().PutSetting(kDevicePolicySetting, DumpJson(json)));
    audit::EventSpec spec{.event_type = "support.device.policy.update",
                          .display_message = "Update device policy",
                          .debug_data = {{"policy", DumpJson(json)}}};
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return *checked;
}

Compliance SupportPlane::ComplianceOf(const store::DeviceRecord& device,
                                      const DevicePolicy& policy) const {
  std::optional<Posture> posture;
  if (!device.posture_json.empty()) {
    Json json = Json::parse(device.posture_json, nullptr, false);
    // A stored posture that no longer parses counts as none: it cannot show compliance.
    if (!json.is_discarded()) {
      absl::StatusOr<Posture> parsed = ParsePosture(json);
      if (parsed.ok()) posture = *std::move(parsed);
    }
  }
  return Evaluate(posture, device.posture_reported, policy, clock_.Now());
}

// ---- Operator tokens ----

absl::StatusOr<IssuedOperatorToken> SupportPlane::IssueOperatorToken(
    const audit::RequestContext& ctx, std::string_view session_token, std::string_view proof_jkt) {
  IssuedOperatorToken issued;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    audit::RequestContext context = ctx;
    audit::EventSpec spec{.event_type = "support.token.issue",
                          .display_message = "Issue device-bound operator token"};
    auto refuse = [&](std::string_view reason, std::string message) {
      return refusal.Refuse(WithReason(ApiError(absl::StatusCode::kUnauthenticated,
                                                kErrInvalidToken, std::move(message)),
                                       reason),
                            [this, context, spec, why = std::string(reason)](Transaction& t) {
                              audit::EventSpec failed = Failure(spec, why);
                              failed.severity = "WARN";
                              return AppendProviderEvent(t, clock_, random_, context, failed);
                            });
    };
    const TenantId provider = ProviderTenantId();
    const absl::Time now = clock_.Now();
    const std::string session_hash = crypto::Sha256Hex(session_token);
    absl::StatusOr<store::SessionRecord> session = tx.Sessions().FindByHash(provider, session_hash);
    if (absl::IsNotFound(session.status())) {
      return refuse("session_invalid", "The session is not valid; sign in again");
    }
    RETURN_IF_ERROR(session.status());
    absl::StatusOr<store::UserRecord> user = tx.Users().Get(provider, session->user_id);
    if (absl::IsNotFound(user.status())) {
      return refuse("session_invalid", "The session is not valid; sign in again");
    }
    RETURN_IF_ERROR(user.status());
    // From here on the event names who asked.
    context.actor = UserTarget(*user);
    context.external_session_id = session->id.value();
    spec.targets = {UserTarget(*user)};
    spec.debug_data["operatorId"] = user->id.value();
    if (user->status != store::kUserActive || now >= session->expires ||
        now - session->last_active >= config_.session_idle_timeout) {
      return refuse("session_invalid", "The session is not valid; sign in again");
    }
    if (!HasSecondFactor(session->amr)) {
      return refuse("second_factor_required",
                    "Operators must sign in with a second factor (password and TOTP)");
    }
    absl::StatusOr<store::OperatorRecord> op = tx.Support().GetOperator(user->id);
    if (absl::IsNotFound(op.status())) {
      return refuse("not_an_operator", "The user is not a support operator");
    }
    RETURN_IF_ERROR(op.status());
    spec.debug_data["vendorId"] = op->vendor_id;
    if (op->status != store::kStatusActive) {
      return refuse("operator_suspended", "The operator is suspended");
    }
    ASSIGN_OR_RETURN(store::VendorRecord vendor, tx.Support().GetVendor(op->vendor_id));
    if (vendor.status != store::kStatusActive) {
      return refuse("vendor_suspended", "The operator's vendor is suspended");
    }
    absl::StatusOr<store::DeviceRecord> device = tx.Support().GetDeviceByJkt(proof_jkt);
    if (absl::IsNotFound(device.status())) {
      return refuse("device_unknown", "The DPoP proof is not signed by an enrolled device");
    }
    RETURN_IF_ERROR(device.status());
    spec.targets.push_back(DeviceTarget(*device));
    spec.debug_data["deviceId"] = device->id;
    if (device->status == store::kDeviceRevoked) {
      return refuse("device_revoked", "The device is revoked");
    }
    if (device->status == store::kDeviceLocked) {
      return refuse("device_locked", "The device is locked");
    }
    if (device->vendor_id != op->vendor_id) {
      return refuse("device_wrong_vendor", "The device belongs to another vendor");
    }
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    const Compliance compliance = ComplianceOf(*device, policy);
    if (!compliance.compliant) {
      spec.debug_data["failures"] = absl::StrJoin(compliance.failures, ",");
      return refuse("device_noncompliant",
                    fmt::format("The device does not comply with the device policy: {}",
                                absl::StrJoin(compliance.failures, ", ")));
    }

    issued.token = std::string(kOperatorTokenPrefix) + random_.Token(32);
    issued.record = {.id = random_.Id(store::kOperatorTokenIdPrefix),
                     .token_hash = crypto::Sha256Hex(issued.token),
                     .operator_id = op->user_id,
                     .vendor_id = vendor.id,
                     .device_id = device->id,
                     .jkt = device->jkt,
                     .session_id = session->id,
                     .session_token_hash = session_hash,
                     .created = now,
                     // The token ends with the session at the latest.
                     .expires = std::min(now + config_.operator_token_lifetime, session->expires)};
    RETURN_IF_ERROR(tx.Support().InsertOperatorToken(issued.record));
    // Exchanging the session for a token is activity on it.
    RETURN_IF_ERROR(tx.Sessions().Touch(provider, session->id, now));
    spec.targets.push_back({issued.record.id, "SupportOperatorToken", issued.record.id, ""});
    spec.debug_data["tokenId"] = issued.record.id;
    spec.debug_data["jkt"] = issued.record.jkt;
    spec.debug_data["expiresAt"] = FormatRfc3339(issued.record.expires);
    return AppendProviderEvent(tx, clock_, random_, context, spec);
  }));
  return issued;
}

// ---- Cases and policy ----

absl::StatusOr<store::SupportCaseRecord> SupportPlane::OpenCase(const audit::RequestContext& ctx,
                                                                const OperatorContext* op,
                                                                const store::TenantRecord& tenant,
                                                                std::string_view subject) {
  if (subject.empty() || subject.size() > kMaxSubjectBytes) {
    return ValidationError("Api validation failed: subject",
                           {fmt::format("subject: 1 to {} bytes", kMaxSubjectBytes)});
  }
  store::SupportCaseRecord support_case{
      .id = random_.Id(store::kCaseIdPrefix),
      .tenant_id = tenant.id,
      .subject = std::string(subject),
      .opened_by = std::string(op != nullptr ? store::kOpenedByProvider : store::kOpenedByTenant),
      .opened_by_id = op != nullptr ? op->op.user_id.value() : ctx.actor.id,
      .status = std::string(store::kCaseOpen),
      .created = clock_.Now()};
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    SupportFacts facts = op != nullptr ? FactsOf(*op) : SupportFacts{};
    audit::EventSpec spec{.event_type = "support.case.open",
                          .display_message = "Open support case",
                          .targets = {TenantTarget(tenant)},
                          .debug_data = {{"openedBy", support_case.opened_by}}};
    // A tenant that blocks support is not reached at all: the provider cannot open cases there
    // either (the tenant itself still can).
    ASSIGN_OR_RETURN(store::TenantRecord current, tx.Tenants().Get(tenant.id));
    if (op != nullptr && current.support_policy == store::kSupportPolicyBlocked) {
      return refusal.Refuse(WithReason(ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
                                                "The tenant does not allow support access"),
                                       "policy_blocked"),
                            [this, &ctx, current, facts, spec](Transaction& t) {
                              return AppendTransparencyEvents(
                                  t, clock_, random_, &current, ctx, facts,
                                  Failure(spec, "policy_blocked", audit::kDeny));
                            });
    }
    RETURN_IF_ERROR(tx.Support().InsertCase(support_case));
    facts.case_id = support_case.id;
    spec.targets.push_back(CaseTarget(support_case));
    return AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec));
  }));
  return support_case;
}

absl::StatusOr<std::vector<store::SupportCaseRecord>> SupportPlane::ListCases(
    const TenantId& tenant) {
  return store::ReadResult(store_, [&](Transaction& tx) { return tx.Support().ListCases(tenant); });
}

absl::StatusOr<store::SupportCaseRecord> SupportPlane::CloseCase(const audit::RequestContext& ctx,
                                                                 const store::TenantRecord& tenant,
                                                                 std::string_view case_id) {
  store::SupportCaseRecord support_case;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(support_case, FindCase(tx, tenant.id, case_id));
    SupportFacts facts;
    facts.case_id = support_case.id;
    audit::EventSpec spec{.event_type = "support.case.close",
                          .display_message = "Close support case",
                          .targets = {TenantTarget(tenant), CaseTarget(support_case)}};
    if (support_case.status != store::kCaseOpen) {
      return refusal.Refuse(WrongStatus("The support case is already closed", "case_closed"),
                            [&, facts, spec](Transaction& t) {
                              return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx,
                                                              facts, Failure(spec, "case_closed"));
                            });
    }
    const absl::Time now = clock_.Now();
    support_case.status = std::string(store::kCaseClosed);
    support_case.closed = now;
    RETURN_IF_ERROR(tx.Support().UpdateCase(support_case));
    ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                     tx.Support().ListActiveGrantsOfCase(tenant.id, support_case.id));
    for (store::GrantRecord& grant : grants) {
      grant.status = std::string(store::kGrantEnded);
      grant.ended = now;
      grant.end_reason = "case_closed";
      RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
      ASSIGN_OR_RETURN(SupportFacts grant_facts, GrantFacts(tx, grant));
      audit::EventSpec end{.event_type = "user.session.impersonation.end",
                           .display_message = "Support access ends: case closed",
                           .reason = "case_closed",
                           .targets = {TenantTarget(tenant), GrantTarget(grant)}};
      RETURN_IF_ERROR(
          AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, grant_facts, std::move(end)));
    }
    spec.debug_data["grantsEnded"] = std::to_string(grants.size());
    return AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec));
  }));
  return support_case;
}

absl::StatusOr<store::TenantRecord> SupportPlane::SetPolicy(const audit::RequestContext& ctx,
                                                            const store::TenantRecord& tenant,
                                                            std::string_view policy) {
  if (policy != store::kSupportPolicyBlocked && policy != store::kSupportPolicyApprovalRequired &&
      policy != store::kSupportPolicyAutoApproveRead) {
    return ValidationError(
        "Api validation failed: policy",
        {fmt::format("policy: one of {}, {}, {}", store::kSupportPolicyBlocked,
                     store::kSupportPolicyApprovalRequired, store::kSupportPolicyAutoApproveRead)});
  }
  store::TenantRecord updated;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(updated, tx.Tenants().Get(tenant.id));
    const std::string previous = updated.support_policy;
    updated.support_policy = std::string(policy);
    RETURN_IF_ERROR(tx.Tenants().Update(updated));
    int grants_revoked = 0;
    int requests_denied = 0;
    if (policy == store::kSupportPolicyBlocked) {
      const absl::Time now = clock_.Now();
      ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                       tx.Support().ListGrants(tenant.id, std::string(store::kGrantActive)));
      for (store::GrantRecord& grant : grants) {
        grant.status = std::string(store::kGrantRevoked);
        grant.ended = now;
        grant.end_reason = "policy_blocked";
        RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
        ASSIGN_OR_RETURN(SupportFacts facts, GrantFacts(tx, grant));
        audit::EventSpec revoke{.event_type = "user.session.impersonation.revoke",
                                .display_message = "Support access revoked: support blocked",
                                .reason = "policy_blocked",
                                .targets = {TenantTarget(updated), GrantTarget(grant)}};
        RETURN_IF_ERROR(
            AppendTransparencyEvents(tx, clock_, random_, &updated, ctx, facts, std::move(revoke)));
        ++grants_revoked;
      }
      ASSIGN_OR_RETURN(
          std::vector<store::AccessRequestRecord> pending,
          tx.Support().ListAccessRequests(tenant.id, std::string(store::kRequestPending)));
      for (store::AccessRequestRecord& request : pending) {
        request.status = std::string(store::kRequestDenied);
        request.decided_by = std::string(kDecidedByPolicy);
        request.decided = now;
        request.reason = "policy_blocked";
        RETURN_IF_ERROR(tx.Support().UpdateAccessRequest(request));
        ASSIGN_OR_RETURN(SupportFacts facts, RequestFacts(tx, request));
        audit::EventSpec deny{.event_type = "support.access.deny",
                              .display_message = "Support access request denied: support blocked",
                              .reason = "policy_blocked",
                              .targets = {TenantTarget(updated), RequestTarget(request)}};
        RETURN_IF_ERROR(
            AppendTransparencyEvents(tx, clock_, random_, &updated, ctx, facts, std::move(deny)));
        ++requests_denied;
      }
    }
    audit::EventSpec spec{.event_type = "support.policy.update",
                          .display_message = "Update support access policy",
                          .targets = {TenantTarget(updated)},
                          .debug_data = {{"policy", updated.support_policy},
                                         {"previousPolicy", previous},
                                         {"grantsRevoked", std::to_string(grants_revoked)},
                                         {"requestsDenied", std::to_string(requests_denied)}}};
    return AppendTransparencyEvents(tx, clock_, random_, &updated, ctx, SupportFacts{},
                                    std::move(spec));
  }));
  return updated;
}

// ---- Access requests and grants ----

absl::StatusOr<AccessRequestInfo> SupportPlane::RequestAccess(const OperatorContext& op,
                                                              const NewAccessRequest& request) {
  std::vector<std::string> causes;
  if (!IsJustification(request.justification)) {
    causes.push_back(fmt::format("justification: one of {}, {}, {}",
                                 kJustificationCustomerInitiated, kJustificationProviderReview,
                                 kJustificationIncidentResponse));
  }
  if (request.scope.empty()) causes.push_back("scope: at least one entry");
  for (size_t i = 0; i < request.scope.size(); ++i) {
    const std::string& entry = request.scope[i];
    if (!IsScopeEntry(entry)) {
      causes.push_back(fmt::format("scope: unknown entry '{}'", entry.substr(0, 40)));
    } else if (std::find(request.scope.begin(), request.scope.begin() + i, entry) !=
               request.scope.begin() + i) {
      causes.push_back(fmt::format("scope: '{}' repeated", entry));
    }
  }
  const absl::Duration duration = request.duration.value_or(config_.grant_default_duration);
  if (duration <= absl::ZeroDuration() || duration > config_.grant_max_duration) {
    causes.push_back(fmt::format("duration: more than 0s and at most {}",
                                 absl::FormatDuration(config_.grant_max_duration)));
  }
  if (!causes.empty()) return ValidationError("Api validation failed: access request", causes);

  AccessRequestInfo info;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    absl::StatusOr<store::TenantRecord> tenant = tx.Tenants().GetByName(request.tenant_name);
    if (absl::IsNotFound(tenant.status())) {
      return NotFoundError(fmt::format("{} (Tenant)", request.tenant_name));
    }
    RETURN_IF_ERROR(tenant.status());
    ASSIGN_OR_RETURN(store::SupportCaseRecord support_case,
                     FindCase(tx, tenant->id, request.case_id));
    const absl::Time now = clock_.Now();
    store::AccessRequestRecord record{.id = random_.Id(store::kAccessRequestIdPrefix),
                                      .tenant_id = tenant->id,
                                      .operator_id = op.op.user_id,
                                      .vendor_id = op.vendor.id,
                                      .device_id = op.device.id,
                                      .case_id = support_case.id,
                                      .justification = request.justification,
                                      .scope = absl::StrJoin(request.scope, " "),
                                      .duration = duration,
                                      .status = std::string(store::kRequestPending),
                                      .created = now,
                                      .expires = now + config_.access_request_lifetime};
    SupportFacts facts = FactsOf(op);
    facts.case_id = record.case_id;
    facts.justification = record.justification;
    facts.scope = record.scope;
    audit::EventSpec spec{.event_type = "support.access.request",
                          .display_message = "Support operator requests access to the tenant",
                          .targets = {TenantTarget(*tenant), CaseTarget(support_case)},
                          .debug_data = {{"duration", absl::FormatDuration(duration)}}};
    auto refuse = [&](absl::Status error, std::string_view why, std::string_view outcome) {
      return refusal.Refuse(WithReason(std::move(error), why),
                            [this, &op, tenant = *tenant, facts, spec, why = std::string(why),
                             outcome = std::string(outcome)](Transaction& t) {
                              return AppendTransparencyEvents(t, clock_, random_, &tenant,
                                                              op.request, facts,
                                                              Failure(spec, why, outcome));
                            });
    };
    if (tenant->support_policy == store::kSupportPolicyBlocked) {
      return refuse(ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
                             "The tenant does not allow support access"),
                    "policy_blocked", audit::kDeny);
    }
    if (support_case.status != store::kCaseOpen) {
      return refuse(WrongStatus("The support case is closed"), "case_closed", audit::kFailure);
    }
    facts.request_id = record.id;
    spec.targets.push_back(RequestTarget(record));
    const bool auto_approve = tenant->support_policy == store::kSupportPolicyAutoApproveRead &&
                              record.scope == kScopeRead &&
                              support_case.opened_by == store::kOpenedByTenant;
    std::optional<store::GrantRecord> grant;
    if (auto_approve) {
      grant = store::GrantRecord{.id = random_.Id(store::kGrantIdPrefix),
                                 .tenant_id = tenant->id,
                                 .request_id = record.id,
                                 .operator_id = record.operator_id,
                                 .vendor_id = record.vendor_id,
                                 .device_id = record.device_id,
                                 .case_id = record.case_id,
                                 .justification = record.justification,
                                 .scope = record.scope,
                                 .created = now,
                                 .expires = now + duration,
                                 .status = std::string(store::kGrantActive)};
      record.status = std::string(store::kRequestApproved);
      record.decided_by = std::string(kDecidedByPolicy);
      record.decided = now;
      record.reason = std::string(store::kSupportPolicyAutoApproveRead);
      record.grant_id = grant->id;
    }
    RETURN_IF_ERROR(tx.Support().InsertAccessRequest(record));
    spec.debug_data["status"] = record.status;
    RETURN_IF_ERROR(AppendTransparencyEvents(tx, clock_, random_, &*tenant, op.request, facts,
                                             std::move(spec)));
    if (grant) {
      RETURN_IF_ERROR(tx.Support().InsertGrant(*grant));
      facts.grant_id = grant->id;
      audit::EventSpec granted{.event_type = "user.session.impersonation.grant",
                               .display_message = "Support access granted by the tenant's policy",
                               .targets = {TenantTarget(*tenant), GrantTarget(*grant)},
                               .debug_data = {{"decidedBy", record.decided_by},
                                              {"expiresAt", FormatRfc3339(grant->expires)},
                                              {"duration", absl::FormatDuration(duration)}}};
      RETURN_IF_ERROR(AppendTransparencyEvents(tx, clock_, random_, &*tenant, op.request, facts,
                                               std::move(granted)));
    }
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    info.request = record;
    info.op = op.op;
    info.operator_login = op.login;
    info.operator_name = op.display_name;
    info.vendor = op.vendor;
    info.device = op.device;
    info.device_compliance = ComplianceOf(op.device, policy);
    info.grant = grant;
    return absl::OkStatus();
  }));
  return info;
}

absl::StatusOr<AccessRequestInfo> SupportPlane::GetAccessRequest(const TenantId& tenant,
                                                                 std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) -> absl::StatusOr<AccessRequestInfo> {
    ASSIGN_OR_RETURN(store::AccessRequestRecord request, FindRequest(tx, tenant, id));
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    return InfoOf(tx, *this, policy, std::move(request));
  });
}

absl::StatusOr<std::vector<AccessRequestInfo>> SupportPlane::ListAccessRequests(
    const TenantId& tenant, std::optional<std::string> status) {
  return store::ReadResult(
      store_, [&](Transaction& tx) -> absl::StatusOr<std::vector<AccessRequestInfo>> {
        ASSIGN_OR_RETURN(std::vector<store::AccessRequestRecord> requests,
                         tx.Support().ListAccessRequests(tenant, status));
        ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
        std::vector<AccessRequestInfo> out;
        for (store::AccessRequestRecord& request : requests) {
          ASSIGN_OR_RETURN(AccessRequestInfo info, InfoOf(tx, *this, policy, std::move(request)));
          out.push_back(std::move(info));
        }
        return out;
      });
}

absl::StatusOr<std::vector<AccessRequestInfo>> SupportPlane::ListAccessRequestsOfOperator(
    const UserId& operator_id) {
  return store::ReadResult(
      store_, [&](Transaction& tx) -> absl::StatusOr<std::vector<AccessRequestInfo>> {
        ASSIGN_OR_RETURN(std::vector<store::AccessRequestRecord> requests,
                         tx.Support().ListAccessRequestsOfOperatorAcrossTenants(operator_id));
        ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
        std::vector<AccessRequestInfo> out;
        for (store::AccessRequestRecord& request : requests) {
          ASSIGN_OR_RETURN(AccessRequestInfo info, InfoOf(tx, *this, policy, std::move(request)));
          out.push_back(std::move(info));
        }
        return out;
      });
}

absl::StatusOr<AccessRequestInfo> SupportPlane::Approve(const audit::RequestContext& ctx,
                                                        const store::TenantRecord& tenant,
                                                        std::string_view request_id,
                                                        std::optional<absl::Duration> duration,
                                                        std::string_view reason) {
  AccessRequestInfo info;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(store::AccessRequestRecord request, FindRequest(tx, tenant.id, request_id));
    ASSIGN_OR_RETURN(SupportFacts facts, RequestFacts(tx, request));
    audit::EventSpec refused_spec{.event_type = "support.access.approve",
                                  .display_message = "Approve support access request",
                                  .targets = {TenantTarget(tenant), RequestTarget(request)}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [&, facts, refused_spec, why](Transaction& t) {
        return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx, facts,
                                        Failure(refused_spec, why));
      });
    };
    const absl::Time now = clock_.Now();
    if (request.status == store::kRequestExpired ||
        (request.status == store::kRequestPending && now >= request.expires)) {
      return refuse(WrongStatus("The access request has expired", "request_expired"),
                    "request_expired");
    }
    if (request.status != store::kRequestPending) {
      return refuse(WrongStatus(fmt::format("The access request is already {}", request.status),
                                "request_not_pending"),
                    "request_not_pending");
    }
    ASSIGN_OR_RETURN(store::SupportCaseRecord support_case,
                     FindCase(tx, tenant.id, request.case_id));
    if (support_case.status != store::kCaseOpen) {
      return refuse(WrongStatus("The support case is closed", "case_closed"), "case_closed");
    }
    const absl::Duration granted = duration.value_or(request.duration);
    if (granted <= absl::ZeroDuration() || granted > request.duration) {
      return refuse(
          WithReason(ValidationError("Api validation failed: duration",
                                     {fmt::format("duration: more than 0s and at most "
                                                  "the {} asked for",
                                                  absl::FormatDuration(request.duration))}),
                     "duration_too_long"),
          "duration_too_long");
    }
    ASSIGN_OR_RETURN(store::OperatorRecord op, tx.Support().GetOperator(request.operator_id));
    if (op.status != store::kStatusActive) {
      return refuse(WrongStatus("The operator is suspended", "operator_suspended"),
                    "operator_suspended");
    }
    ASSIGN_OR_RETURN(store::VendorRecord vendor, tx.Support().GetVendor(request.vendor_id));
    if (vendor.status != store::kStatusActive) {
      return refuse(WrongStatus("The operator's vendor is suspended", "vendor_suspended"),
                    "vendor_suspended");
    }
    store::GrantRecord grant{.id = random_.Id(store::kGrantIdPrefix),
                             .tenant_id = tenant.id,
                             .request_id = request.id,
                             .operator_id = request.operator_id,
                             .vendor_id = request.vendor_id,
                             .device_id = request.device_id,
                             .case_id = request.case_id,
                             .justification = request.justification,
                             .scope = request.scope,
                             .created = now,
                             .expires = now + granted,
                             .status = std::string(store::kGrantActive)};
    RETURN_IF_ERROR(tx.Support().InsertGrant(grant));
    request.status = std::string(store::kRequestApproved);
    request.decided_by = ctx.actor.id;
    request.decided = now;
    request.reason = std::string(reason);
    request.grant_id = grant.id;
    RETURN_IF_ERROR(tx.Support().UpdateAccessRequest(request));
    facts.grant_id = grant.id;
    audit::EventSpec spec{.event_type = "user.session.impersonation.grant",
                          .display_message = "Support access granted by a tenant admin",
                          .targets = {TenantTarget(tenant), GrantTarget(grant)},
                          .debug_data = {{"decidedBy", request.decided_by},
                                         {"expiresAt", FormatRfc3339(grant.expires)},
                                         {"duration", absl::FormatDuration(granted)}}};
    if (!reason.empty()) spec.debug_data["decisionReason"] = std::string(reason);
    RETURN_IF_ERROR(
        AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec)));
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    ASSIGN_OR_RETURN(info, InfoOf(tx, *this, policy, std::move(request)));
    return absl::OkStatus();
  }));
  return info;
}

absl::StatusOr<AccessRequestInfo> SupportPlane::Deny(const audit::RequestContext& ctx,
                                                     const store::TenantRecord& tenant,
                                                     std::string_view request_id,
                                                     std::string_view reason) {
  AccessRequestInfo info;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(store::AccessRequestRecord request, FindRequest(tx, tenant.id, request_id));
    ASSIGN_OR_RETURN(SupportFacts facts, RequestFacts(tx, request));
    audit::EventSpec spec{.event_type = "support.access.deny",
                          .display_message = "Support access request denied by a tenant admin",
                          .targets = {TenantTarget(tenant), RequestTarget(request)}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [&, facts, spec, why](Transaction& t) {
        return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx, facts,
                                        Failure(spec, why));
      });
    };
    const absl::Time now = clock_.Now();
    if (request.status == store::kRequestExpired ||
        (request.status == store::kRequestPending && now >= request.expires)) {
      return refuse(WrongStatus("The access request has expired", "request_expired"),
                    "request_expired");
    }
    if (request.status != store::kRequestPending) {
      return refuse(WrongStatus(fmt::format("The access request is already {}", request.status),
                                "request_not_pending"),
                    "request_not_pending");
    }
    request.status = std::string(store::kRequestDenied);
    request.decided_by = ctx.actor.id;
    request.decided = now;
    request.reason = std::string(reason);
    RETURN_IF_ERROR(tx.Support().UpdateAccessRequest(request));
    spec.debug_data["decidedBy"] = request.decided_by;
    if (!reason.empty()) spec.debug_data["decisionReason"] = std::string(reason);
    RETURN_IF_ERROR(
        AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec)));
    ASSIGN_OR_RETURN(DevicePolicy policy, DevicePolicyIn(tx, config_));
    ASSIGN_OR_RETURN(info, InfoOf(tx, *this, policy, std::move(request)));
    return absl::OkStatus();
  }));
  return info;
}

absl::StatusOr<std::vector<store::GrantRecord>> SupportPlane::ListGrants(
    const TenantId& tenant, std::optional<std::string> status) {
  return store::ReadResult(
      store_, [&](Transaction& tx) { return tx.Support().ListGrants(tenant, status); });
}

absl::StatusOr<std::vector<store::GrantRecord>> SupportPlane::ListGrantsOfOperator(
    const UserId& operator_id) {
  return store::ReadResult(store_, [&](Transaction& tx) {
    return tx.Support().ListGrantsOfOperatorAcrossTenants(operator_id);
  });
}

absl::StatusOr<store::GrantRecord> SupportPlane::ExtendGrant(const audit::RequestContext& ctx,
                                                             const store::TenantRecord& tenant,
                                                             std::string_view grant_id,
                                                             absl::Duration by) {
  if (by <= absl::ZeroDuration()) {
    return ValidationError("Api validation failed: duration", {"duration: must be positive"});
  }
  store::GrantRecord grant;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(grant, FindGrant(tx, tenant.id, grant_id));
    ASSIGN_OR_RETURN(SupportFacts facts, GrantFacts(tx, grant));
    audit::EventSpec spec{.event_type = "user.session.impersonation.extend",
                          .display_message = "Support access extended by a tenant admin",
                          .targets = {TenantTarget(tenant), GrantTarget(grant)},
                          .debug_data = {{"previousExpiresAt", FormatRfc3339(grant.expires)}}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [&, facts, spec, why](Transaction& t) {
        return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx, facts,
                                        Failure(spec, why));
      });
    };
    const absl::Time now = clock_.Now();
    if (grant.status != store::kGrantActive) {
      return refuse(WrongStatus(fmt::format("The grant is {}", grant.status), "grant_not_active"),
                    "grant_not_active");
    }
    if (now >= grant.expires) {
      return refuse(WrongStatus("The grant has expired", "grant_expired"), "grant_expired");
    }
    grant.expires = std::min(std::max(grant.expires, now) + by, now + config_.grant_max_duration);
    RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
    spec.debug_data["expiresAt"] = FormatRfc3339(grant.expires);
    spec.debug_data["extendedBy"] = absl::FormatDuration(by);
    return AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec));
  }));
  return grant;
}

absl::StatusOr<store::GrantRecord> SupportPlane::RevokeGrant(const audit::RequestContext& ctx,
                                                             const store::TenantRecord& tenant,
                                                             std::string_view grant_id,
                                                             std::string_view reason) {
  store::GrantRecord grant;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    ASSIGN_OR_RETURN(grant, FindGrant(tx, tenant.id, grant_id));
    ASSIGN_OR_RETURN(SupportFacts facts, GrantFacts(tx, grant));
    audit::EventSpec spec{.event_type = "user.session.impersonation.revoke",
                          .display_message = "Support access revoked by a tenant admin",
                          .severity = "WARN",
                          .targets = {TenantTarget(tenant), GrantTarget(grant)}};
    if (!reason.empty()) spec.debug_data["decisionReason"] = std::string(reason);
    if (grant.status != store::kGrantActive) {
      return refusal.Refuse(
          WrongStatus(fmt::format("The grant is {}", grant.status), "grant_not_active"),
          [&, facts, spec](Transaction& t) {
            return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx, facts,
                                            Failure(spec, "grant_not_active"));
          });
    }
    grant.status = std::string(store::kGrantRevoked);
    grant.ended = clock_.Now();
    grant.end_reason = reason.empty() ? "revoked_by_tenant" : std::string(reason);
    RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
    spec.reason = "revoked_by_tenant";
    return AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec));
  }));
  return grant;
}

// ---- Confirmations ----

absl::StatusOr<std::vector<store::ConfirmationRecord>> SupportPlane::ListConfirmations(
    const TenantId& tenant, std::optional<std::string> status) {
  return store::ReadResult(
      store_, [&](Transaction& tx) { return tx.Support().ListConfirmations(tenant, status); });
}

absl::StatusOr<store::ConfirmationRecord> SupportPlane::DecideConfirmation(
    const audit::RequestContext& ctx, const store::TenantRecord& tenant,
    std::string_view confirmation_id, bool confirm) {
  store::ConfirmationRecord confirmation;
  RETURN_IF_ERROR(WriteDecision(store_, [&](Transaction& tx, Refusal& refusal) -> absl::Status {
    absl::StatusOr<store::ConfirmationRecord> found =
        tx.Support().GetConfirmation(tenant.id, confirmation_id);
    if (absl::IsNotFound(found.status())) {
      return NotFoundError(fmt::format("{} (SupportConfirmation)", confirmation_id));
    }
    RETURN_IF_ERROR(found.status());
    confirmation = *std::move(found);
    SupportFacts facts;
    absl::StatusOr<store::GrantRecord> grant =
        tx.Support().GetGrant(tenant.id, confirmation.grant_id);
    if (grant.ok()) {
      ASSIGN_OR_RETURN(facts, GrantFacts(tx, *grant));
    } else if (absl::IsNotFound(grant.status())) {
      facts.operator_id = confirmation.operator_id.value();
      facts.grant_id = confirmation.grant_id;
    } else {
      return grant.status();
    }
    audit::EventSpec spec{
        .event_type = confirm ? "support.confirmation.confirm" : "support.confirmation.deny",
        .display_message = confirm ? "Tenant admin confirms a guarded support action"
                                   : "Tenant admin denies a guarded support action",
        .targets = {TenantTarget(tenant), ConfirmationTarget(confirmation)},
        .debug_data = {{"action", confirmation.action},
                       {"actionTarget", confirmation.target},
                       {"confirmationId", confirmation.id}}};
    auto refuse = [&](absl::Status error, std::string why) {
      return refusal.Refuse(std::move(error), [&, facts, spec, why](Transaction& t) {
        return AppendTransparencyEvents(t, clock_, random_, &tenant, ctx, facts,
                                        Failure(spec, why));
      });
    };
    const absl::Time now = clock_.Now();
    if (confirmation.status != store::kConfirmationPending) {
      return refuse(WrongStatus(fmt::format("The confirmation is already {}", confirmation.status),
                                "confirmation_not_pending"),
                    "confirmation_not_pending");
    }
    if (now >= confirmation.expires) {
      return refuse(WrongStatus("The confirmation has expired", "confirmation_expired"),
                    "confirmation_expired");
    }
    confirmation.status =
        std::string(confirm ? store::kConfirmationConfirmed : store::kConfirmationDenied);
    confirmation.decided_by = ctx.actor.id;
    confirmation.decided = now;
    RETURN_IF_ERROR(tx.Support().UpdateConfirmation(confirmation));
    spec.debug_data["decidedBy"] = confirmation.decided_by;
    return AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec));
  }));
  return confirmation;
}

// ---- Housekeeping ----

absl::StatusOr<int> SupportPlane::SweepExpired() {
  ASSIGN_OR_RETURN(std::vector<store::TenantRecord> tenants,
                   store::ReadResult(store_, [](Transaction& tx) { return tx.Tenants().List(); }));
  const audit::RequestContext ctx = SystemContext();
  int changed = 0;
  // A transaction per tenant keeps each one short; a tenant swept later is swept next time.
  for (const store::TenantRecord& tenant : tenants) {
    int tenant_changed = 0;
    RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
      tenant_changed = 0;
      const absl::Time now = clock_.Now();
      ASSIGN_OR_RETURN(
          std::vector<store::AccessRequestRecord> pending,
          tx.Support().ListAccessRequests(tenant.id, std::string(store::kRequestPending)));
      for (store::AccessRequestRecord& request : pending) {
        if (now < request.expires) continue;
        request.status = std::string(store::kRequestExpired);
        RETURN_IF_ERROR(tx.Support().UpdateAccessRequest(request));
        ASSIGN_OR_RETURN(SupportFacts facts, RequestFacts(tx, request));
        audit::EventSpec spec{.event_type = "support.access.request.expire",
                              .display_message = "Support access request expired undecided",
                              .reason = "expired",
                              .targets = {TenantTarget(tenant), RequestTarget(request)},
                              .debug_data = {{"expiresAt", FormatRfc3339(request.expires)}}};
        RETURN_IF_ERROR(
            AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec)));
        ++tenant_changed;
      }
      ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                       tx.Support().ListGrants(tenant.id, std::string(store::kGrantActive)));
      for (store::GrantRecord& grant : grants) {
        if (now < grant.expires) continue;
        grant.status = std::string(store::kGrantEnded);
        // It stopped being valid at its expiry, not when the sweep noticed.
        grant.ended = grant.expires;
        grant.end_reason = "expired";
        RETURN_IF_ERROR(tx.Support().UpdateGrant(grant));
        ASSIGN_OR_RETURN(SupportFacts facts, GrantFacts(tx, grant));
        audit::EventSpec spec{.event_type = "user.session.impersonation.end",
                              .display_message = "Support access ends: grant expired",
                              .reason = "expired",
                              .targets = {TenantTarget(tenant), GrantTarget(grant)},
                              .debug_data = {{"expiresAt", FormatRfc3339(grant.expires)}}};
        RETURN_IF_ERROR(
            AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec)));
        ++tenant_changed;
      }
      // Lapsed confirmations leave the admins' pending list; a new attempt asks again.
      ASSIGN_OR_RETURN(
          std::vector<store::ConfirmationRecord> confirmations,
          tx.Support().ListConfirmations(tenant.id, std::string(store::kConfirmationPending)));
      for (store::ConfirmationRecord& confirmation : confirmations) {
        if (now < confirmation.expires) continue;
        confirmation.status = std::string(store::kConfirmationExpired);
        RETURN_IF_ERROR(tx.Support().UpdateConfirmation(confirmation));
        SupportFacts facts;
        facts.operator_id = confirmation.operator_id.value();
        facts.grant_id = confirmation.grant_id;
        audit::EventSpec spec{.event_type = "support.confirmation.expire",
                              .display_message = "Guarded-action confirmation lapsed undecided",
                              .reason = "expired",
                              .targets = {TenantTarget(tenant)},
                              .debug_data = {{"action", confirmation.action},
                                             {"actionTarget", confirmation.target},
                                             {"confirmationId", confirmation.id}}};
        RETURN_IF_ERROR(
            AppendTransparencyEvents(tx, clock_, random_, &tenant, ctx, facts, std::move(spec)));
        ++tenant_changed;
      }
      return absl::OkStatus();
    }));
    changed += tenant_changed;
  }
  return changed;
}

}  // namespace custos::support
