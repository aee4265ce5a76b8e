#include "api/support/support_routes.h"

#include <optional>
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "api/support/alerts.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "support/redaction.h"

namespace custos::api::support {
namespace {

namespace sp = custos::support;

constexpr std::string_view kTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange";
constexpr std::string_view kSessionTokenType = "urn:custos:params:oauth:token-type:session";
constexpr std::string_view kAccessTokenType = "urn:ietf:params:oauth:token-type:access_token";

// ---- Request bodies ----

// Refuses members other than `allowed`.
absl::Status OnlyFields(const Json& body, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) {
      return ValidationError("Api validation failed: body",
                             {fmt::format("{}: unknown property", key)});
    }
  }
  return absl::OkStatus();
}

// A string member; nullopt when absent or null unless `required`.
absl::StatusOr<std::optional<std::string>> StringField(const Json& body, std::string_view name,
                                                       bool required, size_t max_bytes = 1024) {
  auto it = body.find(std::string(name));
  if (it == body.end() || it->is_null()) {
    if (required) {
      return ValidationError(fmt::format("Api validation failed: {}", name),
                             {fmt::format("{}: is required", name)});
    }
    return std::optional<std::string>();
  }
  if (!it->is_string()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: must be a string", name)});
  }
  std::string value = it->get<std::string>();
  if (value.size() > max_bytes) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: longer than {} bytes", name, max_bytes)});
  }
  return std::optional<std::string>(std::move(value));
}

// A duration member such as "4h" or "90m"; nullopt when absent.
absl::StatusOr<std::optional<absl::Duration>> DurationField(const Json& body,
                                                            std::string_view name) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, StringField(body, name, false, 64));
  if (!text.has_value()) return std::optional<absl::Duration>();
  absl::Duration d;
  if (!absl::ParseDuration(*text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: must be a positive duration such as \"4h\" or "
                                        "\"90m\"",
                                        name)});
  }
  return std::optional<absl::Duration>(d);
}

absl::StatusOr<std::optional<std::string>> StatusQuery(const Request& request,
                                                       std::initializer_list<std::string_view> ok) {
  if (!request.HasQuery("status")) return std::optional<std::string>();
  std::string status = request.Query("status");
  for (std::string_view s : ok) {
    if (status == s) return std::optional<std::string>(status);
  }
  return ValidationError("Api validation failed: status",
                         {fmt::format("status: unknown value '{}'", status)});
}

Json Array(const auto& items, auto view) {
  Json out = Json::array();
  for (const auto& item : items) out.push_back(view(item));
  return out;
}

// ---- Callers ----

// An error of an operator request; 401s say how to authenticate (RFC 9449 7.1).
Response OperatorError(const absl::Status& status, const Request& request) {
  Response r = ErrorResponse(status, request);
  if (r.status == 401) {
    std::erase_if(r.headers, [](const auto& h) { return h.first == "WWW-Authenticate"; });
    const std::string reason = ReasonOf(status);
    const bool proof_problem = reason.starts_with("dpop_") && reason != "dpop_scheme_required";
    r.AddHeader("WWW-Authenticate",
                fmt::format("DPoP error=\"{}\", algs=\"ES256 EdDSA\"",
                            proof_problem ? "invalid_dpop_proof" : "invalid_token"));
  }
  return r;
}

sp::GateRequest GateRequestOf(const Request& request) {
  return sp::GateRequest{.method = request.method,
                         .url = request.base_url + request.path,
                         .authorization = request.Header("authorization"),
                         .dpop = request.Header("dpop"),
                         .tenant_name = request.Param("tenant"),
                         .context = ContextFor(request)};
}

// An operator request: authenticated by the gate first.
Handler Operator(sp::AccessGate& gate,
                 std::function<absl::StatusOr<Response>(Request&, const sp::OperatorContext&)> fn) {
  return [&gate, fn = std::move(fn)](Request& request) -> Response {
    absl::StatusOr<Response> result = [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(sp::OperatorContext op, gate.Authenticate(GateRequestOf(request)));
      return fn(request, op);
    }();
    if (!result.ok()) return OperatorError(result.status(), request);
    return *result;
  };
}

