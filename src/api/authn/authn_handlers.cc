#include "api/authn/authn_handlers.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::api::authn {
namespace {

using ::custos::authn::AuthnAttempt;
using ::custos::authn::AuthnResult;
using ::custos::authn::AuthnStatus;
using ::custos::authn::AuthnUser;
using ::custos::authn::SignIn;

constexpr std::string_view kBearerPrefix = "bearer ";

Json StringOrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

std::string TenantUrl(const Request& request, const store::TenantRecord& tenant,
                      std::string_view path) {
  return fmt::format("{}/t/{}/api/v1/{}", request.base_url, tenant.name, path);
}

Json Link(std::string href, std::string_view method) {
  return {{"href", std::move(href)}, {"hints", {{"allow", Json::array({std::string(method)})}}}};
}

Json UserJson(const AuthnUser& user) {
  return {{"id", user.id.value()},
          {"passwordChanged",
           user.password_changed ? Json(FormatRfc3339(*user.password_changed)) : Json(nullptr)},
          {"profile",
           {{"login", user.login},
            {"firstName", StringOrNull(user.first_name)},
            {"lastName", StringOrNull(user.last_name)},
            {"locale", StringOrNull(user.locale)},
            {"timeZone", StringOrNull(user.time_zone)}}}};
}

std::string SessionCookie(const Request& request, const store::TenantRecord& tenant,
                          std::string_view value, bool expire) {
  const bool secure = absl::StartsWithIgnoreCase(request.base_url, "https://");
  return fmt::format("{}={}; Path=/t/{}{}; HttpOnly; SameSite=Lax{}", kSessionCookie, value,
                     tenant.name, expire ? "; Max-Age=0" : "", secure ? "; Secure" : "");
}

// The authn transaction as the reference API shows it.
Response TransactionResponse(const Request& request, const store::TenantRecord& tenant,
                             const AuthnResult& result) {
  Json body = {{"expiresAt", FormatRfc3339(result.expires_at)},
               {"_embedded", {{"user", UserJson(result.user)}}}};
  if (result.status == AuthnStatus::kSuccess) {
    body["status"] = "SUCCESS";
    body["sessionToken"] = result.token;
    Response r = Response::MakeJson(200, body);
    r.AddHeader("Set-Cookie", SessionCookie(request, tenant, result.token, false));
    r.AddHeader("Cache-Control", "no-store");
    return r;
  }
  body["status"] = "MFA_REQUIRED";
  body["stateToken"] = result.token;
  Json factors = Json::array();
  for (const ::custos::authn::AuthnFactor& f : result.factors) {
    factors.push_back(
        {{"id", f.id.value()},
         {"factorType", f.factor_type},
         {"provider", f.provider},
         {"vendorName", f.provider},
         {"profile", {{"credentialId", result.user.login}}},
         {"_links",
          {{"verify",
            Link(TenantUrl(request, tenant, fmt::format("authn/factors/{}/verify", f.id.value())),
                 "POST")}}}});
  }
  body["_embedded"]["factors"] = std::move(factors);
  // The reference API links `cancel` here; Custos has no cancel: an unused state token just
  // expires.
  body["_links"] = Json::object();
  Response r = Response::MakeJson(200, body);
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

Response AttemptResponse(const Request& request, const store::TenantRecord& tenant,
                         const AuthnAttempt& attempt) {
  Response r = attempt.result.ok() ? TransactionResponse(request, tenant, *attempt.result)
                                   : ErrorResponse(attempt.result.status(), request);
  r.delay = attempt.delay;
  return r;
}

// Reads the named fields, each required to be a JSON string; other fields are ignored, as the
// reference API does. Every missing or mistyped field is one cause.
absl::StatusOr<std::vector<std::string>> StringFields(const Json& body,
                                                      std::vector<std::string_view> names) {
  std::vector<std::string> values;
  std::vector<std::string> causes;
  std::vector<std::string_view> bad;
  for (std::string_view name : names) {
    auto it = body.find(std::string(name));
    if (it == body.end() || it->is_null()) {
      causes.push_back(fmt::format("{}: The field cannot be left blank", name));
      bad.push_back(name);
    } else if (!it->is_string()) {
      causes.push_back(fmt::format("{}: must be a string", name));
      bad.push_back(name);
    } else {
      values.push_back(it->get<std::string>());
    }
  }
  if (!causes.empty()) {
    return ValidationError(fmt::format("Api validation failed: {}", fmt::join(bad, ", ")),
                           std::move(causes));
  }
  return values;
}

// The session token from `Authorization: Bearer` or else the session cookie; empty if neither.
std::string SessionTokenOf(const Request& request) {
  std::string auth = request.Header("authorization");
  if (auth.size() > kBearerPrefix.size() &&
      absl::StartsWithIgnoreCase(auth, std::string(kBearerPrefix))) {
    return std::string(absl::StripAsciiWhitespace(auth.substr(kBearerPrefix.size())));
  }
  // Cookies are separated by ';' (and by ',' when the server joined repeated headers).
  std::string cookies = request.Header("cookie");
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find_first_of(";,", pos);
    if (end == std::string::npos) end = cookies.size();
    absl::string_view part =
        absl::StripAsciiWhitespace(absl::string_view(cookies.data() + pos, end - pos));
    size_t eq = part.find('=');
    if (eq != absl::string_view::npos && std::string_view(part.data(), eq) == kSessionCookie) {
      return std::string(part.substr(eq + 1));
    }
    pos = end + 1;
  }
  return "";
}

absl::Status NoSession() { return NotFoundError("me (Session)"); }

using TenantHandler = std::function<Response(Request&, const store::TenantRecord&)>;

// Resolves the tenant, then runs `fn`; an unknown tenant is 404.
Handler ForTenant(Services& services, TenantHandler fn) {
  return [&services, fn = std::move(fn)](Request& request) -> Response {
    absl::StatusOr<store::TenantRecord> tenant = ResolveTenant(services, request);
    if (!tenant.ok()) return ErrorResponse(tenant.status(), request);
    return fn(request, *tenant);
  };
}

Response PrimaryAuthn(SignIn& sign_in, Request& request, const store::TenantRecord& tenant) {
  absl::StatusOr<std::vector<std::string>> fields =
      [&]() -> absl::StatusOr<std::vector<std::string>> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
    return StringFields(body, {"username", "password"});
  }();
  if (!fields.ok()) return ErrorResponse(fields.status(), request);
  return AttemptResponse(
      request, tenant,
      sign_in.Authenticate(tenant.id, (*fields)[0], (*fields)[1], ContextFor(request)));
}

