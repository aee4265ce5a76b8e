#include "api/oidc/oidc_routes.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "api/authn/authn_handlers.h"
#include "common/errors.h"
#include "common/html.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "oidc/jwt.h"

namespace custos::api::oidc {
namespace {

namespace co = custos::oidc;
using custos::authn::AuthnAttempt;
using custos::authn::AuthnStatus;
using custos::authn::SessionInfo;

constexpr std::string_view kCsrfCookie = "custos_oidc_csrf";

// The authorization request parameters carried from the authorize endpoint through the sign-in
// page (as hidden fields) and checked again at each step.
constexpr std::string_view kAuthzParams[] = {
    "client_id", "redirect_uri", "response_type",  "scope",
    "state",     "nonce",        "code_challenge", "code_challenge_method",
    "prompt",    "max_age",      "login_hint",     "response_mode",
    "dpop_jkt"};

// Parameters that are no authorization parameters of ours but still must come once: their mere
// presence decides the answer.
constexpr std::string_view kOtherOnceParams[] = {"request", "request_uri"};

constexpr std::string_view kKnownScopes[] = {co::kScopeOpenId, co::kScopeProfile, co::kScopeEmail,
                                             co::kScopeOfflineAccess};

std::string Issuer(const Request& request, const store::TenantRecord& tenant) {
  return fmt::format("{}/t/{}", request.base_url, tenant.name);
}

std::string UrlEncode(std::string_view in) {
  std::string out;
  for (unsigned char c : in) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// `base` with the query parameters appended (after an existing query, if any).
std::string WithQuery(std::string_view base,
                      const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out(base);
  char sep = out.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [k, v] : params) {
    out += sep;
    out += UrlEncode(k);
    out += '=';
    out += UrlEncode(v);
    sep = '&';
  }
  return out;
}

Response Redirect(std::string location, int status = 302) {
  Response r;
  r.status = status;
  r.AddHeader("Location", std::move(location));
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

// A complete, accessible page: no script, no external resources.
Response Page(int status, std::string_view title, std::string_view body) {
  Response r;
  r.status = status;
  r.body = fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{}</title><style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem "
      "auto;padding:0 1rem;line-height:1.5}}label{{display:block;margin-top:1rem;font-weight:600}}"
      "input{{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box}}button{{margin-top:"
      "1.5rem;font-size:1rem;padding:.6rem 1.2rem}}.error{{color:#a00;border:1px solid #a00;"
      "padding:.5rem}}</style></head><body><main>{}</main></body></html>\n",
      HtmlEscape(title), body);
  r.AddHeader("Content-Type", "text/html; charset=utf-8");
  r.AddHeader("Cache-Control", "no-store");
  r.AddHeader("Content-Security-Policy",
              "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
              "base-uri 'none'");
  r.AddHeader("X-Frame-Options", "DENY");
  r.AddHeader("Referrer-Policy", "no-referrer");
  return r;
}

Response ErrorPage(int status, std::string_view message) {
  return Page(status, "Sign-in error",
              fmt::format("<h1>Sign-in error</h1><p role=\"alert\" class=\"error\">{}</p>",
                          HtmlEscape(message)));
}

Response JsonNoStore(int status, const Json& body) {
  Response r = Response::MakeJson(status, body);
  r.AddHeader("Cache-Control", "no-store");
  r.AddHeader("Pragma", "no-cache");
  return r;
}

// An OAuth error answer (RFC 6749 5.2); `www_authenticate` for 401s.
Response OAuthErrorResponse(const absl::Status& status, const Request& request,
                            std::string_view www_authenticate_scheme) {
  std::optional<co::OAuthError> error = co::OAuthErrorOf(status);
  if (!error.has_value()) return ErrorResponse(status, request);
  Response r = JsonNoStore(error->http_status,
                           {{"error", error->error}, {"error_description", error->description}});
  if (error->http_status == 401) {
    r.AddHeader("WWW-Authenticate", fmt::format("{} realm=\"custos\", error=\"{}\"",
                                                www_authenticate_scheme, error->error));
  }
  return r;
}

// ---- Authorization requests ----

struct AuthzRequest {
  store::AppRecord app;
  co::AppSettings settings;
  std::map<std::string, std::string> params;  // the known parameters as received
  std::vector<std::string> scopes;
  std::vector<std::string> prompts;
  std::optional<absl::Duration> max_age;

  std::string Param(std::string_view name) const {
    auto it = params.find(std::string(name));
    return it == params.end() ? std::string() : it->second;
  }
  bool HasPrompt(std::string_view p) const {
    return std::find(prompts.begin(), prompts.end(), p) != prompts.end();
  }
};

// Why an authorization request fails: shown to the user when the client or its redirect URI
// cannot be trusted, otherwise sent back to the client.
struct AuthzError {
  bool redirect = false;
  std::string error;
  std::string description;
};

bool IsUnreservedString(std::string_view s, size_t min, size_t max) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_' &&
        c != '~') {
      return false;
    }
  }
  return true;
}

