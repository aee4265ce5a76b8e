#pragma once

// The token side of a tenant's OpenID Connect provider (issuer `<base>/t/<tenant>`):
// authorization codes, the token endpoint (authorization_code with PKCE, refresh_token with
// rotation and reuse detection, client_credentials), client authentication
// (client_secret_basic, client_secret_post, private_key_jwt, none for public clients), ID tokens
// and RFC 9068 JWT access tokens (optionally DPoP-bound, RFC 9449: cnf.jkt and token_type DPoP),
// introspection (RFC 7662), revocation (RFC 7009) and access-token validation for userinfo.
//
// Access tokens are signed with the tenant's ES256 key, ID tokens with its key of the app's
// id_token_signed_response_alg (ES256 or EdDSA). A code exchange issues a refresh token only when
// the granted scope has offline_access and the app allows the refresh_token grant. A refresh
// token family lives until it expires, is revoked, or its user stops being ACTIVE; the directory
// revokes a user's refresh tokens whenever it ends all of the user's sessions (suspension,
// deactivation, password reset, an admin clearing the sessions). A refresh by a user no longer
// ACTIVE revokes the family (app.oauth2.as.token.revoke). A LOCKED_OUT user's refresh
// tokens are refused without being revoked. A user token whose user is not ACTIVE is inactive at
// introspection and invalid_token at userinfo.
//
// Errors are RFC 6749 section 5.2 errors: a status whose OAuthErrorOf() gives the error code
// ("invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
// "unsupported_grant_type", "invalid_scope", "invalid_dpop_proof", "invalid_token"), the
// description and the HTTP status (400; 401 for invalid_client and invalid_token, which the
// HTTP layer answers with WWW-Authenticate).
//
// Events (in the tenant's log, one per decision): app.oauth2.as.authorize.code (a code issued),
// app.oauth2.as.token.grant (a token response: which tokens, grant type, client, subject; or a
// refusal, FAILURE with the error code as reason), app.oauth2.as.token.detect_reuse (a rotated
// refresh token or a used code presented again: the family is revoked, WARN),
// app.oauth2.as.token.revoke, app.oauth2.as.token.introspect only when refused (a successful
// introspection is a read). No token, code, secret or assertion ever reaches an event.
//
// Thread-safe.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/json.h"
#include "common/rate_limiter.h"
#include "crypto/random.h"
#include "directory/directory.h"
#include "oidc/apps.h"
#include "oidc/keys.h"
#include "store/records.h"
#include "store/store.h"
#include "support/dpop.h"