Response VerifyFactor(SignIn& sign_in, Request& request, const store::TenantRecord& tenant) {
  absl::StatusOr<std::vector<std::string>> fields =
      [&]() -> absl::StatusOr<std::vector<std::string>> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
    return StringFields(body, {"stateToken", "passCode"});
  }();
  if (!fields.ok()) return ErrorResponse(fields.status(), request);
  return AttemptResponse(
      request, tenant,
      sign_in.VerifyFactor(tenant.id, (*fields)[0], FactorId(request.Param("factorId")),
                           (*fields)[1], ContextFor(request)));
}

Response VerifyRecoveryToken(Services& services, SignIn& sign_in, Request& request,
                             const store::TenantRecord& tenant) {
  absl::StatusOr<Response> result = [&]() -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
    ASSIGN_OR_RETURN(std::vector<std::string> fields, StringFields(body, {"recoveryToken"}));
    ASSIGN_OR_RETURN(::custos::authn::RecoveryResult rec,
                     sign_in.VerifyRecoveryToken(tenant.id, fields[0], ContextFor(request)));
    Json out = {
        {"status", "PASSWORD_RESET"},
        {"stateToken", rec.state_token},
        {"expiresAt", FormatRfc3339(rec.expires_at)},
        {"recoveryType", "PASSWORD"},
        {"_embedded",
         {{"user", UserJson(rec.user)},
          {"policy",
           {{"complexity",
             {{"minLength", services.config.password_min_length},
              {"maxLength", std::max(services.config.password_max_length, 64)},
              {"excludeUsername", true},
              {"excludeCommonPasswords", true}}}}}}},
        {"_links",
         {{"next", Link(TenantUrl(request, tenant, "authn/credentials/reset_password"), "POST")}}}};
    out["_links"]["next"]["name"] = "resetPassword";
    Response r = Response::MakeJson(200, out);
    r.AddHeader("Cache-Control", "no-store");
    return r;
  }();
  return Respond(request, result);
}

