#pragma once

// What every handler needs: the services it calls, tenant resolution, caller authentication,
// body parsing and error rendering in the management API's shape:
//   {"errorCode": "E0000007", "errorSummary": "...", "errorLink": "E0000007",
//    "errorId": "oae...", "errorCauses": [{"errorSummary": "..."}]}

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "api/http_types.h"
#include "audit/event.h"
#include "authn/sign_in.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"
#include "common/rate_limiter.h"
#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::api {

// References to the long-lived services, owned by `custos serve`. Every member outlives the
// handlers; all are thread-safe.
struct Services {
  store::Store& store;
  const Config& config;
  const Clock& clock;
  crypto::Random& random;
  const crypto::PasswordHasher& hasher;
  const crypto::Sealer& sealer;
  // Refused credentials (unknown API or provider tokens) per client address. Each refusal is a
  // System Log event, and log entries are never deleted: beyond this limit a refusal is
  // answered 429 without an event. nullptr: no limit.
  RateLimit* refused_auth_limiter = nullptr;
  // Validates the Bearer session tokens of console admins (AuthenticateAdmin). nullptr: a
  // Bearer credential is refused like an unknown API token.
  ::custos::authn::SignIn* sign_in = nullptr;
};

// kResourceExhausted (429 E0000047) when `request`'s address has used up its refusals;
// OK otherwise (also when there is no limiter). Takes one refusal.
absl::Status TakeRefusal(Services& services, const Request& request);

// Looks up the tenant named by the {tenant} path parameter. kNotFound (E0000007) otherwise.
absl::StatusOr<store::TenantRecord> ResolveTenant(Services& services, const Request& request);

// The request context for events: ip, user agent, request id, url (query dropped).
audit::RequestContext ContextFor(const Request& request);

// The token of `Authorization: SSWS <token>` (scheme matched without regard to case); empty when
// the header is missing, of another scheme, or longer than any token could be.
std::string SswsToken(const Request& request);

// The token of `Authorization: Bearer <token>` (scheme matched without regard to case); empty
// when the header is missing, of another scheme, or longer than any token could be.
std::string BearerToken(const Request& request);

// True when `Authorization` names the Bearer scheme (without regard to case), whatever follows:
// also when BearerToken refuses the token as too long.
bool IsBearer(const Request& request);

// The event of every decision on a console admin's session (docs/console.md).
inline constexpr std::string_view kEventAccessAdminApp = "user.session.access_admin_app";

// The header (value "1") with which the console marks the requests it makes on its own (polls):
// they are authenticated as usual but do not count as the user's activity, so the session's
// idle timeout runs on.
inline constexpr std::string_view kBackgroundHeader = "X-Custos-Background";

// SessionUse::kBackground when `request` carries kBackgroundHeader with the value "1",
// kActivity otherwise. For every check of a session token a request presents.
::custos::authn::SessionUse SessionUseOf(const Request& request);

// A console admin, as AuthenticateConsoleAdmin finds them.
struct ConsoleAdmin {
  ::custos::authn::SessionInfo session;
  std::string display_name;  // "First Last", or the login
  // The request's context with the user as actor and the session as external_session_id.
  audit::RequestContext ctx;
};

// Checks `Authorization: Bearer <session token>` for a console admin of `tenant`: the session
// must be live (SignIn::ValidateSession, which also records its use unless SessionUseOf says
// background), have been made with a second factor (amr holds a method besides "pwd"), and belong
// to an ACTIVE member of the tenant's group named config.console_admin_group. A refusal takes one
// refusal (TakeRefusal; beyond the limit 429 without an event), records kEventAccessAdminApp with
// the user as actor where the session names one, and returns:
//   - kUnauthenticated E0000011 for a missing, unknown or ended session (outcome FAILURE, reason
//     MISSING_CREDENTIALS, INVALID_SESSION, SESSION_EXPIRED or USER_NOT_ACTIVE);
//   - kPermissionDenied E0000006 for a user outside the group (DENY, reason NOT_ADMIN) or a
//     session without a second factor (DENY, reason MFA_REQUIRED).
// With `record_success`, a success records kEventAccessAdminApp SUCCESS (signing in to the
// console); otherwise a success leaves no event (the console's reads and polls).
absl::StatusOr<ConsoleAdmin> AuthenticateConsoleAdmin(Services& services,
                                                      ::custos::authn::SignIn& sign_in,
                                                      const Request& request,
                                                      const store::TenantRecord& tenant,
                                                      bool record_success);

// Authenticates an administrator of `tenant`. `Authorization: Bearer <session token>` is a console
// admin's session (AuthenticateConsoleAdmin, without a success event; needs services.sign_in),
// allowed every call. Otherwise `Authorization: SSWS <token>` is checked against the tenant's API
// tokens: on success returns the context with the token as actor; on failure records a
// refused-attempt event and returns kUnauthenticated (E0000011 "Invalid token provided").
// `scope` is what the call needs: an admin token may do everything; a log-read token only calls
// that need store::kScopeLogRead (otherwise kPermissionDenied, E0000006, also recorded as a
// refused attempt).
absl::StatusOr<audit::RequestContext> AuthenticateAdmin(
    Services& services, const Request& request, const store::TenantRecord& tenant,
    std::string_view scope = store::kScopeAdmin);

// The built-in provider tenant. kNotFound (E0000007) when the store has none.
absl::StatusOr<store::TenantRecord> ProviderTenant(Services& services);

// Route wrappers: `fn` runs only for an authenticated caller, and whatever it returns (or the
// refusal) is rendered by Respond.
using ProviderAdminFn = std::function<absl::StatusOr<Response>(Request&, audit::RequestContext&)>;
using TenantAdminFn = std::function<absl::StatusOr<Response>(Request&, const store::TenantRecord&,
                                                             audit::RequestContext&)>;
// A provider admin: an admin API token of the provider tenant, or the Bearer session of a console
// admin of the provider tenant (its security team; operators are not in that group).
Handler ProviderAdmin(Services& services, ProviderAdminFn fn);
// A tenant admin: the tenant first (404 before any authentication), then an admin API token of
// that tenant or the Bearer session of one of its console admins.
Handler TenantAdmin(Services& services, TenantAdminFn fn);

// Parses the body as a JSON object. E0000003 when it is not JSON or its Content-Type is not
// application/json, E0000001 when it is not an object.
absl::StatusOr<Json> ParseObjectBody(const Request& request);

// Renders `status` as an error response; kInternal details are logged, never sent.
Response ErrorResponse(const absl::Status& status, const Request& request);

// The HTTP status for an absl::StatusCode.
int HttpStatusFor(absl::StatusCode code);

// A handler body that returns either a response or a status; errors are rendered.
Response Respond(const Request& request, const absl::StatusOr<Response>& result);

// The host part of every log origin: the public base URL without its scheme ("id.example.com",
// "127.0.0.1:8080").
std::string LogHost(std::string_view base_url);

// Parses `limit` (default `def`, 1..max) and reports a clear validation error otherwise.
absl::StatusOr<int> ParseLimit(const Request& request, int def, int max);

// Builds `Link: <base/path?limit=..&after=..>; rel="next"` (and rel="self") headers.
void AddPagingLinks(Response& response, const Request& request, const std::string& next_after);

// Parses an application/x-www-form-urlencoded body; a repeated name is an error (RFC 6749 3.2
// forbids repeating token request parameters), as is a malformed percent-encoding.
absl::StatusOr<std::map<std::string, std::string>> ParseFormBody(std::string_view body);

// The value of cookie `name`; empty when the request has none.
std::string CookieValue(const Request& request, std::string_view name);

}  // namespace custos::api