namespace custos::oidc {

struct OAuthError {
  std::string error;
  std::string description;
  int http_status = 400;
};
absl::Status MakeOAuthError(std::string_view error, std::string description, int http_status = 400);
// nullopt for a status that is not an OAuth error (an internal failure).
std::optional<OAuthError> OAuthErrorOf(const absl::Status& status);

// The scopes Custos knows; others are refused (invalid_scope) for user flows. client_credentials
// takes any scope the app lists... (none yet: only the empty scope or these).
inline constexpr std::string_view kScopeOpenId = "openid";
inline constexpr std::string_view kScopeProfile = "profile";
inline constexpr std::string_view kScopeEmail = "email";
inline constexpr std::string_view kScopeOfflineAccess = "offline_access";

// A request to an endpoint that authenticates the client.
struct ClientRequest {
  std::map<std::string, std::string> form;  // the decoded form body
  std::string authorization;                // the Authorization header (client_secret_basic)
  std::string dpop;                         // the DPoP header, when any
  std::string method;                       // "POST"
  std::string url;  // the endpoint's absolute URL (DPoP htu; private_key_jwt audience)
};

// What the authorization endpoint hands over once the user is signed in and the request valid.
struct CodeGrant {
  std::string client_id;
  UserId user_id;
  SessionId session_id;
  std::string redirect_uri;
  std::string scope;
  std::string nonce;
  std::string code_challenge;
  std::string code_challenge_method;
  std::string dpop_jkt;  // from the authorization request's dpop_jkt parameter, when given
  absl::Time auth_time;
  std::string amr;
};

// A valid access token, as userinfo sees it.
struct AccessToken {
  Json claims;          // iss, sub, aud, exp, iat, jti, client_id, scope, (cnf)
  std::string subject;  // a user id, or the client id for client_credentials
  std::vector<std::string> scopes;
};

struct TokenOptions {
  absl::Duration code_lifetime = absl::Minutes(1);
  absl::Duration client_assertion_max_age = absl::Minutes(5);
  // How long an app record read for client authentication is reused, at most. A change made
  // through the Apps object the service was given (this process) ends the reuse at once
  // (Apps::Generation); this bound is for changes made by another process sharing the store: a
  // deactivation or a new client secret made there takes effect within this time for
  // client_credentials, introspection and revocation. The authorization_code and refresh_token
  // grants read the app again in their transaction, so they stop at once in any case.
  absl::Duration app_cache_ttl = absl::Seconds(5);
  // Refused requests recorded per client address (ctx.ip_address); beyond it a refusal is
  // answered the same but leaves no event, so that one address cannot flood the permanent log.
  // nullptr: every refusal is recorded.
  RateLimit* refusal_limiter = nullptr;
  // Where the jti of each accepted client assertion (RFC 7523) is remembered until the assertion
  // could no longer be accepted, keyed "<tenant id>/<client id>": with several processes on one
  // store, a store-backed cache, so that an assertion used on one node is refused on the others.
  // nullptr: a cache in this process's memory (100 000 entries). An error of the cache refuses
  // the request (fails closed).
  support::DpopReplayCache* assertion_replay_cache = nullptr;
};

class TokenService {
 public:
  // References must outlive the service.
  TokenService(store::Store& store, const Clock& clock, crypto::Random& random, KeyManager& keys,
               Apps& apps, directory::Directory& directory, support::DpopVerifier& dpop,
               TokenOptions options = {});

  // A one-time code for `grant` (event app.oauth2.as.authorize.code). The caller has checked
  // the client, redirect URI, scope and PKCE parameters.
  absl::StatusOr<std::string> IssueCode(const store::TenantRecord& tenant,
                                        const audit::RequestContext& ctx, const CodeGrant& grant);

  // POST /oauth2/v1/token. `issuer` is `<base>/t/<tenant>`. Returns the token response:
  // {"access_token","token_type":"Bearer"|"DPoP","expires_in","scope",("id_token"),
  //  ("refresh_token")}. A DPoP proof that cannot be checked for replay (the replay cache's
  // store does not answer) is refused with temporarily_unavailable (503), the detail only in the
  // server log.
  absl::StatusOr<Json> Token(const store::TenantRecord& tenant, std::string_view issuer,
                             const audit::RequestContext& ctx, const ClientRequest& request);

  // POST /oauth2/v1/introspect (client authenticated; `token`, optional `token_type_hint`).
  // {"active":false} for anything unknown, expired, revoked or of another client's tenant, a
  // token whose user is not ACTIVE, and a refresh token whose session has ended.
  absl::StatusOr<Json> Introspect(const store::TenantRecord& tenant, std::string_view issuer,
                                  const audit::RequestContext& ctx, const ClientRequest& request);

  // POST /oauth2/v1/revoke (client authenticated). Unknown tokens are not an error (RFC 7009
  // 2.2); a token of another client is not revoked (and not an error either).
  absl::Status Revoke(const store::TenantRecord& tenant, std::string_view issuer,
                      const audit::RequestContext& ctx, const ClientRequest& request);