Response OAuthError(int status, std::string_view error, std::string_view description,
                    std::string_view reason = "") {
  Json body = {{"error", error}, {"error_description", description}};
  if (!reason.empty()) body["reason"] = reason;
  Response r = Response::MakeJson(status, body);
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

Json DeviceJson(sp::SupportPlane& plane, const store::DeviceRecord& device,
                const sp::DevicePolicy& policy) {
  return sp::DeviceView(device, plane.ComplianceOf(device, policy));
}

Json OperatorJson(const store::OperatorRecord& o) {
  return {{"id", o.user_id.value()},
          {"vendorId", o.vendor_id},
          {"status", o.status},
          {"created", FormatRfc3339(o.created)},
          {"statusChanged", FormatRfc3339(o.status_changed)}};
}

// A user by id only: support may not probe logins (e-mail addresses) through the directory's
// id-or-login lookup.
absl::StatusOr<store::UserRecord> UserById(directory::Directory& directory, const TenantId& tenant,
                                           const std::string& id) {
  absl::StatusOr<store::UserRecord> user = directory.GetUser(tenant, id);
  if (user.ok() && user->id.value() != id) return NotFoundError(fmt::format("{} (User)", id));
  return user;
}

// The read that follows an allowed reach into a tenant; a failure is recorded as a failed view,
// so that every decision of the gate leaves its event.
template <typename T>
absl::StatusOr<T> ReadFor(sp::AccessGate& gate, const sp::OperatorContext& op,
                          const sp::TenantAccess& access, std::string_view resource,
                          absl::StatusOr<T> result) {
  if (!result.ok()) RETURN_IF_ERROR(gate.RecordFailedView(op, access, resource, result.status()));
  return result;
}

// ---- Redacted views ----

struct RedactedList {
  Json items = Json::array();
  std::vector<std::string> shown;  // union, in first-seen order
};

void AddRedacted(RedactedList& list, const Json& object, std::span<const sp::FieldRule> rules) {
  sp::RedactedView view = sp::Redact(object, rules);
  for (std::string& field : view.shown) {
    if (std::find(list.shown.begin(), list.shown.end(), field) == list.shown.end()) {
      list.shown.push_back(std::move(field));
    }
  }
  list.items.push_back(std::move(view.view));
}

}  // namespace

