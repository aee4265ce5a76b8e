#pragma once

// OpenID Connect client applications of a tenant, as Okta-style app objects
// (`/t/{tenant}/api/v1/apps`):
//
//   {"id":"0oa…","name":"oidc_client","label":"Payroll","status":"ACTIVE",
//    "signOnMode":"OPENID_CONNECT","created":…,"lastUpdated":…,
//    "credentials":{"oauthClient":{"client_id":"0oa…","token_endpoint_auth_method":"client_secret_basic",
//                                  "client_secret":"…"   (only in the answer that made it)}},
//    "settings":{"oauthClient":{"application_type":"web",
//                               "redirect_uris":["https://payroll.example/cb"],
//                               "post_logout_redirect_uris":[…],
//                               "response_types":["code"],
//                               "grant_types":["authorization_code","refresh_token"],
//                               "jwks":{"keys":[…]},            (private_key_jwt only)
//                               "id_token_signed_response_alg":"ES256",   (or "EdDSA")
//                               "token_lifetimes":{"access_token":"1h","id_token":"1h",
//                                                  "refresh_token":"720h"}}}}
//
// Rules: application_type web (confidential; client_secret_basic, client_secret_post or
// private_key_jwt), browser and native (public; "none", PKCE S256 required), service
// (confidential; client_credentials only). redirect_uris are absolute URLs without fragment,
// compared exactly; https except http on loopback hosts, and custom schemes for native apps;
// required when authorization_code is allowed. grant_types ⊆ {authorization_code,
// refresh_token, client_credentials}; client_credentials only for confidential apps;
// refresh_token only with authorization_code. response_types ["code"] when authorization_code is
// allowed, else []. private_key_jwt needs jwks with at least one ES256/EdDSA public key (RS256
// is not accepted). id_token_signed_response_alg (the RFC 7591 / OIDC Registration name) picks the
// tenant key that signs the app's ID tokens: "ES256" (default) or "EdDSA"; access tokens are
// always ES256. Lifetimes: access and ID tokens 5m..24h, refresh tokens 1h..90d. Unknown members
// are refused.
//
// Client secrets are 32 random bytes, base64url, shown once; only their SHA-256 is stored.
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "common/clock.h"
#include "common/json.h"
#include "crypto/random.h"
#include "store/records.h"
#include "store/store.h"
#include "support/jwk.h"

namespace custos::oidc {

inline constexpr std::string_view kGrantAuthorizationCode = "authorization_code";
inline constexpr std::string_view kGrantRefreshToken = "refresh_token";
inline constexpr std::string_view kGrantClientCredentials = "client_credentials";

inline constexpr std::string_view kAuthBasic = "client_secret_basic";
inline constexpr std::string_view kAuthPost = "client_secret_post";
inline constexpr std::string_view kAuthPrivateKeyJwt = "private_key_jwt";
inline constexpr std::string_view kAuthNone = "none";

// AppRecord::settings_json, parsed.
struct AppSettings {
  std::string application_type;  // "web", "browser", "native", "service"
  std::vector<std::string> redirect_uris;
  std::vector<std::string> post_logout_redirect_uris;
  std::vector<std::string> response_types;
  std::vector<std::string> grant_types;
  Json jwks;                                           // {"keys":[...]} or null
  std::string id_token_signed_response_alg = "ES256";  // or "EdDSA"
  absl::Duration access_token_lifetime = absl::Hours(1);
  absl::Duration id_token_lifetime = absl::Hours(1);
  absl::Duration refresh_token_lifetime = absl::Hours(24 * 30);

  bool Allows(std::string_view grant_type) const;
  bool IsPublic() const { return application_type == "browser" || application_type == "native"; }
};

// Parses settings_json (as written by Apps); kInternal when the stored text is corrupt.
absl::StatusOr<AppSettings> SettingsOf(const store::AppRecord& app);

// The client's public keys for private_key_jwt. kNotFound for an unknown kid.
absl::StatusOr<support::PublicJwk> ClientKey(const AppSettings& settings, const Json& jwt_header);

// The app object above; `client_secret` only when just issued.
Json AppView(const store::AppRecord& app, const AppSettings& settings,
             const std::optional<std::string>& client_secret, std::string_view base_url);

struct IssuedApp {
  store::AppRecord app;
  AppSettings settings;
  std::optional<std::string> client_secret;  // confidential clients with a secret only
};

class Apps {
 public:
  Apps(store::Store& store, const Clock& clock, crypto::Random& random);

  // From the request body above (POST /api/v1/apps). Validation errors (E0000001) name the
  // member. Event application.lifecycle.create.
  absl::StatusOr<IssuedApp> Create(const TenantId& tenant, const audit::RequestContext& ctx,
                                   const Json& body);
  absl::StatusOr<store::AppRecord> Get(const TenantId& tenant, std::string_view id);
  absl::StatusOr<std::vector<store::AppRecord>> List(const TenantId& tenant,
                                                     const store::Page& page);
  // Replaces label and settings (PUT); the auth method may change (a secret is issued when the
  // new method needs one and there was none). Event application.lifecycle.update.
  absl::StatusOr<IssuedApp> Replace(const TenantId& tenant, const audit::RequestContext& ctx,
                                    std::string_view id, const Json& body);
  // ACTIVE <-> INACTIVE (events application.lifecycle.activate / deactivate); an INACTIVE app
  // gets no tokens and its refresh tokens stop working.
  absl::StatusOr<store::AppRecord> SetStatus(const TenantId& tenant,
                                             const audit::RequestContext& ctx, std::string_view id,
                                             bool active);
  // Only an INACTIVE app may be deleted (E0000038 otherwise). Event application.lifecycle.delete.
  absl::Status Delete(const TenantId& tenant, const audit::RequestContext& ctx,
                      std::string_view id);
  // A new client secret, shown once; the old one stops working. Event
  // application.client_secret.rotate (Custos's own type).
  absl::StatusOr<IssuedApp> NewSecret(const TenantId& tenant, const audit::RequestContext& ctx,
                                      std::string_view id);

  // A number that grows after every app write made through this object has committed (Create,
  // Replace, SetStatus, Delete, NewSecret), whatever the tenant. A cache of app records reuses
  // a copy only while this number is the one it read before reading the copy, so that a change
  // made in this process takes effect at once; writes by other processes do not move it.
  uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  // store_.Write, then moves Generation() on (once the transaction has ended, so that a reader
  // who sees the new number reads the new record).
  absl::Status Write(absl::FunctionRef<absl::Status(store::Transaction&)> fn);

  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace custos::oidc