Response ResetPassword(SignIn& sign_in, Request& request, const store::TenantRecord& tenant) {
  absl::StatusOr<std::vector<std::string>> fields =
      [&]() -> absl::StatusOr<std::vector<std::string>> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
    return StringFields(body, {"stateToken", "newPassword"});
  }();
  if (!fields.ok()) return ErrorResponse(fields.status(), request);
  return AttemptResponse(
      request, tenant,
      sign_in.ResetPassword(tenant.id, (*fields)[0], (*fields)[1], ContextFor(request)));
}

Response GetSession(SignIn& sign_in, Request& request, const store::TenantRecord& tenant) {
  absl::StatusOr<Response> result = [&]() -> absl::StatusOr<Response> {
    std::string token = SessionTokenOf(request);
    if (token.empty()) return NoSession();
    absl::StatusOr<::custos::authn::SessionInfo> info =
        sign_in.ValidateSession(tenant.id, token, SessionUseOf(request));
    if (!info.ok()) {
      if (absl::IsPermissionDenied(info.status())) return NoSession();
      return info.status();
    }
    const store::SessionRecord& s = info->session;
    Json amr = Json::array();
    for (absl::string_view m : absl::StrSplit(s.amr, ' ', absl::SkipEmpty())) {
      amr.push_back(std::string(m));
    }
    const bool mfa = absl::StrContains(s.amr, "otp");
    Json out = {{"id", s.id.value()},
                {"userId", s.user_id.value()},
                {"login", info->user.login},
                {"status", "ACTIVE"},
                {"createdAt", FormatRfc3339(s.created)},
                {"expiresAt", FormatRfc3339(info->expires_at)},
                {"lastPasswordVerification", FormatRfc3339(s.created)},
                {"lastFactorVerification", mfa ? Json(FormatRfc3339(s.created)) : Json(nullptr)},
                {"amr", std::move(amr)},
                {"mfaActive", mfa},
                {"_links", {{"self", Link(TenantUrl(request, tenant, "sessions/me"), "GET")}}}};
    out["_links"]["self"]["hints"]["allow"] = Json::array({"GET", "DELETE"});
    Response r = Response::MakeJson(200, out);
    r.AddHeader("Cache-Control", "no-store");
    return r;
  }();
  return Respond(request, result);
}

Response DeleteSession(SignIn& sign_in, Request& request, const store::TenantRecord& tenant) {
  std::string token = SessionTokenOf(request);
  absl::Status st =
      token.empty() ? NoSession() : sign_in.EndSession(tenant.id, token, ContextFor(request));
  if (absl::IsPermissionDenied(st)) st = NoSession();
  if (!st.ok()) return ErrorResponse(st, request);
  Response r = Response::NoContent();
  r.AddHeader("Set-Cookie", SessionCookie(request, tenant, "", true));
  return r;
}

}  // namespace

std::vector<Route> AuthnRoutes(Services& services, SignIn& sign_in) {
  const std::string base = "/t/{tenant}/api/v1";
  std::vector<Route> routes;
  auto add = [&](std::string method, std::string path, TenantHandler fn) {
    routes.push_back({std::move(method), base + path, ForTenant(services, std::move(fn))});
  };
  add("POST", "/authn",
      [&sign_in](Request& r, const store::TenantRecord& t) { return PrimaryAuthn(sign_in, r, t); });
  add("POST", "/authn/factors/{factorId}/verify",
      [&sign_in](Request& r, const store::TenantRecord& t) { return VerifyFactor(sign_in, r, t); });
  add("POST", "/authn/recovery/token",
      [&services, &sign_in](Request& r, const store::TenantRecord& t) {
        return VerifyRecoveryToken(services, sign_in, r, t);
      });
  add("POST", "/authn/credentials/reset_password",
      [&sign_in](Request& r, const store::TenantRecord& t) {
        return ResetPassword(sign_in, r, t);
      });
  add("GET", "/sessions/me",
      [&sign_in](Request& r, const store::TenantRecord& t) { return GetSession(sign_in, r, t); });
  add("DELETE", "/sessions/me", [&sign_in](Request& r, const store::TenantRecord& t) {
    return DeleteSession(sign_in, r, t);
  });
  return routes;
}

}  // namespace custos::api::authn