// `repeated`: the names that came more than once (RFC 6749 3.1, OIDC Core 3.1.2.1: parameters
// must not be repeated; `in` holds the first value of each).
std::variant<AuthzRequest, AuthzError> ParseAuthz(co::Apps& apps, const store::TenantRecord& tenant,
                                                  const std::map<std::string, std::string>& in,
                                                  const std::vector<std::string>& repeated = {}) {
  AuthzRequest req;
  auto is_repeated = [&repeated](std::string_view name) {
    return std::find(repeated.begin(), repeated.end(), name) != repeated.end();
  };
  for (std::string_view name : kAuthzParams) {
    auto it = in.find(std::string(name));
    if (it != in.end()) req.params[std::string(name)] = it->second;
  }
  auto user_error = [](std::string description) {
    return AuthzError{
        .redirect = false, .error = "invalid_request", .description = std::move(description)};
  };
  auto client_error = [](std::string error, std::string description) {
    return AuthzError{
        .redirect = true, .error = std::move(error), .description = std::move(description)};
  };
  // Which client and which redirect URI cannot be told when either comes twice.
  for (std::string_view name : {"client_id", "redirect_uri"}) {
    if (is_repeated(name)) {
      return user_error(fmt::format("The request has more than one {}.", name));
    }
  }
  const std::string client_id = req.Param("client_id");
  if (client_id.empty()) return user_error("The request has no client_id.");
  absl::StatusOr<store::AppRecord> app = apps.Get(tenant.id, client_id);
  if (!app.ok() || app->status != store::kAppActive) {
    return user_error("The application is unknown or not active.");
  }
  absl::StatusOr<co::AppSettings> settings = co::SettingsOf(*app);
  if (!settings.ok()) return user_error("The application's settings cannot be read.");
  req.app = *std::move(app);
  req.settings = *std::move(settings);
  const std::string redirect_uri = req.Param("redirect_uri");
  if (redirect_uri.empty()) return user_error("The request has no redirect_uri.");
  if (std::find(req.settings.redirect_uris.begin(), req.settings.redirect_uris.end(),
                redirect_uri) == req.settings.redirect_uris.end()) {
    return user_error("The redirect_uri is not registered for this application.");
  }
  // From here on the client and its redirect URI are known: errors go back to it.
  for (const std::string& name : repeated) {
    const bool ours = std::find(std::begin(kAuthzParams), std::end(kAuthzParams), name) !=
                          std::end(kAuthzParams) ||
                      std::find(std::begin(kOtherOnceParams), std::end(kOtherOnceParams), name) !=
                          std::end(kOtherOnceParams);
    // Unknown parameters are ignored (RFC 6749 3.1), repeated or not.
    if (ours) return client_error("invalid_request", fmt::format("{} is repeated", name));
  }
  if (in.contains("request")) {
    return client_error("request_not_supported", "Request objects are not supported");
  }
  if (in.contains("request_uri")) {
    return client_error("request_uri_not_supported", "request_uri is not supported");
  }
  const std::string response_type = req.Param("response_type");
  if (response_type.empty()) return client_error("invalid_request", "response_type is missing");
  if (response_type != "code") {
    return client_error("unsupported_response_type", "Only response_type=code is supported");
  }
  if (!req.settings.Allows(co::kGrantAuthorizationCode)) {
    return client_error("unauthorized_client",
                        "The application may not use the authorization code flow");
  }
  if (const std::string mode = req.Param("response_mode"); !mode.empty() && mode != "query") {
    return client_error("invalid_request", "Only response_mode=query is supported");
  }
  for (absl::string_view s : absl::StrSplit(req.Param("scope"), ' ', absl::SkipEmpty())) {
    const std::string scope(s);
    if (std::find(std::begin(kKnownScopes), std::end(kKnownScopes), scope) ==
        std::end(kKnownScopes)) {
      return client_error("invalid_scope", fmt::format("Unknown scope: {}", scope));
    }
    if (std::find(req.scopes.begin(), req.scopes.end(), scope) == req.scopes.end()) {
      req.scopes.push_back(scope);
    }
  }
  if (req.scopes.empty()) return client_error("invalid_scope", "scope is missing");
  const std::string challenge = req.Param("code_challenge");
  std::string method = req.Param("code_challenge_method");
  if (!challenge.empty() && method.empty()) method = "plain";
  if (challenge.empty() && !method.empty()) {
    return client_error("invalid_request", "code_challenge_method without code_challenge");
  }
  if (!challenge.empty()) {
    if (method != "S256" && method != "plain") {
      return client_error("invalid_request", "code_challenge_method must be S256");
    }
    if (!IsUnreservedString(challenge, 43, 128)) {
      return client_error("invalid_request", "code_challenge is malformed");
    }
    req.params["code_challenge_method"] = method;
  }
  if (req.settings.IsPublic() && (challenge.empty() || method != "S256")) {
    return client_error("invalid_request",
                        "Public clients must use PKCE with code_challenge_method=S256");
  }
  for (absl::string_view p : absl::StrSplit(req.Param("prompt"), ' ', absl::SkipEmpty())) {
    const std::string prompt(p);
    if (prompt != "none" && prompt != "login" && prompt != "consent" &&
        prompt != "select_account") {
      return client_error("invalid_request", fmt::format("Unknown prompt value: {}", prompt));
    }
    req.prompts.push_back(prompt);
  }
  if (req.HasPrompt("none") && req.prompts.size() > 1) {
    return client_error("invalid_request", "prompt=none cannot be combined with other values");
  }
  if (const std::string max_age = req.Param("max_age"); !max_age.empty()) {
    int64_t seconds = 0;
    bool ok = max_age.size() <= 10;
    for (char c : max_age) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) seconds = seconds * 10 + (c - '0');
    }
    if (!ok) return client_error("invalid_request", "max_age must be a non-negative integer");
    req.max_age = absl::Seconds(seconds);
  }
  if (const std::string jkt = req.Param("dpop_jkt");
      !jkt.empty() && !IsUnreservedString(jkt, 43, 43)) {
    return client_error("invalid_request", "dpop_jkt must be a SHA-256 JWK thumbprint");
  }
  return req;
}

