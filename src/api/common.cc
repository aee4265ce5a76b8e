#include "api/common.h"

#include <string>
#include <string_view>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "crypto/hash.h"

namespace custos::api {
namespace {

constexpr std::string_view kSswsPrefix = "SSWS ";
constexpr std::string_view kBearerPrefix = "Bearer ";
constexpr size_t kMaxStoredUserAgent = 512;
// Longer than any token Custos issues (API tokens: 47 characters, session tokens: 43).
constexpr size_t kMaxTokenSize = 256;

std::string DefaultErrorCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return std::string(kErrValidation);
    case absl::StatusCode::kUnauthenticated:
      return std::string(kErrAuthFailed);
    case absl::StatusCode::kPermissionDenied:
      return std::string(kErrForbidden);
    case absl::StatusCode::kNotFound:
      return std::string(kErrNotFound);
    case absl::StatusCode::kFailedPrecondition:
      return std::string(kErrWrongStatus);
    case absl::StatusCode::kResourceExhausted:
      return std::string(kErrRateLimit);
    default:
      return std::string(kErrInternal);
  }
}

std::string UrlEncode(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Response ErrorResponse(const absl::Status& status, const Request& request) {
  std::string code = ErrorCodeOf(status);
  absl::StatusCode kind = status.code();
  std::string summary(status.message());
  // A status that carries no error code was not written for clients: it comes from below the
  // domain (the store, a library). Only argument errors (filter syntax, parameters) are meant
  // to be read; the others get a generic answer and the detail goes to the log.
  if (code.empty()) {
    if (kind == absl::StatusCode::kNotFound) {
      summary = "Not found: Resource not found";
    } else if (kind != absl::StatusCode::kInvalidArgument &&
               kind != absl::StatusCode::kUnavailable) {
      kind = absl::StatusCode::kInternal;
    }
    code = DefaultErrorCode(kind);
  }
  int http = HttpStatusFor(kind);
  std::string error_id = "oae" + request.request_id;
  Json causes = Json::array();
  if (http >= 500) {
    spdlog::error("request {} failed: {} (errorId {})", request.request_id, status.ToString(),
                  error_id);
    summary = http == 503 ? "Service Unavailable" : "Internal Server Error";
    code = std::string(kErrInternal);
  } else {
    for (const std::string& cause : ErrorCausesOf(status)) {
      causes.push_back({{"errorSummary", cause}});
    }
  }
  Json body = {{"errorCode", code},
               {"errorSummary", summary},
               {"errorLink", code},
               {"errorId", error_id},
               {"errorCauses", causes}};
  if (const std::string reason = ReasonOf(status); !reason.empty() && http < 500) {
    body["reason"] = reason;
  }
  Response r = Response::MakeJson(http, body);
  if (http == 401) r.AddHeader("WWW-Authenticate", "SSWS realm=\"custos\"");
  if (http == 503) r.AddHeader("Retry-After", "1");
  return r;
}

Response Respond(const Request& request, const absl::StatusOr<Response>& result) {
  if (!result.ok()) return ErrorResponse(result.status(), request);
  return *result;
}

absl::StatusOr<store::TenantRecord> ResolveTenant(Services& services, const Request& request) {
  std::string name = request.Param("tenant");
  absl::StatusOr<store::TenantRecord> tenant;
  absl::Status st = services.store.Read([&](store::Transaction& tx) {
    tenant = tx.Tenants().GetByName(name);
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(st);
  if (!tenant.ok()) {
    if (absl::IsNotFound(tenant.status())) return NotFoundError(name + " (Tenant)");
    return tenant.status();
  }
  return tenant;
}

audit::RequestContext ContextFor(const Request& request) {
  audit::RequestContext ctx;
  ctx.request_id = request.request_id;
  ctx.ip_address = request.remote_ip;
  // Stored with every event and session: an attacker's 16 KiB header must not be.
  ctx.user_agent = request.Header("user-agent").substr(0, kMaxStoredUserAgent);
  ctx.url = request.path;
  return ctx;
}

std::string SswsToken(const Request& request) {
  const std::string header = request.Header("authorization");
  if (header.size() <= kSswsPrefix.size() ||
      !absl::StartsWithIgnoreCase(header, std::string(kSswsPrefix))) {
    return "";
  }
  std::string token = header.substr(kSswsPrefix.size());
  // Anything this long is not one of our tokens, and is not worth a lookup.
  return token.size() <= kMaxTokenSize ? token : "";
}

std::string BearerToken(const Request& request) {
  const std::string header = request.Header("authorization");
  if (header.size() <= kBearerPrefix.size() ||
      !absl::StartsWithIgnoreCase(header, std::string(kBearerPrefix))) {
    return "";
  }
  std::string token(absl::StripAsciiWhitespace(header.substr(kBearerPrefix.size())));
  return token.size() <= kMaxTokenSize ? token : "";
}

bool IsBearer(const Request& request) {
  return absl::StartsWithIgnoreCase(request.Header("authorization"), std::string(kBearerPrefix));
}

::custos::authn::SessionUse SessionUseOf(const Request& request) {
  // Request header names are kept in lower case.
  const std::string value = request.Header(absl::AsciiStrToLower(std::string(kBackgroundHeader)));
  return absl::StripAsciiWhitespace(value) == "1" ? ::custos::authn::SessionUse::kBackground
                                                  : ::custos::authn::SessionUse::kActivity;
}

namespace {

std::string DisplayNameOf(const ::custos::authn::AuthnUser& user) {
  std::string display = user.first_name;
  if (!user.last_name.empty()) display += (display.empty() ? "" : " ") + user.last_name;
  return display.empty() ? user.login : display;
}

std::string DisplayNameOf(const store::UserRecord& user) {
  ::custos::authn::AuthnUser u{.login = user.login};
  absl::StatusOr<Json> profile = ParseJson(user.profile_json);
  if (profile.ok() && profile->is_object()) {
    for (auto [key, field] : {std::pair{"firstName", &u.first_name}, {"lastName", &u.last_name}}) {
      auto it = profile->find(key);
      if (it != profile->end() && it->is_string()) *field = it->get<std::string>();
    }
  }
  return DisplayNameOf(u);
}

// The console, as the target of kEventAccessAdminApp (the reference log names its admin app the
// same way).
audit::Principal ConsoleApp() {
  return {"custos-console", "AppInstance", "Custos Console", "Custos Console"};
}

// Records a refused console session in the tenant's log and returns `answer`.
absl::Status RefuseConsole(Services& services, const Request& request,
                           const store::TenantRecord& tenant, audit::Principal actor,
                           std::string session_id, std::string_view outcome,
                           std::string_view reason, absl::Status answer) {
  RETURN_IF_ERROR(TakeRefusal(services, request));
  audit::RequestContext ctx = ContextFor(request);
  ctx.actor = std::move(actor);
  ctx.external_session_id = std::move(session_id);
  audit::EventSpec spec{.event_type = std::string(kEventAccessAdminApp),
                        .display_message = "User accessing the Custos console",
                        .severity = "WARN",
                        .outcome = std::string(outcome),
                        .reason = std::string(reason),
                        .targets = {ConsoleApp()}};
  store::EventRecord event =
      audit::MakeEvent(tenant.id, ctx, spec, services.clock, services.random);
  RETURN_IF_ERROR(services.store.Write(
      [&](store::Transaction& tx) { return tx.Events().Append(event).status(); }));
  return WithReason(std::move(answer), reason);
}

absl::Status InvalidToken() {
  return ApiError(absl::StatusCode::kUnauthenticated, kErrInvalidToken, "Invalid token provided");
}

// A session that SignIn::ValidateSession refused: who it belonged to and why it is dead, when the
// store still has it.
struct DeadSession {
  std::optional<audit::Principal> user;
  std::string session_id;
  std::string reason = "INVALID_SESSION";
};

absl::StatusOr<DeadSession> FindDeadSession(Services& services, const store::TenantRecord& tenant,
                                            const std::string& token) {
  DeadSession dead;
  RETURN_IF_ERROR(services.store.Read([&](store::Transaction& tx) -> absl::Status {
    absl::StatusOr<store::SessionRecord> session =
        tx.Sessions().FindByHash(tenant.id, crypto::Sha256Hex(token));
    if (absl::IsNotFound(session.status())) return absl::OkStatus();
    RETURN_IF_ERROR(session.status());
    dead.session_id = session->id.value();
    absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant.id, session->user_id);
    if (absl::IsNotFound(user.status())) return absl::OkStatus();
    RETURN_IF_ERROR(user.status());
    dead.user = audit::Principal{user->id.value(), "User", user->login, DisplayNameOf(*user)};
    dead.reason = user->status == store::kUserActive ? "SESSION_EXPIRED" : "USER_NOT_ACTIVE";
    return absl::OkStatus();
  }));
  return dead;
}

absl::StatusOr<bool> InGroupNamed(Services& services, const TenantId& tenant, const UserId& user,
                                  std::string_view group_name) {
  return store::ReadResult(services.store, [&](store::Transaction& tx) -> absl::StatusOr<bool> {
    ASSIGN_OR_RETURN(std::vector<GroupId> groups, tx.Groups().ListGroupsOfUser(tenant, user));
    for (const GroupId& id : groups) {
      absl::StatusOr<store::GroupRecord> group = tx.Groups().Get(tenant, id);
      if (absl::IsNotFound(group.status())) continue;
      RETURN_IF_ERROR(group.status());
      if (group->name == group_name) return true;
    }
    return false;
  });
}

// amr is space-separated ("pwd", "pwd otp"); anything besides the password is a second factor.
bool HasSecondFactor(std::string_view amr) {
  for (absl::string_view method : absl::StrSplit(std::string(amr), ' ', absl::SkipEmpty())) {
    if (method != "pwd") return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ConsoleAdmin> AuthenticateConsoleAdmin(Services& services,
                                                      ::custos::authn::SignIn& sign_in,
                                                      const Request& request,
                                                      const store::TenantRecord& tenant,
                                                      bool record_success) {
  const std::string token = BearerToken(request);
  const audit::Principal unknown{"unknown", "User", "unknown", "Unknown session"};
  if (token.empty()) {
    // A Bearer header whose token BearerToken refused (too long) is a wrong credential, not a
    // missing one.
    return RefuseConsole(services, request, tenant, unknown, "", audit::kFailure,
                         IsBearer(request) ? "INVALID_SESSION" : "MISSING_CREDENTIALS",
                         InvalidToken());
  }
  // The console's polls check the session without keeping it alive.
  absl::StatusOr<::custos::authn::SessionInfo> session =
      sign_in.ValidateSession(tenant.id, token, SessionUseOf(request));
  if (!session.ok()) {
    if (!absl::IsPermissionDenied(session.status())) return session.status();
    ASSIGN_OR_RETURN(DeadSession dead, FindDeadSession(services, tenant, token));
    return RefuseConsole(services, request, tenant, dead.user.value_or(unknown), dead.session_id,
                         audit::kFailure, dead.reason, InvalidToken());
  }
  ConsoleAdmin admin{.session = *std::move(session)};
  admin.display_name = DisplayNameOf(admin.session.user);
  admin.ctx = ContextFor(request);
  admin.ctx.actor = {admin.session.user.id.value(), "User", admin.session.user.login,
                     admin.display_name};
  admin.ctx.external_session_id = admin.session.session.id.value();
  const std::string& group = services.config.console_admin_group;
  ASSIGN_OR_RETURN(bool member, InGroupNamed(services, tenant.id, admin.session.user.id, group));
  if (!member) {
    return RefuseConsole(
        services, request, tenant, admin.ctx.actor, admin.ctx.external_session_id, audit::kDeny,
        "NOT_ADMIN",
        ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
                 "You do not have permission to perform the requested action",
                 {fmt::format("console: only members of the group '{}' may administer {}", group,
                              tenant.name)}));
  }
  if (!HasSecondFactor(admin.session.session.amr)) {
    return RefuseConsole(
        services, request, tenant, admin.ctx.actor, admin.ctx.external_session_id, audit::kDeny,
        "MFA_REQUIRED",
        ApiError(absl::StatusCode::kPermissionDenied, kErrForbidden,
                 "You do not have permission to perform the requested action",
                 {"console: sign in with a second factor to administer the tenant"}));
  }
  if (record_success) {
    audit::EventSpec spec{.event_type = std::string(kEventAccessAdminApp),
                          .display_message = "User accessing the Custos console",
                          .targets = {ConsoleApp()},
                          .debug_data = {{"adminGroup", group}}};
    store::EventRecord event =
        audit::MakeEvent(tenant.id, admin.ctx, spec, services.clock, services.random);
    RETURN_IF_ERROR(services.store.Write(
        [&](store::Transaction& tx) { return tx.Events().Append(event).status(); }));
  }
  return admin;
}

absl::StatusOr<store::TenantRecord> ProviderTenant(Services& services) {
  absl::StatusOr<store::TenantRecord> provider =
      store::ReadResult(services.store, [](store::Transaction& tx) {
        return tx.Tenants().Get(TenantId(std::string(store::kProviderLogId)));
      });
  if (absl::IsNotFound(provider.status())) return NotFoundError("provider tenant");
  return provider;
}

absl::StatusOr<audit::RequestContext> AuthenticateAdmin(Services& services, const Request& request,
                                                        const store::TenantRecord& tenant,
                                                        std::string_view scope) {
  if (services.sign_in != nullptr && IsBearer(request)) {
    ASSIGN_OR_RETURN(ConsoleAdmin admin,
                     AuthenticateConsoleAdmin(services, *services.sign_in, request, tenant, false));
    return std::move(admin.ctx);
  }
  audit::RequestContext ctx = ContextFor(request);
  std::string header = request.Header("authorization");
  const std::string token = SswsToken(request);
  absl::StatusOr<store::ApiTokenRecord> record = absl::NotFoundError("no token");
  if (!token.empty()) {
    std::string hash = crypto::Sha256Hex(token);
    RETURN_IF_ERROR(services.store.Read([&](store::Transaction& tx) {
      record = tx.ApiTokens().FindByHash(tenant.id, hash);
      return absl::OkStatus();
    }));
  }
  if (!record.ok()) {
    if (!absl::IsNotFound(record.status())) return record.status();
    RETURN_IF_ERROR(TakeRefusal(services, request));
    ctx.actor = {"unknown", "ApiToken", "unknown", "Unknown API token"};
    audit::EventSpec spec;
    spec.event_type = "system.api_token.verify";
    spec.display_message = "Verify API token";
    spec.severity = "WARN";
    spec.outcome = std::string(audit::kFailure);
    spec.reason = header.empty() ? "MISSING_CREDENTIALS" : "INVALID_CREDENTIALS";
    store::EventRecord event =
        audit::MakeEvent(tenant.id, ctx, spec, services.clock, services.random);
    RETURN_IF_ERROR(services.store.Write(
        [&](store::Transaction& tx) { return tx.Events().Append(event).status(); }));
    return ApiError(absl::StatusCode::kUnauthenticated, kErrInvalidToken, "Invalid token provided");
  }
  ctx.actor = {record->id.value(), "ApiToken", record->name, record->name};
  if (record->scope != store::kScopeAdmin && record->scope != scope) {
    audit::EventSpec spec;
    spec.event_type = "system.api_token.verify";
    spec.display_message = "Verify API token";
    spec.severity = "WARN";
    spec.outcome = std::string(audit::kDeny);
    spec.reason = "INSUFFICIENT_SCOPE";
    spec.debug_data = {{"tokenScope", record->scope}, {"requiredScope", std::string(scope)}};
    store::EventRecord event =
        audit::MakeEvent(tenant.id, ctx, spec, services.clock, services.random);
    RETURN_IF_ERROR(services.store.Write(
        [&](store::Transaction& tx) { return tx.Events().Append(event).status(); }));
    return ApiError(
        absl::StatusCode::kPermissionDenied, kErrForbidden,
        fmt::format("This token has the scope '{}'; the call needs '{}'", record->scope, scope));
  }
  absl::Time now = services.clock.Now();
  if (!record->last_used || now - *record->last_used > absl::Minutes(1)) {
    // Best effort: a failed touch must not fail the request.
    (void)services.store.Write([&](store::Transaction& tx) {
      return tx.ApiTokens().TouchLastUsed(tenant.id, record->id, now);
    });
  }
  return ctx;
}

absl::Status TakeRefusal(Services& services, const Request& request) {
  if (services.refused_auth_limiter == nullptr) return absl::OkStatus();
  RateLimitDecision decision =
      services.refused_auth_limiter->Acquire(RateLimitKeyOf(request.remote_ip));
  if (decision.allowed) return absl::OkStatus();
  return ApiError(absl::StatusCode::kResourceExhausted, kErrRateLimit,
                  "API call exceeded rate limit due to too many requests.",
                  {"too many refused credentials from this address; retry later"});
}

std::string LogHost(std::string_view base_url) {
  if (size_t scheme = base_url.find("://"); scheme != std::string_view::npos) {
    base_url.remove_prefix(scheme + 3);
  }
  while (base_url.ends_with('/')) base_url.remove_suffix(1);
  return std::string(base_url);
}

absl::StatusOr<Json> ParseObjectBody(const Request& request) {
  // Only application/json (parameters such as charset allowed): an HTML form cannot send it
  // across sites without a CORS preflight, so a forged cross-site sign-in is refused here.
  std::string type = request.Header("content-type");
  type = std::string(absl::StripAsciiWhitespace(type.substr(0, type.find(';'))));
  if (!absl::EqualsIgnoreCase(type, "application/json")) {
    return ApiError(absl::StatusCode::kInvalidArgument, kErrBadJson,
                    "The request body was not well-formed.",
                    {"Content-Type: must be application/json"});
  }
  absl::StatusOr<Json> body = ParseJson(request.body);
  if (!body.ok()) {
    return ApiError(absl::StatusCode::kInvalidArgument, kErrBadJson,
                    "The request body was not well-formed.",
                    {std::string(body.status().message())});
  }
  if (!body->is_object()) return ValidationError("Api validation failed: body must be an object");
  return body;
}

absl::StatusOr<int> ParseLimit(const Request& request, int def, int max) {
  if (!request.HasQuery("limit")) return def;
  std::string text = request.Query("limit");
  int value = 0;
  bool ok = !text.empty() && text.size() <= 9;
  for (char c : text) ok = ok && c >= '0' && c <= '9';
  if (ok) value = std::stoi(text);
  if (!ok || value < 1 || value > max) {
    return ValidationError("Api validation failed: limit",
                           {fmt::format("limit: must be an integer between 1 and {}", max)});
  }
  return value;
}

void AddPagingLinks(Response& response, const Request& request, const std::string& next_after) {
  std::string self = request.base_url + request.target;
  response.AddHeader("Link", fmt::format("<{}>; rel=\"self\"", self));
  if (next_after.empty()) return;
  std::string next = request.base_url + request.path + "?";
  bool first = true;
  for (const auto& [key, value] : request.query) {
    if (key == "after") continue;
    next += fmt::format("{}{}={}", first ? "" : "&", UrlEncode(key), UrlEncode(value));
    first = false;
  }
  next += fmt::format("{}after={}", first ? "" : "&", UrlEncode(next_after));
  response.AddHeader("Link", fmt::format("<{}>; rel=\"next\"", next));
}

absl::StatusOr<std::map<std::string, std::string>> ParseFormBody(std::string_view body) {
  auto decode = [](std::string_view in) -> std::optional<std::string> {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i] == '+') {
        out += ' ';
      } else if (in[i] == '%') {
        if (i + 2 >= in.size() || !absl::ascii_isxdigit(in[i + 1]) ||
            !absl::ascii_isxdigit(in[i + 2])) {
          return std::nullopt;
        }
        out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += in[i];
      }
    }
    return out;
  };
  std::map<std::string, std::string> form;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    std::string_view pair = body.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::optional<std::string> name = decode(pair.substr(0, eq));
    std::optional<std::string> value =
        decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name.has_value() || !value.has_value()) {
      return absl::InvalidArgumentError("malformed percent-encoding in the form body");
    }
    if (!form.emplace(*std::move(name), *std::move(value)).second) {
      return absl::InvalidArgumentError(
          fmt::format("parameter {} is repeated", pair.substr(0, eq)));
    }
  }
  return form;
}

std::string CookieValue(const Request& request, std::string_view name) {
  // Cookies are separated by ';' (and by ',' when the server joined repeated headers).
  const std::string cookies = request.Header("cookie");
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find_first_of(";,", pos);
    if (end == std::string::npos) end = cookies.size();
    std::string_view part(cookies.data() + pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) {
      return std::string(part.substr(eq + 1));
    }
    pos = end + 1;
  }
  return "";
}

Handler ProviderAdmin(Services& services, ProviderAdminFn fn) {
  return [&services, fn = std::move(fn)](Request& request) -> Response {
    return Respond(request, [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(store::TenantRecord provider, ProviderTenant(services));
      ASSIGN_OR_RETURN(audit::RequestContext ctx, AuthenticateAdmin(services, request, provider));
      return fn(request, ctx);
    }());
  };
}

Handler TenantAdmin(Services& services, TenantAdminFn fn) {
  return [&services, fn = std::move(fn)](Request& request) -> Response {
    return Respond(request, [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(services, request));
      ASSIGN_OR_RETURN(audit::RequestContext ctx, AuthenticateAdmin(services, request, tenant));
      return fn(request, tenant, ctx);
    }());
  };
}

}  // namespace custos::api