  // Validates an access token presented to userinfo: signature by one of the tenant's keys,
  // iss, exp, not revoked, typ at+jwt; a DPoP-bound token only with scheme "DPoP" and a valid
  // proof (`dpop`, for `method` and `url`) by the bound key; a Bearer token with scheme
  // "Bearer"; a user's token only while the user is ACTIVE. invalid_token (401) otherwise;
  // kUnavailable, not an OAuth error, when the DPoP proof cannot be checked for replay (the
  // proof is refused; the message names no internal detail).
  absl::StatusOr<AccessToken> ValidateAccessToken(const store::TenantRecord& tenant,
                                                  std::string_view issuer, std::string_view scheme,
                                                  std::string_view token, std::string_view dpop,
                                                  std::string_view method, std::string_view url);

  // The OIDC claims of a user for `scopes` (sub always; profile: name, given_name, family_name,
  // preferred_username, locale, zoneinfo, updated_at; email: email, email_verified).
  absl::StatusOr<Json> UserClaims(const store::TenantRecord& tenant, const UserId& user,
                                  const std::vector<std::string>& scopes);

  // Revokes every refresh token of a session (RP-initiated logout). Event
  // app.oauth2.as.token.revoke when any were.
  absl::Status RevokeSession(const store::TenantRecord& tenant, const audit::RequestContext& ctx,
                             const SessionId& session);

 private:
  struct AppEntry;  // an app record, its parsed settings and when it was read
  struct Client;    // an authenticated client
  struct Proof;     // the DPoP proof of a token request, when there was one

  absl::StatusOr<std::shared_ptr<const AppEntry>> LoadApp(const TenantId& tenant,
                                                          std::string_view client_id);
  absl::StatusOr<Client> Authenticate(const store::TenantRecord& tenant, std::string_view issuer,
                                      const ClientRequest& request);
  absl::Status VerifyAssertion(const TenantId& tenant, std::string_view issuer,
                               const ClientRequest& request, const AppEntry& app,
                               std::string_view assertion);
  // The claims of a valid access token of this tenant (signature, typ, iss, aud, exp and, when
  // `check_revoked`, not revoked by jti or family and, for a user's token, the user ACTIVE: one
  // read transaction). invalid_token otherwise.
  absl::StatusOr<Json> CheckAccessToken(const store::TenantRecord& tenant, std::string_view issuer,
                                        std::string_view token, bool check_revoked);
  absl::StatusOr<Json> ExchangeCode(const store::TenantRecord& tenant, std::string_view issuer,
                                    const audit::RequestContext& ctx, const ClientRequest& request,
                                    const Client& client, const Proof& proof);
  absl::StatusOr<Json> Refresh(const store::TenantRecord& tenant, std::string_view issuer,
                               const audit::RequestContext& ctx, const ClientRequest& request,
                               const Client& client, const Proof& proof);
  absl::StatusOr<Json> ClientCredentials(const store::TenantRecord& tenant, std::string_view issuer,
                                         const audit::RequestContext& ctx,
                                         const ClientRequest& request, const Client& client,
                                         const Proof& proof);
  // Records a refusal (FAILURE, the OAuth error code as reason) in its own transaction and
  // returns `error`.
  absl::Status Refuse(const store::TenantRecord& tenant, const audit::RequestContext& ctx,
                      std::string_view event_type, const audit::Principal& actor,
                      std::map<std::string, std::string> debug, absl::Status error);
  store::EventRecord Event(const TenantId& tenant, const audit::RequestContext& ctx,
                           const audit::Principal& actor, audit::EventSpec spec);

  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
  KeyManager& keys_;
  Apps& apps_;
  directory::Directory& directory_;
  support::DpopVerifier& dpop_;
  const TokenOptions options_;

  absl::Mutex apps_mu_;
  // "<tenant id>/<client id>" -> the app as last read.
  absl::flat_hash_map<std::string, std::shared_ptr<const AppEntry>> app_cache_
      ABSL_GUARDED_BY(apps_mu_);
  // Owned when options_.assertion_replay_cache is nullptr.
  std::unique_ptr<support::DpopReplayCache> own_assertion_cache_;
  support::DpopReplayCache* assertion_cache_;
};

}  // namespace custos::oidc