// The client's redirect URI with the error (RFC 6749 4.1.2.1), the state and the issuer
// (RFC 9207). Only for requests whose client and redirect URI were found valid.
std::string ErrorRedirect(const Request& request, const store::TenantRecord& tenant,
                          const std::map<std::string, std::string>& params,
                          const AuthzError& error) {
  std::vector<std::pair<std::string, std::string>> query = {
      {"error", error.error}, {"error_description", error.description}};
  if (auto it = params.find("state"); it != params.end() && !it->second.empty()) {
    query.emplace_back("state", it->second);
  }
  query.emplace_back("iss", Issuer(request, tenant));
  return WithQuery(params.at("redirect_uri"), query);
}

std::string HiddenFields(const AuthzRequest& req, std::string_view csrf) {
  std::string out;
  for (const auto& [name, value] : req.params) {
    // A fresh sign-in satisfies prompt=login and max_age: do not ask again after it.
    if (name == "prompt" || name == "max_age") continue;
    out += fmt::format("<input type=\"hidden\" name=\"{}\" value=\"{}\">", HtmlEscape(name),
                       HtmlEscape(value));
  }
  out += fmt::format("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", HtmlEscape(csrf));
  return out;
}

std::string CsrfCookie(const Request& request, const store::TenantRecord& tenant,
                       std::string_view value) {
  const bool secure = absl::StartsWithIgnoreCase(request.base_url, "https://");
  return fmt::format("{}={}; Path=/t/{}/oauth2/v1; HttpOnly; SameSite=Strict{}", kCsrfCookie, value,
                     tenant.name, secure ? "; Secure" : "");
}

std::string SessionCookie(const Request& request, const store::TenantRecord& tenant,
                          std::string_view value, bool expire) {
  const bool secure = absl::StartsWithIgnoreCase(request.base_url, "https://");
  return fmt::format("{}={}; Path=/t/{}{}; HttpOnly; SameSite=Lax{}", api::authn::kSessionCookie,
                     value, tenant.name, expire ? "; Max-Age=0" : "", secure ? "; Secure" : "");
}

Response LoginPage(const Request& request, const store::TenantRecord& tenant,
                   const AuthzRequest& req, std::string_view csrf, std::string_view error,
                   std::string_view username) {
  std::string body = fmt::format("<h1>Sign in to {}</h1><p>{} asks you to sign in.</p>",
                                 HtmlEscape(tenant.name), HtmlEscape(req.app.label));
  if (!error.empty()) {
    body += fmt::format("<p role=\"alert\" class=\"error\" id=\"error\">{}</p>", HtmlEscape(error));
  }
  body += fmt::format(
      "<form method=\"post\" action=\"/t/{}/oauth2/v1/login\">{}"
      "<label for=\"username\">Username</label>"
      "<input id=\"username\" name=\"username\" autocomplete=\"username\" required "
      "value=\"{}\"{}>"
      "<label for=\"password\">Password</label>"
      "<input id=\"password\" name=\"password\" type=\"password\" "
      "autocomplete=\"current-password\" required>"
      "<button type=\"submit\">Sign in</button></form>",
      HtmlEscape(tenant.name), HiddenFields(req, csrf), HtmlEscape(username),
      error.empty() ? "" : " aria-describedby=\"error\"");
  Response r = Page(error.empty() ? 200 : 401, fmt::format("Sign in to {}", tenant.name), body);
  r.AddHeader("Set-Cookie", CsrfCookie(request, tenant, csrf));
  return r;
}

Response FactorPage(const Request& request, const store::TenantRecord& tenant,
                    const AuthzRequest& req, std::string_view csrf, std::string_view state_token,
                    std::string_view factor_id, std::string_view error) {
  std::string body =
      "<h1>Enter your code</h1><p>Enter the 6-digit code from your authenticator app.</p>";
  if (!error.empty()) {
    body += fmt::format("<p role=\"alert\" class=\"error\" id=\"error\">{}</p>", HtmlEscape(error));
  }
  body += fmt::format(
      "<form method=\"post\" action=\"/t/{}/oauth2/v1/login/factor\">{}"
      "<input type=\"hidden\" name=\"state_token\" value=\"{}\">"
      "<input type=\"hidden\" name=\"factor_id\" value=\"{}\">"
      "<label for=\"passcode\">Code</label>"
      "<input id=\"passcode\" name=\"passcode\" inputmode=\"numeric\" pattern=\"[0-9]*\" "
      "autocomplete=\"one-time-code\" required{}>"
      "<button type=\"submit\">Verify</button></form>",
      HtmlEscape(tenant.name), HiddenFields(req, csrf), HtmlEscape(state_token),
      HtmlEscape(factor_id), error.empty() ? "" : " aria-describedby=\"error\"");
  Response r = Page(error.empty() ? 200 : 401, "Enter your code", body);
  r.AddHeader("Set-Cookie", CsrfCookie(request, tenant, csrf));
  return r;
}