std::vector<Route> SupportRoutes(Services& services, directory::Directory& directory,
                                 sp::SupportPlane& plane, sp::AccessGate& gate,
                                 sp::DpopVerifier& dpop) {
  Services& s = services;
  std::vector<Route> routes;
  auto add = [&](std::string method, std::string pattern, Handler handler) {
    routes.push_back({std::move(method), std::move(pattern), std::move(handler)});
  };
  const Clock& clock = services.clock;

  // ---- Provider admins: vendors ----
  const std::string p = "/provider/api/v1";
  add("POST", p + "/vendors",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        RETURN_IF_ERROR(OnlyFields(body, {"name", "employingEntity", "country"}));
        ASSIGN_OR_RETURN(std::optional<std::string> name, StringField(body, "name", true));
        ASSIGN_OR_RETURN(std::optional<std::string> entity,
                         StringField(body, "employingEntity", true));
        ASSIGN_OR_RETURN(std::optional<std::string> country, StringField(body, "country", true));
        ASSIGN_OR_RETURN(store::VendorRecord vendor,
                         plane.CreateVendor(ctx, sp::NewVendor{.name = *name,
                                                               .employing_entity = *entity,
                                                               .country = *country}));
        return Response::MakeJson(201, sp::VendorView(vendor));
      }));
  add("GET", p + "/vendors",
      ProviderAdmin(s, [&](Request&, audit::RequestContext&) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(std::vector<store::VendorRecord> vendors, plane.ListVendors());
        return Response::MakeJson(200, Array(vendors, sp::VendorView));
      }));
  add("GET", p + "/vendors/{vendorId}",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(store::VendorRecord vendor, plane.GetVendor(r.Param("vendorId")));
        return Response::MakeJson(200, sp::VendorView(vendor));
      }));
  add("POST", p + "/vendors/{vendorId}/lifecycle/suspend",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        std::string reason;
        if (!r.body.empty()) {
          ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
          RETURN_IF_ERROR(OnlyFields(body, {"reason"}));
          ASSIGN_OR_RETURN(std::optional<std::string> given, StringField(body, "reason", false));
          reason = given.value_or("");
        }
        ASSIGN_OR_RETURN(sp::KillSwitchResult result,
                         plane.SuspendVendor(ctx, r.Param("vendorId"), reason));
        Json body = sp::VendorView(result.vendor);
        body["revoked"] = {{"sessions", result.sessions},
                           {"tokens", result.tokens},
                           {"grants", result.grants},
                           {"devices", result.devices}};
        return Response::MakeJson(200, body);
      }));
  add("POST", p + "/vendors/{vendorId}/lifecycle/unsuspend",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(store::VendorRecord vendor,
                         plane.UnsuspendVendor(ctx, r.Param("vendorId")));
        return Response::MakeJson(200, sp::VendorView(vendor));
      }));

  // ---- Provider admins: operators ----
  add("POST", p + "/operators",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        RETURN_IF_ERROR(OnlyFields(body, {"userId", "vendorId"}));
        ASSIGN_OR_RETURN(std::optional<std::string> user, StringField(body, "userId", true));
        ASSIGN_OR_RETURN(std::optional<std::string> vendor, StringField(body, "vendorId", true));
        ASSIGN_OR_RETURN(store::OperatorRecord op,
                         plane.CreateOperator(ctx, UserId(*user), *vendor));
        return Response::MakeJson(201, OperatorJson(op));
      }));
  add("GET", p + "/operators",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        std::optional<std::string> vendor;
        if (r.HasQuery("vendorId")) vendor = r.Query("vendorId");
        ASSIGN_OR_RETURN(std::vector<store::OperatorRecord> ops, plane.ListOperators(vendor));
        return Response::MakeJson(200, Array(ops, OperatorJson));
      }));
  add("GET", p + "/operators/{userId}",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(store::OperatorRecord op, plane.GetOperator(UserId(r.Param("userId"))));
        return Response::MakeJson(200, OperatorJson(op));
      }));
  for (std::string_view action : {"suspend", "unsuspend"}) {
    add("POST", fmt::format("{}/operators/{{userId}}/lifecycle/{}", p, action),
        ProviderAdmin(
            s, [&, action](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
              const UserId id(r.Param("userId"));
              ASSIGN_OR_RETURN(store::OperatorRecord op,
                               action == "suspend"
                                   ? plane.SuspendOperator(ctx, id, "provider admin")
                                   : plane.UnsuspendOperator(ctx, id));
              return Response::MakeJson(200, OperatorJson(op));
            }));
  }

  // ---- Provider admins: anomaly alerts ----
  add("GET", p + "/alerts",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        return ListAlerts(s, r);
      }));

  // ---- Provider admins: devices ----
  add("POST", p + "/devices/enrollment_tokens",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        RETURN_IF_ERROR(OnlyFields(body, {"vendorId", "name"}));
        ASSIGN_OR_RETURN(std::optional<std::string> vendor, StringField(body, "vendorId", true));
        ASSIGN_OR_RETURN(std::optional<std::string> name, StringField(body, "name", true, 200));
        ASSIGN_OR_RETURN(sp::IssuedEnrollmentToken issued,
                         plane.CreateEnrollmentToken(ctx, *vendor, *name));
        return Response::MakeJson(201, {{"id", issued.record.id},
                                        {"token", issued.token},
                                        {"vendorId", issued.record.vendor_id},
                                        {"name", issued.record.device_name},
                                        {"expiresAt", FormatRfc3339(issued.record.expires)}});
      }));
  add("GET", p + "/devices",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        std::optional<std::string> vendor;
        if (r.HasQuery("vendorId")) vendor = r.Query("vendorId");
        ASSIGN_OR_RETURN(std::vector<store::DeviceRecord> devices, plane.ListDevices(vendor));
        ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
        Json out = Json::array();
        for (const store::DeviceRecord& d : devices) out.push_back(DeviceJson(plane, d, policy));
        return Response::MakeJson(200, out);
      }));
  add("GET", p + "/devices/policy",
      ProviderAdmin(s, [&](Request&, audit::RequestContext&) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
        return Response::MakeJson(200, sp::DevicePolicyToJson(policy));
      }));
  add("PUT", p + "/devices/policy",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        ASSIGN_OR_RETURN(sp::DevicePolicy current, plane.GetDevicePolicy());
        absl::StatusOr<sp::DevicePolicy> policy = sp::ParseDevicePolicy(body, current);
        if (!policy.ok()) {
          return ValidationError("Api validation failed: device policy",
                                 {std::string(policy.status().message())});
        }
        ASSIGN_OR_RETURN(sp::DevicePolicy stored, plane.SetDevicePolicy(ctx, *policy));
        return Response::MakeJson(200, sp::DevicePolicyToJson(stored));
      }));
  add("GET", p + "/devices/{deviceId}",
      ProviderAdmin(s, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(store::DeviceRecord device, plane.GetDevice(r.Param("deviceId")));
        ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
        return Response::MakeJson(200, DeviceJson(plane, device, policy));
      }));
  for (std::string_view action : {"lock", "unlock", "revoke"}) {
    add("POST", fmt::format("{}/devices/{{deviceId}}/lifecycle/{}", p, action),
        ProviderAdmin(
            s, [&, action](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
              ASSIGN_OR_RETURN(store::DeviceRecord device,
                               plane.SetDeviceStatus(ctx, r.Param("deviceId"), action));
              ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
              return Response::MakeJson(200, DeviceJson(plane, device, policy));
            }));
  }

  // ---- Devices themselves ----
  add("POST", p + "/devices/enroll", [&](Request& r) -> Response {
    return Respond(r, [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
      RETURN_IF_ERROR(OnlyFields(body, {"token", "jwk"}));
      ASSIGN_OR_RETURN(std::optional<std::string> token, StringField(body, "token", true, 256));
      if (!body.contains("jwk") || !body["jwk"].is_object()) {
        return ValidationError("Api validation failed: jwk", {"jwk: must be a JSON Web Key"});
      }
      // Possession of the key: the request carries a DPoP proof signed by it.
      absl::StatusOr<sp::DpopResult> proof = dpop.Verify(
          r.Header("dpop"), sp::DpopCheck{.method = r.method, .url = r.base_url + r.path});
      if (!proof.ok()) {
        std::optional<sp::DpopError> error = sp::DpopErrorOf(proof.status());
        if (!error.has_value()) return proof.status();
        return WithReason(
            ValidationError("A DPoP proof signed by the device key is required",
                            {fmt::format("DPoP: {}", std::string(proof.status().message()))}),
            sp::DpopErrorCode(*error));
      }
      ASSIGN_OR_RETURN(store::DeviceRecord device,
                       plane.EnrollDevice(ContextFor(r), *token, body["jwk"], proof->jkt));
      ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
      return Response::MakeJson(201, DeviceJson(plane, device, policy));
    }());
  });
  add("POST", p + "/devices/{deviceId}/posture", [&](Request& r) -> Response {
    return Respond(r, [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
      RETURN_IF_ERROR(OnlyFields(body, {"report"}));
      ASSIGN_OR_RETURN(std::optional<std::string> report, StringField(body, "report", true, 8192));
      ASSIGN_OR_RETURN(store::DeviceRecord device,
                       plane.ReportPosture(ContextFor(r), r.Param("deviceId"), *report));
      ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
      return Response::MakeJson(200, DeviceJson(plane, device, policy));
    }());
  });

  // ---- Operator token: session + device proof -> DPoP-bound access token ----
  add("POST", "/provider/oauth2/v1/token", [&](Request& r) -> Response {
    const std::string content_type = absl::AsciiStrToLower(r.Header("content-type"));
    if (!content_type.starts_with("application/x-www-form-urlencoded")) {
      return OAuthError(400, "invalid_request",
                        "Content-Type must be application/x-www-form-urlencoded");
    }
    absl::StatusOr<std::map<std::string, std::string>> form = ParseFormBody(r.body);
    if (!form.ok()) return OAuthError(400, "invalid_request", std::string(form.status().message()));
    auto param = [&](const char* name) {
      auto it = form->find(name);
      return it == form->end() ? std::string() : it->second;
    };
    if (param("grant_type").empty())
      return OAuthError(400, "invalid_request", "grant_type missing");
    if (param("grant_type") != kTokenExchange) {
      return OAuthError(400, "unsupported_grant_type",
                        "Only token exchange of a provider session is supported here");
    }
    if (param("subject_token").empty() || param("subject_token_type") != kSessionTokenType) {
      return OAuthError(
          400, "invalid_request",
          fmt::format("subject_token and subject_token_type={} are required", kSessionTokenType));
    }
    absl::StatusOr<sp::DpopResult> proof = dpop.Verify(
        r.Header("dpop"), sp::DpopCheck{.method = r.method, .url = r.base_url + r.path});
    if (!proof.ok()) {
      std::optional<sp::DpopError> error = sp::DpopErrorOf(proof.status());
      if (!error.has_value()) return ErrorResponse(proof.status(), r);
      return OAuthError(400, "invalid_dpop_proof", std::string(proof.status().message()),
                        sp::DpopErrorCode(*error));
    }
    absl::StatusOr<sp::IssuedOperatorToken> issued =
        plane.IssueOperatorToken(ContextFor(r), param("subject_token"), proof->jkt);
    if (!issued.ok()) {
      if (absl::IsUnauthenticated(issued.status()) || absl::IsPermissionDenied(issued.status())) {
        return OAuthError(400, "invalid_grant", std::string(issued.status().message()),
                          ReasonOf(issued.status()));
      }
      return ErrorResponse(issued.status(), r);
    }
    Response ok = Response::MakeJson(
        200, {{"access_token", issued->token},
              {"token_type", "DPoP"},
              {"expires_in", absl::ToInt64Seconds(issued->record.expires - clock.Now())},
              {"issued_token_type", kAccessTokenType}});
    ok.AddHeader("Cache-Control", "no-store");
    return ok;
  });

  // ---- Operators ----
  const std::string o = p + "/support";
  add("GET", o + "/me",
      Operator(gate, [&](Request&, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        RETURN_IF_ERROR(gate.RecordAllow(op, "support.me"));
        ASSIGN_OR_RETURN(sp::DevicePolicy policy, plane.GetDevicePolicy());
        return Response::MakeJson(200, {{"operator",
                                         {{"id", op.op.user_id.value()},
                                          {"login", op.login},
                                          {"name", op.display_name},
                                          {"status", op.op.status}}},
                                        {"vendor", sp::VendorView(op.vendor)},
                                        {"device", DeviceJson(plane, op.device, policy)},
                                        {"tokenExpiresAt", FormatRfc3339(op.token.expires)}});
      }));
  add("POST", o + "/cases",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        RETURN_IF_ERROR(OnlyFields(body, {"tenant", "subject"}));
        ASSIGN_OR_RETURN(std::optional<std::string> tenant_name, StringField(body, "tenant", true));
        ASSIGN_OR_RETURN(std::optional<std::string> subject,
                         StringField(body, "subject", true, 1000));
        absl::StatusOr<store::TenantRecord> tenant = store::ReadResult(
            s.store, [&](store::Transaction& tx) { return tx.Tenants().GetByName(*tenant_name); });
        if (absl::IsNotFound(tenant.status()) ||
            (tenant.ok() && tenant->id.value() == store::kProviderLogId)) {
          return NotFoundError("tenant");
        }
        RETURN_IF_ERROR(tenant.status());
        ASSIGN_OR_RETURN(store::SupportCaseRecord c,
                         plane.OpenCase(op.request, &op, *tenant, *subject));
        return Response::MakeJson(201, sp::CaseView(c));
      }));
  add("POST", o + "/access_requests",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
        RETURN_IF_ERROR(
            OnlyFields(body, {"tenant", "caseId", "justification", "scope", "duration"}));
        sp::NewAccessRequest ask;
        ASSIGN_OR_RETURN(std::optional<std::string> tenant, StringField(body, "tenant", true));
        ASSIGN_OR_RETURN(std::optional<std::string> case_id, StringField(body, "caseId", true));
        ASSIGN_OR_RETURN(std::optional<std::string> justification,
                         StringField(body, "justification", true));
        ask.tenant_name = *tenant;
        ask.case_id = *case_id;
        ask.justification = *justification;
        if (!body.contains("scope") || !body["scope"].is_array()) {
          return ValidationError("Api validation failed: scope",
                                 {"scope: must be an array such as [\"read\"]"});
        }
        for (const Json& item : body["scope"]) {
          if (!item.is_string()) {
            return ValidationError("Api validation failed: scope",
                                   {"scope: every entry must be a string"});
          }
          ask.scope.push_back(item.get<std::string>());
        }
        ASSIGN_OR_RETURN(ask.duration, DurationField(body, "duration"));
        ASSIGN_OR_RETURN(sp::AccessRequestInfo info, plane.RequestAccess(op, ask));
        return Response::MakeJson(201, sp::AccessRequestView(info));
      }));
  add("GET", o + "/access_requests",
      Operator(gate, [&](Request&, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        RETURN_IF_ERROR(gate.RecordAllow(op, "support.access_requests.list"));
        ASSIGN_OR_RETURN(std::vector<sp::AccessRequestInfo> infos,
                         plane.ListAccessRequestsOfOperator(op.op.user_id));
        return Response::MakeJson(200, Array(infos, sp::AccessRequestView));
      }));
  add("GET", o + "/grants",
      Operator(gate, [&](Request&, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        RETURN_IF_ERROR(gate.RecordAllow(op, "support.grants.list"));
        ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                         plane.ListGrantsOfOperator(op.op.user_id));
        return Response::MakeJson(200, Array(grants, sp::GrantView));
      }));

  // Redacted views into a tenant.
  const std::string t = o + "/tenants/{tenant}";
  add("GET", t + "/users",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(int limit, ParseLimit(r, 200, 200));
        ASSIGN_OR_RETURN(sp::TenantAccess access,
                         gate.AuthorizeTenant(op, r.Param("tenant"), sp::kScopeRead));
        ASSIGN_OR_RETURN(directory::ListResult<store::UserRecord> users,
                         ReadFor(gate, op, access, "users",
                                 directory.ListUsers(access.tenant.id,
                                                     directory::ListQuery{.after = r.Query("after"),
                                                                          .limit = limit})));
        RedactedList list;
        for (const store::UserRecord& u : users.items) {
          AddRedacted(list, directory::UserView(u), sp::kUserFields);
        }
        RETURN_IF_ERROR(gate.RecordView(op, access, "users", list.shown));
        Response response = Response::MakeJson(200, list.items);
        AddPagingLinks(response, r, users.next_after);
        return response;
      }));
  add("GET", t + "/users/{userId}",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(sp::TenantAccess access,
                         gate.AuthorizeTenant(op, r.Param("tenant"), sp::kScopeRead));
        ASSIGN_OR_RETURN(store::UserRecord user,
                         ReadFor(gate, op, access, "users/" + r.Param("userId"),
                                 UserById(directory, access.tenant.id, r.Param("userId"))));
        sp::RedactedView view = sp::Redact(directory::UserView(user), sp::kUserFields);
        RETURN_IF_ERROR(gate.RecordView(op, access, "users/" + user.id.value(), view.shown));
        return Response::MakeJson(200, view.view);
      }));
  add("GET", t + "/users/{userId}/factors",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(sp::TenantAccess access,
                         gate.AuthorizeTenant(op, r.Param("tenant"), sp::kScopeRead));
        ASSIGN_OR_RETURN(store::UserRecord user,
                         ReadFor(gate, op, access, "users/" + r.Param("userId") + "/factors",
                                 UserById(directory, access.tenant.id, r.Param("userId"))));
        ASSIGN_OR_RETURN(std::vector<store::FactorRecord> factors,
                         ReadFor(gate, op, access, "users/" + user.id.value() + "/factors",
                                 directory.ListFactors(access.tenant.id, user.id.value())));
        RedactedList list;
        for (const store::FactorRecord& f : factors) {
          AddRedacted(list, directory::FactorView(f, user.login), sp::kFactorFields);
        }
        RETURN_IF_ERROR(
            gate.RecordView(op, access, "users/" + user.id.value() + "/factors", list.shown));
        return Response::MakeJson(200, list.items);
      }));
  add("GET", t + "/groups",
      Operator(gate, [&](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(int limit, ParseLimit(r, 200, 200));
        ASSIGN_OR_RETURN(sp::TenantAccess access,
                         gate.AuthorizeTenant(op, r.Param("tenant"), sp::kScopeRead));
        ASSIGN_OR_RETURN(
            directory::ListResult<store::GroupRecord> groups,
            ReadFor(gate, op, access, "groups",
                    directory.ListGroups(
                        access.tenant.id,
                        directory::ListQuery{.after = r.Query("after"), .limit = limit})));
        RedactedList list;
        for (const store::GroupRecord& g : groups.items) {
          AddRedacted(list, directory::GroupView(g), sp::kGroupFields);
        }
        RETURN_IF_ERROR(gate.RecordView(op, access, "groups", list.shown));
        Response response = Response::MakeJson(200, list.items);
        AddPagingLinks(response, r, groups.next_after);
        return response;
      }));

  // Guarded actions: a grant naming the action and a tenant admin's confirmation.
  auto guarded = [&](std::string_view action, Request& r, const sp::OperatorContext& op,
                     std::string target,
                     std::function<absl::StatusOr<Json>(const sp::TenantAccess&)> run,
                     std::function<absl::Status(const sp::TenantAccess&)> check_target =
                         nullptr) -> absl::StatusOr<Response> {
    sp::ConfirmationRequired pending;
    absl::StatusOr<sp::GuardedPermit> permit =
        gate.BeginGuardedAction(op, r.Param("tenant"), action, target, &pending, check_target);
    if (!permit.ok()) {
      if (!pending.confirmation_id.empty()) {
        Response refused = ErrorResponse(permit.status(), r);
        Json body = Json::parse(refused.body);
        body["confirmationId"] = pending.confirmation_id;
        refused.body = body.dump();
        return refused;
      }
      return permit.status();
    }
    absl::StatusOr<Json> done = run(permit->access);
    RETURN_IF_ERROR(gate.FinishGuardedAction(op, *permit, done.status()));
    RETURN_IF_ERROR(done.status());
    return Response::MakeJson(200, *done);
  };
  // Only an existing user of the tenant may be the target: no confirmation is asked for a typo.
  auto user_exists = [&](Request& r) {
    return [&directory, id = r.Param("userId")](const sp::TenantAccess& access) {
      return UserById(directory, access.tenant.id, id).status();
    };
  };
  add("POST", t + "/users/{userId}/lifecycle/reset_password",
      Operator(
          gate,
          [&, guarded, user_exists](Request& r,
                                    const sp::OperatorContext& op) -> absl::StatusOr<Response> {
            return guarded(
                sp::kActionPasswordReset, r, op, r.Param("userId"),
                [&](const sp::TenantAccess& access) -> absl::StatusOr<Json> {
                  // The reset token goes to the user, never to support.
                  ASSIGN_OR_RETURN(
                      directory::IssuedToken issued,
                      directory.ResetPassword(access.tenant.id, op.request, r.Param("userId")));
                  return Json{{"userId", issued.user.id.value()}, {"status", issued.user.status}};
                },
                user_exists(r));
          }));
  add("POST", t + "/users/{userId}/lifecycle/reset_factors",
      Operator(gate,
               [&, guarded, user_exists](
                   Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
                 return guarded(
                     sp::kActionMfaReset, r, op, r.Param("userId"),
                     [&](const sp::TenantAccess& access) -> absl::StatusOr<Json> {
                       RETURN_IF_ERROR(
                           directory.ResetFactors(access.tenant.id, op.request, r.Param("userId")));
                       return Json{{"userId", r.Param("userId")}, {"factorsReset", true}};
                     },
                     user_exists(r));
               }));
  add("PUT", t + "/log/settings",
      Operator(gate,
               [&, guarded](Request& r, const sp::OperatorContext& op) -> absl::StatusOr<Response> {
                 ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                 RETURN_IF_ERROR(OnlyFields(body, {"public"}));
                 if (!body.contains("public") || !body["public"].is_boolean()) {
                   return ValidationError("Api validation failed: public",
                                          {"public: must be true or false"});
                 }
                 const bool make_public = body["public"].get<bool>();
                 return guarded(
                     // The confirmation binds the value, not just the setting.
                     sp::kActionConfigChange, r, op,
                     make_public ? "log.public=true" : "log.public=false",
                     [&](const sp::TenantAccess& access) -> absl::StatusOr<Json> {
                       RETURN_IF_ERROR(s.store.Write([&](store::Transaction& tx) -> absl::Status {
                         ASSIGN_OR_RETURN(store::TenantRecord current,
                                          tx.Tenants().Get(access.tenant.id));
                         const bool was_public = current.log_public;
                         current.log_public = make_public;
                         RETURN_IF_ERROR(tx.Tenants().Update(current));
                         audit::EventSpec spec{
                             .event_type = "log.settings.update",
                             .display_message = "Update verifiable log settings",
                             .targets = {{access.tenant.id.value(), "Tenant", access.tenant.name,
                                          access.tenant.name}},
                             .debug_data = {{"public", make_public ? "true" : "false"},
                                            {"previousPublic", was_public ? "true" : "false"}}};
                         return tx.Events()
                             .Append(audit::MakeEvent(access.tenant.id, op.request, spec, s.clock,
                                                      s.random))
                             .status();
                       }));
                       return Json{{"public", make_public}};
                     });
               }));

  // ---- Tenant admins ----
  const std::string a = "/t/{tenant}/api/v1/support";
  add("GET", a + "/policy",
      TenantAdmin(s,
                  [](Request&, const store::TenantRecord& tenant,
                     audit::RequestContext&) -> absl::StatusOr<Response> {
                    return Response::MakeJson(200, {{"policy", tenant.support_policy}});
                  }));
  add("PUT", a + "/policy",
      TenantAdmin(
          s,
          [&](Request& r, const store::TenantRecord& tenant,
              audit::RequestContext& ctx) -> absl::StatusOr<Response> {
            ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
            RETURN_IF_ERROR(OnlyFields(body, {"policy"}));
            ASSIGN_OR_RETURN(std::optional<std::string> policy, StringField(body, "policy", true));
            ASSIGN_OR_RETURN(store::TenantRecord updated, plane.SetPolicy(ctx, tenant, *policy));
            return Response::MakeJson(200, {{"policy", updated.support_policy}});
          }));
  add("POST", a + "/cases",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                    RETURN_IF_ERROR(OnlyFields(body, {"subject"}));
                    ASSIGN_OR_RETURN(std::optional<std::string> subject,
                                     StringField(body, "subject", true, 1000));
                    ASSIGN_OR_RETURN(store::SupportCaseRecord c,
                                     plane.OpenCase(ctx, nullptr, tenant, *subject));
                    return Response::MakeJson(201, sp::CaseView(c));
                  }));
  add("GET", a + "/cases",
      TenantAdmin(s,
                  [&](Request&, const store::TenantRecord& tenant,
                      audit::RequestContext&) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(std::vector<store::SupportCaseRecord> cases,
                                     plane.ListCases(tenant.id));
                    return Response::MakeJson(200, Array(cases, sp::CaseView));
                  }));
  add("POST", a + "/cases/{caseId}/close",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(store::SupportCaseRecord c,
                                     plane.CloseCase(ctx, tenant, r.Param("caseId")));
                    return Response::MakeJson(200, sp::CaseView(c));
                  }));
  add("GET", a + "/access_requests",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext&) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(
                        std::optional<std::string> status,
                        StatusQuery(r, {store::kRequestPending, store::kRequestApproved,
                                        store::kRequestDenied, store::kRequestExpired}));
                    ASSIGN_OR_RETURN(std::vector<sp::AccessRequestInfo> infos,
                                     plane.ListAccessRequests(tenant.id, status));
                    return Response::MakeJson(200, Array(infos, sp::AccessRequestView));
                  }));
  add("GET", a + "/access_requests/{requestId}",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext&) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(sp::AccessRequestInfo info,
                                     plane.GetAccessRequest(tenant.id, r.Param("requestId")));
                    return Response::MakeJson(200, sp::AccessRequestView(info));
                  }));
  add("POST", a + "/access_requests/{requestId}/approve",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                    std::optional<absl::Duration> duration;
                    std::string reason;
                    if (!r.body.empty()) {
                      ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                      RETURN_IF_ERROR(OnlyFields(body, {"duration", "reason"}));
                      ASSIGN_OR_RETURN(duration, DurationField(body, "duration"));
                      ASSIGN_OR_RETURN(std::optional<std::string> given,
                                       StringField(body, "reason", false));
                      reason = given.value_or("");
                    }
                    ASSIGN_OR_RETURN(
                        sp::AccessRequestInfo info,
                        plane.Approve(ctx, tenant, r.Param("requestId"), duration, reason));
                    return Response::MakeJson(200, sp::AccessRequestView(info));
                  }));
  add("POST", a + "/access_requests/{requestId}/deny",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                    std::string reason;
                    if (!r.body.empty()) {
                      ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                      RETURN_IF_ERROR(OnlyFields(body, {"reason"}));
                      ASSIGN_OR_RETURN(std::optional<std::string> given,
                                       StringField(body, "reason", false));
                      reason = given.value_or("");
                    }
                    ASSIGN_OR_RETURN(sp::AccessRequestInfo info,
                                     plane.Deny(ctx, tenant, r.Param("requestId"), reason));
                    return Response::MakeJson(200, sp::AccessRequestView(info));
                  }));
  add("GET", a + "/grants",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext&) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(std::optional<std::string> status,
                                     StatusQuery(r, {store::kGrantActive, store::kGrantRevoked,
                                                     store::kGrantEnded}));
                    ASSIGN_OR_RETURN(std::vector<store::GrantRecord> grants,
                                     plane.ListGrants(tenant.id, status));
                    return Response::MakeJson(200, Array(grants, sp::GrantView));
                  }));
  add("POST", a + "/grants/{grantId}/extend",
      TenantAdmin(
          s,
          [&](Request& r, const store::TenantRecord& tenant,
              audit::RequestContext& ctx) -> absl::StatusOr<Response> {
            ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
            RETURN_IF_ERROR(OnlyFields(body, {"duration"}));
            ASSIGN_OR_RETURN(std::optional<absl::Duration> by, DurationField(body, "duration"));
            if (!by.has_value()) {
              return ValidationError("Api validation failed: duration", {"duration: is required"});
            }
            ASSIGN_OR_RETURN(store::GrantRecord grant,
                             plane.ExtendGrant(ctx, tenant, r.Param("grantId"), *by));
            return Response::MakeJson(200, sp::GrantView(grant));
          }));
  add("POST", a + "/grants/{grantId}/revoke",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                    std::string reason;
                    if (!r.body.empty()) {
                      ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                      RETURN_IF_ERROR(OnlyFields(body, {"reason"}));
                      ASSIGN_OR_RETURN(std::optional<std::string> given,
                                       StringField(body, "reason", false));
                      reason = given.value_or("");
                    }
                    ASSIGN_OR_RETURN(store::GrantRecord grant,
                                     plane.RevokeGrant(ctx, tenant, r.Param("grantId"), reason));
                    return Response::MakeJson(200, sp::GrantView(grant));
                  }));
  add("GET", a + "/confirmations",
      TenantAdmin(s,
                  [&](Request& r, const store::TenantRecord& tenant,
                      audit::RequestContext&) -> absl::StatusOr<Response> {
                    ASSIGN_OR_RETURN(
                        std::optional<std::string> status,
                        StatusQuery(r, {store::kConfirmationPending, store::kConfirmationConfirmed,
                                        store::kConfirmationDenied, store::kConfirmationUsed,
                                        store::kConfirmationExpired}));
                    ASSIGN_OR_RETURN(std::vector<store::ConfirmationRecord> items,
                                     plane.ListConfirmations(tenant.id, status));
                    return Response::MakeJson(200, Array(items, sp::ConfirmationView));
                  }));
  for (std::string_view decision : {"confirm", "deny"}) {
    add("POST", fmt::format("{}/confirmations/{{confirmationId}}/{}", a, decision),
        TenantAdmin(s,
                    [&, decision](Request& r, const store::TenantRecord& tenant,
                                  audit::RequestContext& ctx) -> absl::StatusOr<Response> {
                      ASSIGN_OR_RETURN(
                          store::ConfirmationRecord c,
                          plane.DecideConfirmation(ctx, tenant, r.Param("confirmationId"),
                                                   decision == "confirm"));
                      return Response::MakeJson(200, sp::ConfirmationView(c));
                    }));
  }
  return routes;
}

}  // namespace custos::api::support