// application/x-www-form-urlencoded decoding ('+' is a space); nullopt for a bad escape.
std::optional<std::string> FormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size() || !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 1])) ||
          !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 2]))) {
        return std::nullopt;
      }
      std::optional<std::string> byte = crypto::HexDecode(in.substr(i + 1, 2));
      if (!byte) return std::nullopt;
      out += *byte;
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

// The parameters of an authorization request: the first value of each, and the names that came
// more than once (each listed once).
struct AuthzParams {
  std::map<std::string, std::string> values;
  std::vector<std::string> repeated;
};

absl::StatusOr<AuthzParams> ParseUrlEncoded(std::string_view text) {
  AuthzParams out;
  while (!text.empty()) {
    const size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::optional<std::string> name = FormDecode(pair.substr(0, eq));
    std::optional<std::string> value =
        FormDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name || !value) {
      return absl::InvalidArgumentError("The request has a malformed percent-encoding.");
    }
    if (name->empty()) continue;
    if (!out.values.emplace(*name, *std::move(value)).second &&
        std::find(out.repeated.begin(), out.repeated.end(), *name) == out.repeated.end()) {
      out.repeated.push_back(*std::move(name));
    }
  }
  return out;
}

// The parameters of a GET (query) or POST (form) authorization request, repeats included: the
// parsed query of Request keeps only the first of each name, so the raw target is read again.
absl::StatusOr<AuthzParams> AuthzParamsOf(const Request& request) {
  if (request.method == "POST") {
    const std::string type = absl::AsciiStrToLower(request.Header("content-type"));
    if (!type.starts_with("application/x-www-form-urlencoded")) {
      return absl::InvalidArgumentError("The form must be application/x-www-form-urlencoded.");
    }
    return ParseUrlEncoded(request.body);
  }
  const size_t q = request.target.find('?');
  if (q == std::string::npos) {
    return AuthzParams{
        std::map<std::string, std::string>(request.query.begin(), request.query.end()), {}};
  }
  return ParseUrlEncoded(std::string_view(request.target).substr(q + 1));
}

// The parameters of a GET (query) or POST (form) request.
absl::StatusOr<std::map<std::string, std::string>> ParamsOf(const Request& request) {
  if (request.method == "POST") {
    const std::string type = absl::AsciiStrToLower(request.Header("content-type"));
    if (!type.starts_with("application/x-www-form-urlencoded")) {
      return absl::InvalidArgumentError("The form must be application/x-www-form-urlencoded.");
    }
    return ParseFormBody(request.body);
  }
  return std::map<std::string, std::string>(request.query.begin(), request.query.end());
}

}  // namespace

std::vector<Route> OidcRoutes(Services& services, OidcParts parts) {
  std::vector<Route> routes;
  Services& s = services;
  co::KeyManager& keys = parts.keys;
  co::Apps& apps = parts.apps;
  co::TokenService& tokens = parts.tokens;
  custos::authn::SignIn& sign_in = parts.sign_in;
  const std::string base = "/t/{tenant}/oauth2/v1";

  auto for_tenant = [&s](std::function<Response(Request&, const store::TenantRecord&)> fn) {
    return [&s, fn = std::move(fn)](Request& request) -> Response {
      absl::StatusOr<store::TenantRecord> tenant = ResolveTenant(s, request);
      if (!tenant.ok()) return ErrorResponse(tenant.status(), request);
      return fn(request, *tenant);
    };
  };

  // Records a refused authorization request (app.oauth2.as.authorize FAILURE). Bounded per
  // address like refused credentials: beyond the limit the refusal is answered without an event.
  auto record_refusal = [&s](const Request& request, const store::TenantRecord& tenant,
                             std::string_view client_id, std::string_view error) {
    if (!TakeRefusal(s, request).ok()) return;
    audit::RequestContext ctx = ContextFor(request);
    ctx.actor = {std::string(client_id.empty() ? "unknown" : client_id), "PublicClientApp",
                 std::string(client_id), ""};
    audit::EventSpec spec{.event_type = "app.oauth2.as.authorize",
                          .display_message = "OAuth 2.0 authorization request refused",
                          .severity = "WARN",
                          .outcome = std::string(audit::kFailure),
                          .reason = std::string(error)};
    absl::Status st = s.store.Write([&](store::Transaction& tx) {
      return tx.Events().Append(audit::MakeEvent(tenant.id, ctx, spec, s.clock, s.random)).status();
    });
    (void)st;  // the answer to the browser does not depend on it
  };

  // Issues a code for a signed-in session and redirects to the client.
  auto issue_code = [&tokens](const Request& request, const store::TenantRecord& tenant,
                              const AuthzRequest& req, const SessionInfo& session) -> Response {
    audit::RequestContext ctx = ContextFor(request);
    ctx.actor = {session.user.id.value(), "User", session.user.login, session.user.login};
    ctx.external_session_id = session.session.id.value();
    co::CodeGrant grant{.client_id = req.app.id,
                        .user_id = session.user.id,
                        .session_id = session.session.id,
                        .redirect_uri = req.Param("redirect_uri"),
                        .scope = absl::StrJoin(req.scopes, " "),
                        .nonce = req.Param("nonce"),
                        .code_challenge = req.Param("code_challenge"),
                        .code_challenge_method = req.Param("code_challenge_method"),
                        .dpop_jkt = req.Param("dpop_jkt"),
                        .auth_time = session.session.created,
                        .amr = session.session.amr};
    absl::StatusOr<std::string> code = tokens.IssueCode(tenant, ctx, grant);
    if (!code.ok()) return ErrorPage(500, "The sign-in could not be completed. Try again.");
    std::vector<std::pair<std::string, std::string>> params = {{"code", *code}};
    if (const std::string state = req.Param("state"); !state.empty()) {
      params.emplace_back("state", state);
    }
    params.emplace_back("iss", Issuer(request, tenant));
    return Redirect(WithQuery(req.Param("redirect_uri"), params), 303);
  };

  auto new_csrf = [&s]() { return crypto::Base64UrlEncode(s.random.Bytes(24)); };

  // GET|POST /authorize
  Handler authorize = for_tenant([&, record_refusal, issue_code, new_csrf](
                                     Request& request, const store::TenantRecord& tenant) {
    absl::StatusOr<AuthzParams> params = AuthzParamsOf(request);
    if (!params.ok()) return ErrorPage(400, std::string(params.status().message()));
    auto parsed = ParseAuthz(apps, tenant, params->values, params->repeated);
    if (auto* error = std::get_if<AuthzError>(&parsed)) {
      record_refusal(request, tenant, params->values["client_id"], error->error);
      if (!error->redirect) return ErrorPage(400, error->description);
      return Redirect(ErrorRedirect(request, tenant, params->values, *error));
    }
    const AuthzRequest& req = std::get<AuthzRequest>(parsed);
    std::optional<SessionInfo> session;
    if (const std::string token = CookieValue(request, api::authn::kSessionCookie);
        !token.empty()) {
      absl::StatusOr<SessionInfo> found = sign_in.ValidateSession(tenant.id, token);
      if (found.ok()) session = *std::move(found);
    }
    if (session.has_value() && req.max_age.has_value() &&
        s.clock.Now() - session->session.created > *req.max_age) {
      session.reset();
    }
    if (req.HasPrompt("none")) {
      if (!session.has_value()) {
        AuthzError error{.redirect = true,
                         .error = "login_required",
                         .description = "The user is not signed in"};
        record_refusal(request, tenant, req.app.id, error.error);
        return Redirect(ErrorRedirect(request, tenant, req.params, error));
      }
      return issue_code(request, tenant, req, *session);
    }
    if (session.has_value() && !req.HasPrompt("login")) {
      return issue_code(request, tenant, req, *session);
    }
    return LoginPage(request, tenant, req, new_csrf(), "", req.Param("login_hint"));
  });
  routes.push_back({"GET", base + "/authorize", authorize});
  routes.push_back({"POST", base + "/authorize", authorize});

  // The sign-in page's steps re-check the authorization request and the form's CSRF token.
  auto form_step =
      [&](Request& request, const store::TenantRecord& tenant,
          std::map<std::string, std::string>& form) -> std::variant<AuthzRequest, Response> {
    absl::StatusOr<std::map<std::string, std::string>> params = ParamsOf(request);
    if (!params.ok()) return ErrorPage(400, std::string(params.status().message()));
    form = *std::move(params);
    const std::string cookie = CookieValue(request, kCsrfCookie);
    if (cookie.empty() || !crypto::ConstantTimeEquals(cookie, form["csrf"])) {
      return ErrorPage(
          400, "This sign-in form has expired. Go back to the application and start again.");
    }
    auto parsed = ParseAuthz(apps, tenant, form);
    if (auto* error = std::get_if<AuthzError>(&parsed)) return ErrorPage(400, error->description);
    return std::get<AuthzRequest>(std::move(parsed));
  };

  auto finish_sign_in = [&, issue_code](Request& request, const store::TenantRecord& tenant,
                                        const AuthzRequest& req, const std::string& session_token,
                                        absl::Duration delay) -> Response {
    absl::StatusOr<SessionInfo> session = sign_in.ValidateSession(tenant.id, session_token);
    if (!session.ok()) return ErrorPage(500, "The sign-in could not be completed. Try again.");
    Response r = issue_code(request, tenant, req, *session);
    r.AddHeader("Set-Cookie", SessionCookie(request, tenant, session_token, false));
    r.delay = delay;
    return r;
  };

  routes.push_back(
      {"POST", base + "/login",
       for_tenant([&, form_step, finish_sign_in, new_csrf](Request& request,
                                                           const store::TenantRecord& tenant) {
         std::map<std::string, std::string> form;
         auto step = form_step(request, tenant, form);
         if (auto* page = std::get_if<Response>(&step)) return *page;
         const AuthzRequest& req = std::get<AuthzRequest>(step);
         AuthnAttempt attempt = sign_in.Authenticate(tenant.id, form["username"], form["password"],
                                                     ContextFor(request));
         if (!attempt.result.ok()) {
           Response r = LoginPage(request, tenant, req, new_csrf(),
                                  "Sign-in failed. Check your username and password, or ask "
                                  "your administrator if your account is locked.",
                                  form["username"]);
           r.delay = attempt.delay;
           return r;
         }
         if (attempt.result->status == AuthnStatus::kMfaRequired) {
           if (attempt.result->factors.empty()) {
             return ErrorPage(403, "Your account needs a second factor that this page cannot use.");
           }
           Response r = FactorPage(request, tenant, req, new_csrf(), attempt.result->token,
                                   attempt.result->factors.front().id.value(), "");
           r.delay = attempt.delay;
           return r;
         }
         return finish_sign_in(request, tenant, req, attempt.result->token, attempt.delay);
       })});

  routes.push_back(
      {"POST", base + "/login/factor",
       for_tenant([&, form_step, finish_sign_in, new_csrf](Request& request,
                                                           const store::TenantRecord& tenant) {
         std::map<std::string, std::string> form;
         auto step = form_step(request, tenant, form);
         if (auto* page = std::get_if<Response>(&step)) return *page;
         const AuthzRequest& req = std::get<AuthzRequest>(step);
         AuthnAttempt attempt =
             sign_in.VerifyFactor(tenant.id, form["state_token"], FactorId(form["factor_id"]),
                                  form["passcode"], ContextFor(request));
         if (!attempt.result.ok()) {
           if (absl::IsUnauthenticated(attempt.result.status()) ||
               absl::IsNotFound(attempt.result.status())) {
             // The state token expired or is unknown: start over with the password.
             Response r = LoginPage(request, tenant, req, new_csrf(),
                                    "The sign-in took too long. Sign in again.", "");
             r.delay = attempt.delay;
             return r;
           }
           Response r =
               FactorPage(request, tenant, req, new_csrf(), form["state_token"], form["factor_id"],
                          "That code is not valid. Try the current one.");
           r.delay = attempt.delay;
           return r;
         }
         if (attempt.result->status != AuthnStatus::kSuccess) {
           return ErrorPage(500, "The sign-in could not be completed. Try again.");
         }
         return finish_sign_in(request, tenant, req, attempt.result->token, attempt.delay);
       })});

  auto client_request = [](const Request& request, std::map<std::string, std::string> form) {
    return co::ClientRequest{.form = std::move(form),
                             .authorization = request.Header("authorization"),
                             .dpop = request.Header("dpop"),
                             .method = request.method,
                             .url = request.base_url + request.path};
  };
  auto form_of = [](const Request& request) -> absl::StatusOr<std::map<std::string, std::string>> {
    const std::string type = absl::AsciiStrToLower(request.Header("content-type"));
    if (!type.starts_with("application/x-www-form-urlencoded")) {
      return co::MakeOAuthError("invalid_request",
                                "Content-Type must be application/x-www-form-urlencoded");
    }
    absl::StatusOr<std::map<std::string, std::string>> form = ParseFormBody(request.body);
    if (!form.ok())
      return co::MakeOAuthError("invalid_request", std::string(form.status().message()));
    return form;
  };

  routes.push_back({"POST", base + "/token",
                    for_tenant([&, client_request, form_of](Request& request,
                                                            const store::TenantRecord& tenant) {
                      absl::StatusOr<std::map<std::string, std::string>> form = form_of(request);
                      if (!form.ok()) return OAuthErrorResponse(form.status(), request, "Basic");
                      absl::StatusOr<Json> answer =
                          tokens.Token(tenant, Issuer(request, tenant), ContextFor(request),
                                       client_request(request, *std::move(form)));
                      if (!answer.ok())
                        return OAuthErrorResponse(answer.status(), request, "Basic");
                      return JsonNoStore(200, *answer);
                    })});

  routes.push_back({"POST", base + "/introspect",
                    for_tenant([&, client_request, form_of](Request& request,
                                                            const store::TenantRecord& tenant) {
                      absl::StatusOr<std::map<std::string, std::string>> form = form_of(request);
                      if (!form.ok()) return OAuthErrorResponse(form.status(), request, "Basic");
                      absl::StatusOr<Json> answer =
                          tokens.Introspect(tenant, Issuer(request, tenant), ContextFor(request),
                                            client_request(request, *std::move(form)));
                      if (!answer.ok())
                        return OAuthErrorResponse(answer.status(), request, "Basic");
                      return JsonNoStore(200, *answer);
                    })});

  routes.push_back({"POST", base + "/revoke",
                    for_tenant([&, client_request, form_of](Request& request,
                                                            const store::TenantRecord& tenant) {
                      absl::StatusOr<std::map<std::string, std::string>> form = form_of(request);
                      if (!form.ok()) return OAuthErrorResponse(form.status(), request, "Basic");
                      absl::Status done =
                          tokens.Revoke(tenant, Issuer(request, tenant), ContextFor(request),
                                        client_request(request, *std::move(form)));
                      if (!done.ok()) return OAuthErrorResponse(done, request, "Basic");
                      Response r;
                      r.status = 200;
                      r.AddHeader("Cache-Control", "no-store");
                      return r;
                    })});

  // Userinfo: the access token in the Authorization header (Bearer or DPoP), or as the form
  // parameter access_token of a POST (RFC 6750 2.2).
  Handler userinfo = for_tenant([&](Request& request, const store::TenantRecord& tenant) {
    std::string scheme;
    std::string token;
    const std::string authorization = request.Header("authorization");
    if (const size_t space = authorization.find(' '); space != std::string::npos) {
      scheme = authorization.substr(0, space);
      token = std::string(absl::StripAsciiWhitespace(authorization.substr(space + 1)));
      if (absl::EqualsIgnoreCase(scheme, "bearer")) scheme = "Bearer";
      if (absl::EqualsIgnoreCase(scheme, "dpop")) scheme = "DPoP";
    } else if (request.method == "POST") {
      absl::StatusOr<std::map<std::string, std::string>> form = ParseFormBody(request.body);
      if (form.ok() && form->contains("access_token")) {
        scheme = "Bearer";
        token = (*form)["access_token"];
      }
    }
    auto unauthorized = [&](std::string_view error, std::string_view description) {
      Response r = JsonNoStore(
          401, error.empty() ? Json{{"error", "invalid_token"}, {"error_description", description}}
                             : Json{{"error", error}, {"error_description", description}});
      const std::string www_scheme = scheme == "DPoP" ? "DPoP" : "Bearer";
      r.AddHeader("WWW-Authenticate", error.empty()
                                          ? fmt::format("{} realm=\"custos\"", www_scheme)
                                          : fmt::format("{} realm=\"custos\", error=\"{}\", "
                                                        "error_description=\"{}\"",
                                                        www_scheme, error, description));
      return r;
    };
    if (token.empty() || (scheme != "Bearer" && scheme != "DPoP")) {
      return unauthorized("", "An access token is required");
    }
    absl::StatusOr<co::AccessToken> access = tokens.ValidateAccessToken(
        tenant, Issuer(request, tenant), scheme, token, request.Header("dpop"), request.method,
        request.base_url + request.path);
    if (!access.ok()) {
      std::optional<co::OAuthError> error = co::OAuthErrorOf(access.status());
      if (!error.has_value()) return ErrorResponse(access.status(), request);
      return unauthorized(error->error, error->description);
    }
    if (access->claims.value("client_id", "") == access->subject ||
        std::find(access->scopes.begin(), access->scopes.end(), co::kScopeOpenId) ==
            access->scopes.end()) {
      Response r =
          JsonNoStore(403, {{"error", "insufficient_scope"},
                            {"error_description", "The token has no openid scope for a user"}});
      r.AddHeader("WWW-Authenticate", "Bearer realm=\"custos\", error=\"insufficient_scope\"");
      return r;
    }
    absl::StatusOr<Json> claims =
        tokens.UserClaims(tenant, UserId(access->subject), access->scopes);
    if (!claims.ok()) return unauthorized("invalid_token", "The token's user no longer exists");
    return JsonNoStore(200, *claims);
  });
  routes.push_back({"GET", base + "/userinfo", userinfo});
  routes.push_back({"POST", base + "/userinfo", userinfo});

  // RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
  Handler logout = for_tenant([&](Request& request, const store::TenantRecord& tenant) {
    absl::StatusOr<std::map<std::string, std::string>> params = ParamsOf(request);
    if (!params.ok()) return ErrorPage(400, std::string(params.status().message()));
    std::string client_id = (*params)["client_id"];
    if (const std::string hint = (*params)["id_token_hint"]; !hint.empty()) {
      absl::StatusOr<co::VerifiedJwt> verified =
          co::VerifyJwt(hint, [&](const Json& header) -> absl::StatusOr<support::PublicJwk> {
            return keys.PublicKey(tenant.id, header.value("kid", ""));
          });
      if (!verified.ok() || verified->claims.value("iss", "") != Issuer(request, tenant)) {
        return ErrorPage(400, "The id_token_hint was not issued by this tenant.");
      }
      const Json& aud = verified->claims["aud"];
      std::string hinted = aud.is_string() ? aud.get<std::string>()
                           : (aud.is_array() && !aud.empty() && aud[0].is_string())
                               ? aud[0].get<std::string>()
                               : "";
      if (!client_id.empty() && client_id != hinted) {
        return ErrorPage(400, "client_id does not match the id_token_hint.");
      }
      client_id = hinted;
    }
    std::string redirect = (*params)["post_logout_redirect_uri"];
    if (!redirect.empty()) {
      if (client_id.empty()) {
        return ErrorPage(400, "post_logout_redirect_uri needs id_token_hint or client_id.");
      }
      absl::StatusOr<store::AppRecord> app = apps.Get(tenant.id, client_id);
      absl::StatusOr<co::AppSettings> settings =
          app.ok() ? co::SettingsOf(*app) : absl::StatusOr<co::AppSettings>(app.status());
      if (!settings.ok() || std::find(settings->post_logout_redirect_uris.begin(),
                                      settings->post_logout_redirect_uris.end(),
                                      redirect) == settings->post_logout_redirect_uris.end()) {
        return ErrorPage(400,
                         "The post_logout_redirect_uri is not registered for this application.");
      }
    }
    if (const std::string token = CookieValue(request, api::authn::kSessionCookie);
        !token.empty()) {
      absl::StatusOr<SessionInfo> session = sign_in.ValidateSession(tenant.id, token);
      if (session.ok()) {
        audit::RequestContext ctx = ContextFor(request);
        ctx.actor = {session->user.id.value(), "User", session->user.login, session->user.login};
        (void)tokens.RevokeSession(tenant, ctx, session->session.id);
        (void)sign_in.EndSession(tenant.id, token, ctx);
      }
    }
    Response r =
        redirect.empty()
            ? Page(200, "Signed out", "<h1>You are signed out</h1><p>You may close this page.</p>")
            : Redirect(
                  WithQuery(
                      redirect,
                      (*params)["state"].empty()
                          ? std::vector<std::pair<std::string, std::string>>{}
                          : std::vector<std::pair<std::string, std::string>>{{"state",
                                                                              (*params)["state"]}}),
                  303);
    r.AddHeader("Set-Cookie", SessionCookie(request, tenant, "", true));
    return r;
  });
  routes.push_back({"GET", base + "/logout", logout});
  routes.push_back({"POST", base + "/logout", logout});

  routes.push_back(
      {"GET", base + "/keys", for_tenant([&](Request& request, const store::TenantRecord& tenant) {
         absl::StatusOr<Json> jwks = keys.Jwks(tenant.id);
         if (!jwks.ok()) return ErrorResponse(jwks.status(), request);
         Response r = Response::MakeJson(200, *jwks);
         // Short enough that a rotation (published a day ahead) is seen in time.
         r.AddHeader("Cache-Control", "public, max-age=300");
         return r;
       })});

  // Key rotation by a tenant admin: the new key is published now and signs after the overlap.
  routes.push_back(
      {"POST", "/t/{tenant}/api/v1/oauth2/keys/rotate", [&s, &keys](Request& request) -> Response {
         return Respond(request, [&]() -> absl::StatusOr<Response> {
           ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(s, request));
           ASSIGN_OR_RETURN(audit::RequestContext ctx, AuthenticateAdmin(s, request, tenant));
           std::string alg(co::kAlgEs256);
           if (!request.body.empty()) {
             ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
             for (const auto& [key, value] : body.items()) {
               if (key != "alg") {
                 return ValidationError("Api validation failed: body",
                                        {fmt::format("{}: unknown property", key)});
               }
             }
             if (body.contains("alg")) {
               if (!body["alg"].is_string() ||
                   (body["alg"] != co::kAlgEs256 && body["alg"] != co::kAlgEdDsa)) {
                 return ValidationError("Api validation failed: alg",
                                        {"alg: must be \"ES256\" or \"EdDSA\""});
               }
               alg = body["alg"].get<std::string>();
             }
           }
           ASSIGN_OR_RETURN(store::OidcKeyRecord key, keys.Rotate(ctx, tenant.id, alg));
           Json view = Json::parse(key.public_jwk, nullptr, false);
           return Response::MakeJson(200, {{"kid", key.kid},
                                           {"alg", key.alg},
                                           {"created", FormatRfc3339(key.created)},
                                           {"activates", FormatRfc3339(key.activates)},
                                           {"jwk", view}});
         }());
       }});

  routes.push_back(
      {"GET", "/t/{tenant}/.well-known/openid-configuration",
       for_tenant([](Request& request, const store::TenantRecord& tenant) {
         const std::string issuer = Issuer(request, tenant);
         const std::string o = issuer + "/oauth2/v1";
         Json doc = {
             {"issuer", issuer},
             {"authorization_endpoint", o + "/authorize"},
             {"token_endpoint", o + "/token"},
             {"userinfo_endpoint", o + "/userinfo"},
             {"jwks_uri", o + "/keys"},
             {"end_session_endpoint", o + "/logout"},
             {"introspection_endpoint", o + "/introspect"},
             {"revocation_endpoint", o + "/revoke"},
             {"response_types_supported", {"code"}},
             {"response_modes_supported", {"query"}},
             {"grant_types_supported",
              {"authorization_code", "refresh_token", "client_credentials"}},
             {"subject_types_supported", {"public"}},
             {"id_token_signing_alg_values_supported", {"ES256", "EdDSA"}},
             {"userinfo_signing_alg_values_supported", Json::array()},
             {"token_endpoint_auth_methods_supported",
              {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}},
             {"token_endpoint_auth_signing_alg_values_supported", {"ES256", "EdDSA"}},
             {"introspection_endpoint_auth_methods_supported",
              {"client_secret_basic", "client_secret_post", "private_key_jwt"}},
             {"revocation_endpoint_auth_methods_supported",
              {"client_secret_basic", "client_secret_post", "private_key_jwt", "none"}},
             {"scopes_supported", {"openid", "profile", "email", "offline_access"}},
             {"claims_supported",
              {"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "amr", "sid", "name",
               "given_name", "family_name", "preferred_username", "locale", "zoneinfo",
               "updated_at", "email", "email_verified"}},
             {"code_challenge_methods_supported", {"S256"}},
             {"dpop_signing_alg_values_supported", {"ES256", "EdDSA"}},
             {"prompt_values_supported", {"none", "login"}},
             {"request_parameter_supported", false},
             {"request_uri_parameter_supported", false},
             {"claims_parameter_supported", false},
             {"authorization_response_iss_parameter_supported", true},
         };
         Response r = Response::MakeJson(200, doc);
         r.AddHeader("Cache-Control", "public, max-age=300");
         return r;
       })});
  return routes;
}

}  // namespace custos::api::oidc
