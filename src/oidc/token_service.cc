#include "oidc/token_service.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "oidc/jwt.h"

namespace custos::oidc {

using store::Transaction;

namespace {

constexpr char kOAuthErrorUrl[] = "custos/oauth-error";
constexpr char kOAuthHttpStatusUrl[] = "custos/oauth-http-status";
// Why a client authentication failed, for the event only: the client is told less.
constexpr char kOAuthCauseUrl[] = "custos/oauth-cause";

constexpr std::string_view kEventCode = "app.oauth2.as.authorize.code";
constexpr std::string_view kEventGrant = "app.oauth2.as.token.grant";
constexpr std::string_view kEventReuse = "app.oauth2.as.token.detect_reuse";
constexpr std::string_view kEventRevoke = "app.oauth2.as.token.revoke";
constexpr std::string_view kEventIntrospect = "app.oauth2.as.token.introspect";

constexpr std::string_view kAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
constexpr std::string_view kTokenPath = "/oauth2/v1/token";
constexpr std::string_view kFamilyPrefix = "family:";
// The private access-token claim naming the grant (refresh-token family) it came from, so that
// revoking the family (code reuse, refresh-token reuse, RFC 7009) also ends its access tokens.
constexpr char kFamilyClaim[] = "family_id";

// A revoked family stays recorded as long as any token of it could still be valid: the longest
// refresh-token lifetime an app may have (oidc/apps.h), and a day for access tokens issued last.
constexpr absl::Duration kFamilyRevocationTtl = absl::Hours(24 * 91);
// Client clocks run a little ahead of ours at times.
constexpr absl::Duration kAssertionSkew = absl::Seconds(60);
constexpr size_t kMaxAssertionJtis = 100'000;
constexpr size_t kMaxCachedApps = 10'000;
constexpr size_t kMaxClientIdLength = 128;
constexpr size_t kMaxJtiLength = 256;
constexpr size_t kMaxScopeLength = 2048;

absl::StatusCode CodeForHttp(int http_status) {
  switch (http_status) {
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return http_status >= 500 ? absl::StatusCode::kInternal : absl::StatusCode::kInvalidArgument;
  }
}

absl::Status InvalidRequest(std::string description) {
  return MakeOAuthError("invalid_request", std::move(description));
}
absl::Status InvalidGrant(std::string description) {
  return MakeOAuthError("invalid_grant", std::move(description));
}
absl::Status InvalidScope(std::string description) {
  return MakeOAuthError("invalid_scope", std::move(description));
}
absl::Status InvalidToken(std::string description) {
  return MakeOAuthError("invalid_token", std::move(description), 401);
}
// Failed client authentication. The client learns only that it failed; `cause` goes to the
// event.
absl::Status InvalidClient(std::string_view cause,
                           std::string description = "client authentication failed") {
  absl::Status status = MakeOAuthError("invalid_client", std::move(description), 401);
  status.SetPayload(kOAuthCauseUrl, absl::Cord(std::string(cause)));
  return status;
}

std::string CauseOf(const absl::Status& status) {
  auto p = status.GetPayload(kOAuthCauseUrl);
  return p ? std::string(*p) : std::string();
}

std::string Param(const std::map<std::string, std::string>& form, const std::string& name) {
  auto it = form.find(name);
  return it == form.end() ? std::string() : it->second;
}

bool Has(const std::map<std::string, std::string>& form, const std::string& name) {
  return form.find(name) != form.end();
}

std::vector<std::string> SplitScope(std::string_view scope) {
  return absl::StrSplit(std::string(scope), ' ', absl::SkipEmpty());
}

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
bool IsScopeToken(std::string_view token) {
  if (token.empty()) return false;
  for (unsigned char c : token) {
    if (c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E) return false;
  }
  return true;
}

// The scope tokens of a request, each once, in the order given.
absl::StatusOr<std::vector<std::string>> ParseScope(std::string_view scope) {
  if (scope.size() > kMaxScopeLength) return InvalidScope("scope too long");
  std::vector<std::string> tokens;
  for (std::string& token : SplitScope(scope)) {
    if (!IsScopeToken(token)) return InvalidScope("scope is not a list of scope tokens");
    if (!Contains(tokens, token)) tokens.push_back(std::move(token));
  }
  return tokens;
}

// RFC 7636 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
bool IsCodeVerifier(std::string_view verifier) {
  if (verifier.size() < 43 || verifier.size() > 128) return false;
  for (char c : verifier) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_' &&
        c != '~') {
      return false;
    }
  }
  return true;
}

// application/x-www-form-urlencoded decoding ('+' is a space); nullopt for a bad escape.
std::optional<std::string> FormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
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

bool StartsWithScheme(std::string_view header, std::string_view scheme) {
  return header.size() > scheme.size() && header[scheme.size()] == ' ' &&
         absl::EqualsIgnoreCase(std::string(header.substr(0, scheme.size())), std::string(scheme));
}

struct BasicCredentials {
  std::string id;
  std::string secret;
};

// RFC 6749 2.3.1: Basic credentials whose id and secret are each form-urlencoded.
std::optional<BasicCredentials> ParseBasic(std::string_view header) {
  std::string_view encoded = header.substr(6);
  while (!encoded.empty() && encoded.front() == ' ') encoded.remove_prefix(1);
  std::optional<std::string> decoded = crypto::Base64Decode(encoded);
  if (!decoded) {
    // Some clients leave out the padding.
    std::string padded(encoded);
    while (padded.size() % 4 != 0) padded += '=';
    decoded = crypto::Base64Decode(padded);
  }
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::optional<std::string> id = FormDecode(std::string_view(*decoded).substr(0, colon));
  std::optional<std::string> secret = FormDecode(std::string_view(*decoded).substr(colon + 1));
  if (!id || !secret || id->empty()) return std::nullopt;
  return BasicCredentials{*std::move(id), *std::move(secret)};
}

// The claims of a compact JWT, read without checking anything (to learn who claims to have
// signed it before its key can be looked up).
std::optional<Json> UnverifiedClaims(std::string_view jwt) {
  std::vector<std::string> parts = absl::StrSplit(std::string(jwt), '.');
  if (parts.size() != 3) return std::nullopt;
  std::optional<std::string> payload = crypto::Base64UrlDecode(parts[1]);
  if (!payload) return std::nullopt;
  absl::StatusOr<Json> claims = ParseJson(*payload);
  if (!claims.ok() || !claims->is_object()) return std::nullopt;
  return *std::move(claims);
}

std::string StringClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  return it != claims.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<int64_t> TimeClaim(const Json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end() || !it->is_number()) return std::nullopt;
  return static_cast<int64_t>(it->get<double>());
}

// Who a request that failed client authentication says it is, for the event: the client id it
// names (form, Basic credentials or assertion subject), else the request's actor.
audit::Principal ClaimedClient(const ClientRequest& request, const audit::RequestContext& ctx,
                               std::map<std::string, std::string>& debug) {
  std::string id = Param(request.form, "client_id");
  if (id.empty() && StartsWithScheme(request.authorization, "Basic")) {
    if (std::optional<BasicCredentials> basic = ParseBasic(request.authorization)) id = basic->id;
  }
  if (id.empty()) {
    if (std::optional<Json> claims = UnverifiedClaims(Param(request.form, "client_assertion"))) {
      id = StringClaim(*claims, "sub");
    }
  }
  if (id.empty()) return ctx.actor;
  debug["client_id"] = id;
  return {id, "PublicClientApp", "", ""};
}

bool AudienceHas(const Json& claims, std::string_view audience) {
  auto it = claims.find("aud");
  if (it == claims.end()) return false;
  if (it->is_string()) return it->get<std::string>() == audience;
  if (!it->is_array()) return false;
  for (const Json& a : *it) {
    if (a.is_string() && a.get<std::string>() == audience) return true;
  }
  return false;
}

bool LooksLikeJwt(std::string_view token) {
  return std::count(token.begin(), token.end(), '.') == 2;
}

int64_t Seconds(absl::Duration d) { return absl::ToInt64Seconds(d); }

audit::Principal ClientPrincipal(const store::AppRecord& app) {
  return {app.id, "PublicClientApp", app.label, app.label};
}

audit::Principal AppTarget(const store::AppRecord& app) {
  return {app.id, "AppInstance", app.label, app.label};
}

std::string DisplayName(const Json& profile, const std::string& login) {
  auto text = [&](const char* key) {
    auto it = profile.find(key);
    return it != profile.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (std::string display = text("displayName"); !display.empty()) return display;
  std::string name = text("firstName");
  if (std::string last = text("lastName"); !last.empty()) {
    if (!name.empty()) name += ' ';
    name += last;
  }
  return name.empty() ? login : name;
}

Json ProfileOf(const store::UserRecord& user) {
  Json profile = Json::parse(user.profile_json, nullptr, false);
  return profile.is_object() ? profile : Json::object();
}

audit::Principal UserPrincipal(const store::UserRecord& user) {
  return {user.id.value(), "User", user.login, DisplayName(ProfileOf(user), user.login)};
}

// Only an ACTIVE user's tokens work, as only an ACTIVE user's sessions do (authn::SignIn).
bool UserMayHoldTokens(const store::UserRecord& user) { return user.status == store::kUserActive; }

// The OIDC claims of `user` for `scopes` (OIDC Core 5.1 and 5.4).
Json ClaimsOf(const store::UserRecord& user, const std::vector<std::string>& scopes) {
  Json claims = {{"sub", user.id.value()}};
  Json profile = ProfileOf(user);
  auto copy = [&](const char* from, const char* to) {
    auto it = profile.find(from);
    if (it != profile.end() && it->is_string()) claims[to] = *it;
  };
  if (Contains(scopes, kScopeProfile)) {
    claims["name"] = DisplayName(profile, user.login);
    copy("firstName", "given_name");
    copy("lastName", "family_name");
    claims["preferred_username"] = user.login;
    copy("locale", "locale");
    copy("timezone", "zoneinfo");
    claims["updated_at"] = absl::ToUnixSeconds(user.last_updated);
  }
  if (Contains(scopes, kScopeEmail)) {
    copy("email", "email");
    // Custos does not verify e-mail addresses (an administrator sets them).
    if (claims.contains("email")) claims["email_verified"] = false;
  }
  return claims;
}

// What a token response is made of.
struct Grant {
  std::string subject;  // a user id, or the client id
  std::string client_id;
  std::vector<std::string> scopes;  // granted
  std::optional<absl::Time> auth_time;
  std::string family_id;
  std::string jkt;  // DPoP binding of the access token
  // The ID token, when `id_token_claims` is an object: OIDC claims of the user, and these.
  Json id_token_claims;
  std::string nonce;
  std::string amr;
  std::string session_id;
  std::string refresh_token;  // the new refresh token, when one was issued
};

struct Issued {
  Json response;
  std::string jti;  // of the access token
};

// The access token is signed with `access_key` (the tenant's ES256 key), the ID token with
// `id_key` (the key of the app's id_token_signed_response_alg).
absl::StatusOr<Issued> Sign(const ActiveKey& access_key, const ActiveKey& id_key,
                            std::string_view issuer, const AppSettings& settings,
                            const Grant& grant, absl::Time now, crypto::Random& random) {
  const int64_t iat = absl::ToUnixSeconds(now);
  const int64_t lifetime = Seconds(settings.access_token_lifetime);
  const std::string scope = absl::StrJoin(grant.scopes, " ");
  Issued issued;
  issued.jti = random.Token(16);
  const std::string iss(issuer);
  Json at = {{"iss", iss},
             {"sub", grant.subject},
             {"aud", iss},
             {"exp", iat + lifetime},
             {"iat", iat},
             {"jti", issued.jti},
             {"client_id", grant.client_id},
             {"scope", scope}};
  if (grant.auth_time) at["auth_time"] = absl::ToUnixSeconds(*grant.auth_time);
  if (!grant.jkt.empty()) at["cnf"] = {{"jkt", grant.jkt}};
  if (!grant.family_id.empty()) at[kFamilyClaim] = grant.family_id;
  ASSIGN_OR_RETURN(std::string access_token, SignJwt(access_key.key, access_key.kid, "at+jwt", at));

  Json response = {{"access_token", access_token},
                   {"token_type", grant.jkt.empty() ? "Bearer" : "DPoP"},
                   {"expires_in", lifetime},
                   {"scope", scope}};
  if (grant.id_token_claims.is_object()) {
    Json id = grant.id_token_claims;
    id["iss"] = iss;
    id["sub"] = grant.subject;
    id["aud"] = grant.client_id;
    id["iat"] = iat;
    id["exp"] = iat + Seconds(settings.id_token_lifetime);
    if (grant.auth_time) id["auth_time"] = absl::ToUnixSeconds(*grant.auth_time);
    if (!grant.nonce.empty()) id["nonce"] = grant.nonce;
    id["amr"] = SplitScope(grant.amr);
    if (!grant.session_id.empty()) id["sid"] = grant.session_id;
    // OIDC Core 3.1.3.6: the left half of the hash that goes with the signing algorithm. OIDC
    // Core names none for EdDSA, and at_hash is optional in the code flow: left out then.
    if (id_key.key.alg() == kAlgEs256) {
      id["at_hash"] = crypto::Base64UrlEncode(crypto::Sha256(access_token).substr(0, 16));
    }
    ASSIGN_OR_RETURN(std::string id_token, SignJwt(id_key.key, id_key.kid, "JWT", id));
    response["id_token"] = std::move(id_token);
  }
  if (!grant.refresh_token.empty()) response["refresh_token"] = grant.refresh_token;
  issued.response = std::move(response);
  return issued;
}

// The tenant's keys that sign user tokens: ES256 for access tokens; ID tokens with the key of
// the app's id_token_signed_response_alg. Both are fetched before a grant's transaction (making
// a tenant's first keys writes), so that the app's settings as read in it decide.
struct UserTokenKeys {
  std::shared_ptr<const ActiveKey> es256;
  std::shared_ptr<const ActiveKey> eddsa;
  const ActiveKey& IdTokenKey(const AppSettings& settings) const {
    return settings.id_token_signed_response_alg == kAlgEdDsa ? *eddsa : *es256;
  }
};

absl::StatusOr<UserTokenKeys> UserTokenKeysOf(KeyManager& keys, const TenantId& tenant) {
  UserTokenKeys out;
  ASSIGN_OR_RETURN(out.es256, keys.Active(tenant, kAlgEs256));
  ASSIGN_OR_RETURN(out.eddsa, keys.Active(tenant, kAlgEdDsa));
  return out;
}

std::string TokensIssued(const Json& response) {
  std::vector<std::string> names = {"access_token"};
  if (response.contains("id_token")) names.push_back("id_token");
  if (response.contains("refresh_token")) names.push_back("refresh_token");
  return absl::StrJoin(names, " ");
}

store::RevokedTokenRecord FamilyRevocation(const TenantId& tenant, std::string_view family,
                                           absl::Time now) {
  return {tenant, fmt::format("{}{}", kFamilyPrefix, family), now, now + kFamilyRevocationTtl};
}

}  // namespace

absl::Status MakeOAuthError(std::string_view error, std::string description, int http_status) {
  absl::Status status(CodeForHttp(http_status), std::move(description));
  status.SetPayload(kOAuthErrorUrl, absl::Cord(std::string(error)));
  status.SetPayload(kOAuthHttpStatusUrl, absl::Cord(std::to_string(http_status)));
  return status;
}

std::optional<OAuthError> OAuthErrorOf(const absl::Status& status) {
  auto error = status.GetPayload(kOAuthErrorUrl);
  if (!error || status.ok()) return std::nullopt;
  OAuthError out;
  out.error = std::string(*error);
  out.description = std::string(status.message());
  auto http = status.GetPayload(kOAuthHttpStatusUrl);
  int code = 0;
  if (http && absl::SimpleAtoi(std::string(*http), &code)) out.http_status = code;
  return out;
}

struct TokenService::AppEntry {
  store::AppRecord app;
  AppSettings settings;
  absl::Time read;
  uint64_t generation;  // Apps::Generation() before it was read
};

struct TokenService::Client {
  std::shared_ptr<const AppEntry> entry;
  const store::AppRecord& app() const { return entry->app; }
  const AppSettings& settings() const { return entry->settings; }
};

struct TokenService::Proof {
  std::optional<support::DpopResult> result;
  std::string jkt() const { return result ? result->jkt : std::string(); }
};

TokenService::TokenService(store::Store& store, const Clock& clock, crypto::Random& random,
                           KeyManager& keys, Apps& apps, directory::Directory& directory,
                           support::DpopVerifier& dpop, TokenOptions options)
    : store_(store),
      clock_(clock),
      random_(random),
      keys_(keys),
      apps_(apps),
      directory_(directory),
      dpop_(dpop),
      options_(options) {
  if (options_.assertion_replay_cache != nullptr) {
    assertion_cache_ = options_.assertion_replay_cache;
  } else {
    // One client may send every assertion the cache holds: a confidential client is one
    // "key" here, unlike DPoP's many.
    own_assertion_cache_ = std::make_unique<support::MemoryDpopReplayCache>(
        clock_, support::DpopOptions{.max_replay_entries = kMaxAssertionJtis,
                                     .max_replay_entries_per_key = kMaxAssertionJtis});
    assertion_cache_ = own_assertion_cache_.get();
  }
}

store::EventRecord TokenService::Event(const TenantId& tenant, const audit::RequestContext& ctx,
                                       const audit::Principal& actor, audit::EventSpec spec) {
  audit::RequestContext context = ctx;
  context.actor = actor;
  return audit::MakeEvent(tenant, context, spec, clock_, random_);
}

absl::Status TokenService::Refuse(const store::TenantRecord& tenant,
                                  const audit::RequestContext& ctx, std::string_view event_type,
                                  const audit::Principal& actor,
                                  std::map<std::string, std::string> debug, absl::Status error) {
  std::optional<OAuthError> oauth = OAuthErrorOf(error);
  if (!oauth) return error;
  audit::EventSpec spec;
  spec.event_type = std::string(event_type);
  spec.display_message = "OAuth2 request refused";
  spec.outcome = std::string(audit::kFailure);
  spec.reason = oauth->error;
  debug["error"] = oauth->error;
  debug["error_description"] = oauth->description;
  if (std::string cause = CauseOf(error); !cause.empty()) debug["cause"] = cause;
  spec.debug_data = std::move(debug);
  if (options_.refusal_limiter != nullptr &&
      !options_.refusal_limiter->Acquire(RateLimitKeyOf(ctx.ip_address)).allowed) {
    return error;
  }
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) {
    return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
  }));
  return error;
}

absl::StatusOr<std::shared_ptr<const TokenService::AppEntry>> TokenService::LoadApp(
    const TenantId& tenant, std::string_view client_id) {
  const std::string key = fmt::format("{}/{}", tenant.value(), client_id);
  const absl::Time now = clock_.Now();
  // Read before the record: a write that commits after this moves it on, so the copy read below
  // is never reused past a change made through apps_.
  const uint64_t generation = apps_.Generation();
  {
    absl::ReaderMutexLock lock(&apps_mu_);
    auto it = app_cache_.find(key);
    if (it != app_cache_.end() && it->second->generation == generation &&
        now - it->second->read < options_.app_cache_ttl) {
      return it->second;
    }
  }
  ASSIGN_OR_RETURN(store::AppRecord app, apps_.Get(tenant, client_id));
  ASSIGN_OR_RETURN(AppSettings settings, SettingsOf(app));
  auto entry = std::make_shared<const AppEntry>(
      AppEntry{std::move(app), std::move(settings), now, generation});
  absl::MutexLock lock(&apps_mu_);
  // A crude bound: clients are few per tenant, so a full cache means churn, not a working set.
  if (app_cache_.size() >= kMaxCachedApps) app_cache_.clear();
  app_cache_[key] = entry;
  return entry;
}

absl::StatusOr<TokenService::Client> TokenService::Authenticate(const store::TenantRecord& tenant,
                                                                std::string_view issuer,
                                                                const ClientRequest& request) {
  const auto& form = request.form;
  const bool basic = StartsWithScheme(request.authorization, "Basic");
  const bool post = Has(form, "client_secret");
  const bool jwt = Has(form, "client_assertion") || Has(form, "client_assertion_type");
  if (basic + post + jwt > 1) {
    return InvalidRequest("more than one client authentication method");
  }
  const std::string form_id = Param(form, "client_id");
  std::string client_id;
  std::string_view method = kAuthNone;
  std::string secret;
  std::string assertion;
  if (basic) {
    std::optional<BasicCredentials> credentials = ParseBasic(request.authorization);
    if (!credentials) return InvalidClient("malformed_basic_credentials");
    if (Has(form, "client_id") && form_id != credentials->id) {
      return InvalidRequest("client_id does not match the client's credentials");
    }
    client_id = std::move(credentials->id);
    secret = std::move(credentials->secret);
    method = kAuthBasic;
  } else if (post) {
    client_id = form_id;
    secret = Param(form, "client_secret");
    method = kAuthPost;
  } else if (jwt) {
    if (Param(form, "client_assertion_type") != kAssertionType) {
      return InvalidClient("unsupported_assertion_type", "unsupported client_assertion_type");
    }
    assertion = Param(form, "client_assertion");
    if (assertion.empty()) return InvalidRequest("client_assertion missing");
    std::optional<Json> claims = UnverifiedClaims(assertion);
    if (!claims) return InvalidClient("malformed_assertion");
    client_id = StringClaim(*claims, "sub");
    if (Has(form, "client_id") && form_id != client_id) {
      return InvalidClient("assertion_subject_mismatch");
    }
    method = kAuthPrivateKeyJwt;
  } else {
    client_id = form_id;
  }
  if (client_id.empty() || client_id.size() > kMaxClientIdLength) {
    return InvalidClient("no_client_id");
  }

  absl::StatusOr<std::shared_ptr<const AppEntry>> entry = LoadApp(tenant.id, client_id);
  if (absl::IsNotFound(entry.status())) return InvalidClient("unknown_client");
  if (!entry.ok()) return entry.status();
  const store::AppRecord& app = (*entry)->app;
  if (app.status != store::kAppActive) return InvalidClient("app_inactive");
  if (app.token_endpoint_auth_method != method) return InvalidClient("wrong_auth_method");

  if (method == kAuthBasic || method == kAuthPost) {
    if (app.client_secret_hash.empty() ||
        !crypto::ConstantTimeEquals(crypto::Sha256Hex(secret), app.client_secret_hash)) {
      return InvalidClient("bad_secret");
    }
  } else if (method == kAuthPrivateKeyJwt) {
    RETURN_IF_ERROR(VerifyAssertion(tenant.id, issuer, request, **entry, assertion));
  } else if (!(*entry)->settings.IsPublic()) {
    return InvalidClient("credentials_required");
  }
  return Client{*std::move(entry)};
}

absl::Status TokenService::VerifyAssertion(const TenantId& tenant, std::string_view issuer,
                                           const ClientRequest& request, const AppEntry& app,
                                           std::string_view assertion) {
  absl::StatusOr<VerifiedJwt> verified =
      VerifyJwt(assertion, [&](const Json& header) { return ClientKey(app.settings, header); });
  if (!verified.ok()) return InvalidClient("assertion_signature");
  const Json& claims = verified->claims;
  const std::string& client_id = app.app.id;
  if (StringClaim(claims, "iss") != client_id || StringClaim(claims, "sub") != client_id) {
    return InvalidClient("assertion_issuer");
  }
  // RFC 7523 3: the token endpoint's URL; the issuer is accepted too (OIDC Core 9 allows it),
  // and the token endpoint also when the assertion is presented at introspection or revocation.
  const std::string token_endpoint = fmt::format("{}{}", issuer, kTokenPath);
  if (!AudienceHas(claims, issuer) && !AudienceHas(claims, token_endpoint) &&
      !AudienceHas(claims, request.url)) {
    return InvalidClient("assertion_audience");
  }
  const int64_t now = absl::ToUnixSeconds(clock_.Now());
  const int64_t skew = Seconds(kAssertionSkew);
  const int64_t max_age = Seconds(options_.client_assertion_max_age);
  std::optional<int64_t> exp = TimeClaim(claims, "exp");
  if (!exp) return InvalidClient("assertion_exp_missing");
  if (*exp <= now) return InvalidClient("assertion_expired");
  if (std::optional<int64_t> nbf = TimeClaim(claims, "nbf"); nbf && *nbf > now + skew) {
    return InvalidClient("assertion_not_yet_valid");
  }
  // The assertion is acceptable until `until`; its jti is remembered that long.
  int64_t until = *exp;
  if (std::optional<int64_t> iat = TimeClaim(claims, "iat")) {
    if (*iat > now + skew) return InvalidClient("assertion_iat_in_future");
    if (now - *iat > max_age) return InvalidClient("assertion_too_old");
    until = std::min(until, *iat + max_age);
  } else if (*exp > now + max_age) {
    // Without iat only a short exp bounds how long a replayed assertion must be remembered.
    return InvalidClient("assertion_lifetime_too_long");
  }
  const std::string jti = StringClaim(claims, "jti");
  if (jti.empty() || jti.size() > kMaxJtiLength) return InvalidClient("assertion_jti_missing");

  ASSIGN_OR_RETURN(std::optional<support::DpopError> seen,
                   assertion_cache_->Remember(fmt::format("{}/{}", tenant.value(), client_id), jti,
                                              absl::FromUnixSeconds(until + 1)));
  if (seen == support::DpopError::kReplayed) return InvalidClient("assertion_replayed");
  if (seen.has_value()) return InvalidClient("assertion_cache_full");
  return absl::OkStatus();
}

absl::StatusOr<std::string> TokenService::IssueCode(const store::TenantRecord& tenant,
                                                    const audit::RequestContext& ctx,
                                                    const CodeGrant& grant) {
  const absl::Time now = clock_.Now();
  const std::string code = random_.Token(32);
  store::AuthCodeRecord record;
  record.code_hash = crypto::Sha256Hex(code);
  record.tenant_id = tenant.id;
  record.client_id = grant.client_id;
  record.user_id = grant.user_id;
  record.session_id = grant.session_id;
  record.redirect_uri = grant.redirect_uri;
  record.scope = grant.scope;
  record.nonce = grant.nonce;
  record.code_challenge = grant.code_challenge;
  record.code_challenge_method = grant.code_challenge_method;
  record.dpop_jkt = grant.dpop_jkt;
  record.auth_time = grant.auth_time;
  record.amr = grant.amr;
  record.created = now;
  record.expires = now + options_.code_lifetime;
  // The grant's family exists from the start, so that a reused code can revoke the access
  // tokens of its first exchange even when no refresh token was issued.
  record.family_id = random_.Uuid();

  audit::EventSpec spec;
  spec.event_type = std::string(kEventCode);
  spec.display_message = "OAuth2 authorization code request";
  spec.targets.push_back({grant.client_id, "AppInstance", "", ""});
  spec.targets.push_back({grant.user_id.value(), "User", "", ""});
  spec.debug_data = {{"client_id", grant.client_id},
                     {"scope", grant.scope},
                     {"redirect_uri", grant.redirect_uri},
                     {"family_id", record.family_id}};
  if (!grant.code_challenge_method.empty()) {
    spec.debug_data["code_challenge_method"] = grant.code_challenge_method;
  }
  if (!grant.dpop_jkt.empty()) spec.debug_data["dpop_jkt"] = grant.dpop_jkt;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Oidc().InsertCode(record));
    return tx.Events().Append(Event(tenant.id, ctx, ctx.actor, spec)).status();
  }));
  return code;
}

absl::StatusOr<Json> TokenService::Token(const store::TenantRecord& tenant, std::string_view issuer,
                                         const audit::RequestContext& ctx,
                                         const ClientRequest& request) {
  const std::string grant_type = Param(request.form, "grant_type");
  std::map<std::string, std::string> debug = {{"grant_type", grant_type}};
  absl::StatusOr<Client> client = Authenticate(tenant, issuer, request);
  if (!client.ok()) {
    audit::Principal actor = ClaimedClient(request, ctx, debug);
    return Refuse(tenant, ctx, kEventGrant, actor, std::move(debug), client.status());
  }
  const audit::Principal actor = ClientPrincipal(client->app());
  debug["client_id"] = client->app().id;
  auto refuse = [&](absl::Status error) {
    return Refuse(tenant, ctx, kEventGrant, actor, debug, std::move(error));
  };
  if (grant_type.empty()) return refuse(InvalidRequest("grant_type missing"));
  if (grant_type != kGrantAuthorizationCode && grant_type != kGrantRefreshToken &&
      grant_type != kGrantClientCredentials) {
    return refuse(MakeOAuthError("unsupported_grant_type", "grant_type not supported"));
  }
  if (!client->settings().Allows(grant_type)) {
    return refuse(MakeOAuthError("unauthorized_client",
                                 fmt::format("the client may not use {}", grant_type)));
  }
  Proof proof;
  if (!request.dpop.empty()) {
    support::DpopCheck check;
    check.method = request.method.empty() ? "POST" : request.method;
    check.url = request.url;
    absl::StatusOr<support::DpopResult> result = dpop_.Verify(request.dpop, check);
    if (!result.ok()) {
      if (absl::IsUnavailable(result.status()) && !support::DpopErrorOf(result.status())) {
        // The replay cache cannot answer (its store is away): refused, as the server's fault,
        // for the client to retry (RFC 6749 4.1.2.1); the detail is in the server log.
        return MakeOAuthError("temporarily_unavailable", std::string(result.status().message()),
                              503);
      }
      if (!support::DpopErrorOf(result.status())) return result.status();
      return refuse(MakeOAuthError("invalid_dpop_proof", std::string(result.status().message())));
    }
    proof.result = *std::move(result);
  }
  if (grant_type == kGrantAuthorizationCode) {
    return ExchangeCode(tenant, issuer, ctx, request, *client, proof);
  }
  if (grant_type == kGrantRefreshToken) {
    return Refresh(tenant, issuer, ctx, request, *client, proof);
  }
  return ClientCredentials(tenant, issuer, ctx, request, *client, proof);
}

absl::StatusOr<Json> TokenService::ExchangeCode(const store::TenantRecord& tenant,
                                                std::string_view issuer,
                                                const audit::RequestContext& ctx,
                                                const ClientRequest& request, const Client& client,
                                                const Proof& proof) {
  const store::AppRecord& app = client.app();
  std::map<std::string, std::string> debug = {{"grant_type", std::string(kGrantAuthorizationCode)},
                                              {"client_id", app.id}};
  const std::string code = Param(request.form, "code");
  if (code.empty()) {
    return Refuse(tenant, ctx, kEventGrant, ClientPrincipal(app), debug,
                  InvalidRequest("code missing"));
  }
  const std::string redirect_uri = Param(request.form, "redirect_uri");
  const std::string verifier = Param(request.form, "code_verifier");
  ASSIGN_OR_RETURN(const UserTokenKeys keys, UserTokenKeysOf(keys_, tenant.id));

  absl::Status refusal;
  Json response;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    const absl::Time now = clock_.Now();
    audit::Principal actor = ClientPrincipal(app);
    auto refuse = [&](absl::Status error) -> absl::Status {
      refusal = error;
      std::optional<OAuthError> oauth = OAuthErrorOf(error);
      audit::EventSpec spec;
      spec.event_type = std::string(kEventGrant);
      spec.display_message = "OAuth2 request refused";
      spec.outcome = std::string(audit::kFailure);
      spec.reason = oauth->error;
      spec.debug_data = debug;
      spec.debug_data["error"] = oauth->error;
      spec.debug_data["error_description"] = oauth->description;
      spec.targets.push_back(AppTarget(app));
      return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
    };
    absl::StatusOr<store::AuthCodeRecord> found =
        tx.Oidc().FindCode(tenant.id, crypto::Sha256Hex(code));
    if (absl::IsNotFound(found.status())) return refuse(InvalidGrant("code invalid"));
    RETURN_IF_ERROR(found.status());
    store::AuthCodeRecord& record = *found;
    debug["family_id"] = record.family_id;
    if (record.used) {
      // OAuth 2.1 4.1.3 / RFC 6819 5.2.1.1: a code presented twice has leaked; what its first
      // exchange gave is revoked, whoever presents it now.
      RETURN_IF_ERROR(tx.Oidc().RevokeFamily(tenant.id, record.family_id, now).status());
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(FamilyRevocation(tenant.id, record.family_id, now)));
      refusal = InvalidGrant("code invalid");
      audit::EventSpec spec;
      spec.event_type = std::string(kEventReuse);
      spec.display_message = "OAuth2 authorization code reused: its tokens are revoked";
      spec.severity = "WARN";
      spec.outcome = std::string(audit::kFailure);
      spec.reason = "invalid_grant";
      spec.debug_data = debug;
      spec.debug_data["code_client_id"] = record.client_id;
      spec.targets.push_back(AppTarget(app));
      spec.targets.push_back({record.user_id.value(), "User", "", ""});
      return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
    }
    if (record.client_id != app.id) {
      return refuse(InvalidGrant("code was issued to another client"));
    }
    if (record.expires <= now) return refuse(InvalidGrant("code expired"));
    if (redirect_uri != record.redirect_uri) {
      return refuse(InvalidGrant("redirect_uri differs from the authorization request"));
    }
    absl::StatusOr<store::AppRecord> current = tx.Oidc().GetApp(tenant.id, app.id);
    if (absl::IsNotFound(current.status())) return refuse(InvalidClient("unknown_client"));
    RETURN_IF_ERROR(current.status());
    if (current->status != store::kAppActive) return refuse(InvalidClient("app_inactive"));
    ASSIGN_OR_RETURN(const AppSettings settings, SettingsOf(*current));
    const bool is_public = settings.IsPublic();
    if (record.code_challenge.empty()) {
      if (is_public) return refuse(InvalidGrant("PKCE is required for public clients"));
      // OAuth 2.1 7.5.1: a verifier without a challenge is a PKCE downgrade attempt.
      if (!verifier.empty()) return refuse(InvalidGrant("code_verifier without code_challenge"));
    } else {
      if (verifier.empty()) return refuse(InvalidGrant("code_verifier missing"));
      if (!IsCodeVerifier(verifier)) return refuse(InvalidGrant("code_verifier malformed"));
      const std::string method =
          record.code_challenge_method.empty() ? "plain" : record.code_challenge_method;
      bool match = false;
      if (method == "S256") {
        match = crypto::ConstantTimeEquals(crypto::Base64UrlEncode(crypto::Sha256(verifier)),
                                           record.code_challenge);
      } else if (method == "plain" && !is_public) {
        match = crypto::ConstantTimeEquals(verifier, record.code_challenge);
      } else {
        return refuse(InvalidGrant("public clients must use PKCE with S256"));
      }
      if (!match) return refuse(InvalidGrant("code_verifier does not match the code_challenge"));
    }
    if (!record.dpop_jkt.empty()) {
      if (!proof.result) {
        return refuse(MakeOAuthError("invalid_dpop_proof", "the code is bound to a DPoP key"));
      }
      if (proof.result->jkt != record.dpop_jkt) {
        return refuse(MakeOAuthError("invalid_dpop_proof",
                                     "the DPoP key is not the one the code is bound to"));
      }
    }
    absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant.id, record.user_id);
    if (absl::IsNotFound(user.status())) return refuse(InvalidGrant("the user no longer exists"));
    RETURN_IF_ERROR(user.status());
    if (!UserMayHoldTokens(*user)) return refuse(InvalidGrant("the user is not active"));

    record.used = now;
    RETURN_IF_ERROR(tx.Oidc().UpdateCode(record));

    Grant grant;
    grant.subject = record.user_id.value();
    grant.client_id = app.id;
    grant.scopes = SplitScope(record.scope);
    grant.auth_time = record.auth_time;
    grant.family_id = record.family_id;
    grant.jkt = proof.jkt();
    if (Contains(grant.scopes, kScopeOpenId)) {
      grant.id_token_claims = ClaimsOf(*user, grant.scopes);
      grant.nonce = record.nonce;
      grant.amr = record.amr;
      grant.session_id = record.session_id.value();
    }
    // OIDC Core 11: a refresh token only when the user granted offline_access (and the app may
    // use the grant).
    if (settings.Allows(kGrantRefreshToken) && Contains(grant.scopes, kScopeOfflineAccess)) {
      grant.refresh_token = random_.Token(32);
      store::RefreshTokenRecord refresh;
      refresh.id = random_.Id(store::kRefreshTokenIdPrefix);
      refresh.token_hash = crypto::Sha256Hex(grant.refresh_token);
      refresh.tenant_id = tenant.id;
      refresh.client_id = app.id;
      refresh.user_id = record.user_id;
      refresh.scope = record.scope;
      refresh.family_id = record.family_id;
      refresh.session_id = record.session_id;
      refresh.auth_time = record.auth_time;
      refresh.amr = record.amr;
      // RFC 9449 5: only a public client's refresh token is bound to its DPoP key; a
      // confidential client proves itself with its credentials.
      if (is_public) refresh.dpop_jkt = proof.jkt();
      refresh.created = now;
      refresh.expires = now + settings.refresh_token_lifetime;
      RETURN_IF_ERROR(tx.Oidc().InsertRefreshToken(refresh));
    }
    ASSIGN_OR_RETURN(Issued issued, Sign(*keys.es256, keys.IdTokenKey(settings), issuer, settings,
                                         grant, now, random_));
    response = std::move(issued.response);

    audit::EventSpec spec;
    spec.event_type = std::string(kEventGrant);
    spec.display_message = "OAuth2 tokens granted";
    spec.targets.push_back(AppTarget(app));
    spec.targets.push_back(UserPrincipal(*user));
    spec.debug_data = debug;
    spec.debug_data["tokens"] = TokensIssued(response);
    spec.debug_data["scope"] = record.scope;
    spec.debug_data["jti"] = issued.jti;
    spec.debug_data["token_type"] = response["token_type"].get<std::string>();
    if (!grant.jkt.empty()) spec.debug_data["dpop_jkt"] = grant.jkt;
    return tx.Events().Append(Event(tenant.id, ctx, UserPrincipal(*user), spec)).status();
  }));
  if (!refusal.ok()) return refusal;
  return response;
}

absl::StatusOr<Json> TokenService::Refresh(const store::TenantRecord& tenant,
                                           std::string_view issuer,
                                           const audit::RequestContext& ctx,
                                           const ClientRequest& request, const Client& client,
                                           const Proof& proof) {
  const store::AppRecord& app = client.app();
  const audit::Principal actor = ClientPrincipal(app);
  std::map<std::string, std::string> debug = {{"grant_type", std::string(kGrantRefreshToken)},
                                              {"client_id", app.id}};
  const std::string token = Param(request.form, "refresh_token");
  if (token.empty()) {
    return Refuse(tenant, ctx, kEventGrant, actor, debug, InvalidRequest("refresh_token missing"));
  }
  std::optional<std::vector<std::string>> requested;
  if (Has(request.form, "scope")) {
    absl::StatusOr<std::vector<std::string>> scopes = ParseScope(Param(request.form, "scope"));
    if (!scopes.ok()) return Refuse(tenant, ctx, kEventGrant, actor, debug, scopes.status());
    requested = *std::move(scopes);
  }
  ASSIGN_OR_RETURN(const UserTokenKeys keys, UserTokenKeysOf(keys_, tenant.id));

  absl::Status refusal;
  Json response;
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    const absl::Time now = clock_.Now();
    auto append = [&](audit::EventSpec spec) {
      spec.targets.insert(spec.targets.begin(), AppTarget(app));
      return tx.Events().Append(Event(tenant.id, ctx, actor, std::move(spec))).status();
    };
    auto refuse = [&](absl::Status error) -> absl::Status {
      refusal = error;
      std::optional<OAuthError> oauth = OAuthErrorOf(error);
      audit::EventSpec spec;
      spec.event_type = std::string(kEventGrant);
      spec.display_message = "OAuth2 request refused";
      spec.outcome = std::string(audit::kFailure);
      spec.reason = oauth->error;
      spec.debug_data = debug;
      spec.debug_data["error"] = oauth->error;
      spec.debug_data["error_description"] = oauth->description;
      return append(std::move(spec));
    };
    absl::StatusOr<store::RefreshTokenRecord> found =
        tx.Oidc().FindRefreshToken(tenant.id, crypto::Sha256Hex(token));
    if (absl::IsNotFound(found.status())) return refuse(InvalidGrant("refresh_token invalid"));
    RETURN_IF_ERROR(found.status());
    store::RefreshTokenRecord& record = *found;
    debug["family_id"] = record.family_id;
    if (record.client_id != app.id) {
      return refuse(InvalidGrant("refresh_token was issued to another client"));
    }
    // A revoked token that was never rotated was ended on purpose (revocation, logout, the
    // directory ending the user's sessions): refused, nothing more to end.
    if (record.revoked && !record.rotated) return refuse(InvalidGrant("refresh_token revoked"));
    if (record.rotated) {
      // RFC 9700 4.14.2: a rotated token used again means that two parties hold the family;
      // which one is legitimate cannot be told, so the whole family ends.
      RETURN_IF_ERROR(tx.Oidc().RevokeFamily(tenant.id, record.family_id, now).status());
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(FamilyRevocation(tenant.id, record.family_id, now)));
      refusal = InvalidGrant("refresh_token invalid");
      audit::EventSpec spec;
      spec.event_type = std::string(kEventReuse);
      spec.display_message = "OAuth2 refresh token reused: its family is revoked";
      spec.severity = "WARN";
      spec.outcome = std::string(audit::kFailure);
      spec.reason = "invalid_grant";
      spec.debug_data = debug;
      spec.debug_data["refresh_token_id"] = record.id;
      spec.targets.push_back({record.user_id.value(), "User", "", ""});
      return append(std::move(spec));
    }
    if (record.expires <= now) return refuse(InvalidGrant("refresh_token expired"));
    absl::StatusOr<store::AppRecord> current = tx.Oidc().GetApp(tenant.id, app.id);
    if (absl::IsNotFound(current.status())) return refuse(InvalidClient("unknown_client"));
    RETURN_IF_ERROR(current.status());
    if (current->status != store::kAppActive) return refuse(InvalidClient("app_inactive"));
    ASSIGN_OR_RETURN(const AppSettings settings, SettingsOf(*current));
    if (!settings.Allows(kGrantRefreshToken)) {
      return refuse(MakeOAuthError("unauthorized_client", "the client may not use refresh_token"));
    }
    const std::vector<std::string> original = SplitScope(record.scope);
    std::vector<std::string> scopes = original;
    if (requested) {
      for (const std::string& s : *requested) {
        if (!Contains(original, s)) {
          return refuse(InvalidScope("scope exceeds the scope of the refresh_token"));
        }
      }
      scopes = *requested;
    }
    if (!record.dpop_jkt.empty()) {
      if (!proof.result) {
        return refuse(
            MakeOAuthError("invalid_dpop_proof", "the refresh_token is bound to a DPoP key"));
      }
      if (proof.result->jkt != record.dpop_jkt) {
        return refuse(MakeOAuthError("invalid_dpop_proof",
                                     "the DPoP key is not the one the refresh_token is bound to"));
      }
    }
    // The family lives only while its user is ACTIVE (the directory revokes a user's refresh
    // tokens when it ends their sessions; this catches a user deleted or changed otherwise).
    // Once the user has ended, the family ends (event) and so do its access tokens.
    auto end_family = [&](std::string_view cause, std::string description) -> absl::Status {
      ASSIGN_OR_RETURN(int count, tx.Oidc().RevokeFamily(tenant.id, record.family_id, now));
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(FamilyRevocation(tenant.id, record.family_id, now)));
      audit::EventSpec spec;
      spec.event_type = std::string(kEventRevoke);
      spec.display_message = fmt::format("OAuth2 refresh tokens revoked: {}", description);
      spec.reason = std::string(cause);
      spec.debug_data = debug;
      spec.debug_data["token_type_revoked"] = "refresh_token";
      spec.debug_data["refresh_token_id"] = record.id;
      spec.debug_data["session_id"] = record.session_id.value();
      spec.debug_data["refresh_tokens_revoked"] = std::to_string(count);
      spec.targets.push_back({record.user_id.value(), "User", "", ""});
      RETURN_IF_ERROR(append(std::move(spec)));
      return refuse(InvalidGrant(std::move(description)));
    };
    absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant.id, record.user_id);
    if (absl::IsNotFound(user.status())) {
      return end_family("user_deleted", "the user no longer exists");
    }
    RETURN_IF_ERROR(user.status());
    // A lockout ends by itself, and anyone who knows the login can cause one: like the user's
    // sessions, the family outlives it and is only refused meanwhile.
    if (user->status == store::kUserLockedOut) {
      return refuse(InvalidGrant("the user is locked out"));
    }
    if (!UserMayHoldTokens(*user)) return end_family("user_not_active", "the user is not active");

    record.rotated = now;
    RETURN_IF_ERROR(tx.Oidc().UpdateRefreshToken(record));
    Grant grant;
    grant.subject = record.user_id.value();
    grant.client_id = app.id;
    grant.scopes = scopes;
    grant.auth_time = record.auth_time;
    grant.family_id = record.family_id;
    grant.jkt = proof.jkt();
    if (Contains(scopes, kScopeOpenId)) {
      // OIDC Core 12.2: same iss, sub, aud and auth_time; no nonce.
      grant.id_token_claims = ClaimsOf(*user, scopes);
      grant.amr = record.amr;
      grant.session_id = record.session_id.value();
    }
    grant.refresh_token = random_.Token(32);
    store::RefreshTokenRecord next = record;
    next.id = random_.Id(store::kRefreshTokenIdPrefix);
    next.token_hash = crypto::Sha256Hex(grant.refresh_token);
    next.created = now;
    next.rotated.reset();
    next.revoked.reset();
    // RFC 6749 6: the new refresh token has the scope of the one presented; the family keeps
    // its absolute expiry, so rotation never extends it.
    RETURN_IF_ERROR(tx.Oidc().InsertRefreshToken(next));
    ASSIGN_OR_RETURN(Issued issued, Sign(*keys.es256, keys.IdTokenKey(settings), issuer, settings,
                                         grant, now, random_));
    response = std::move(issued.response);

    audit::EventSpec spec;
    spec.event_type = std::string(kEventGrant);
    spec.display_message = "OAuth2 tokens granted";
    spec.targets.push_back(UserPrincipal(*user));
    spec.debug_data = debug;
    spec.debug_data["tokens"] = TokensIssued(response);
    spec.debug_data["scope"] = absl::StrJoin(scopes, " ");
    spec.debug_data["jti"] = issued.jti;
    spec.debug_data["token_type"] = response["token_type"].get<std::string>();
    spec.debug_data["refresh_token_id"] = next.id;
    if (!grant.jkt.empty()) spec.debug_data["dpop_jkt"] = grant.jkt;
    return append(std::move(spec));
  }));
  if (!refusal.ok()) return refusal;
  return response;
}

absl::StatusOr<Json> TokenService::ClientCredentials(const store::TenantRecord& tenant,
                                                     std::string_view issuer,
                                                     const audit::RequestContext& ctx,
                                                     const ClientRequest& request,
                                                     const Client& client, const Proof& proof) {
  const store::AppRecord& app = client.app();
  const audit::Principal actor = ClientPrincipal(app);
  std::map<std::string, std::string> debug = {{"grant_type", std::string(kGrantClientCredentials)},
                                              {"client_id", app.id}};
  auto refuse = [&](absl::Status error) {
    return Refuse(tenant, ctx, kEventGrant, actor, debug, std::move(error));
  };
  if (client.settings().IsPublic()) {
    return refuse(
        MakeOAuthError("unauthorized_client", "public clients may not use client_credentials"));
  }
  absl::StatusOr<std::vector<std::string>> scopes = ParseScope(Param(request.form, "scope"));
  if (!scopes.ok()) return refuse(scopes.status());
  for (const std::string& s : *scopes) {
    if (s == kScopeOpenId || s == kScopeOfflineAccess) {
      return refuse(InvalidScope(fmt::format("{} is not for client_credentials", s)));
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const ActiveKey> key, keys_.Active(tenant.id));
  Grant grant;
  grant.subject = app.id;
  grant.client_id = app.id;
  grant.scopes = *std::move(scopes);
  grant.jkt = proof.jkt();
  // Signed before the transaction, which then holds the write lock only for the event.
  ASSIGN_OR_RETURN(Issued issued,
                   Sign(*key, *key, issuer, client.settings(), grant, clock_.Now(), random_));

  audit::EventSpec spec;
  spec.event_type = std::string(kEventGrant);
  spec.display_message = "OAuth2 tokens granted";
  spec.targets.push_back(AppTarget(app));
  spec.debug_data = std::move(debug);
  spec.debug_data["tokens"] = TokensIssued(issued.response);
  spec.debug_data["scope"] = absl::StrJoin(grant.scopes, " ");
  spec.debug_data["jti"] = issued.jti;
  spec.debug_data["token_type"] = issued.response["token_type"].get<std::string>();
  if (!grant.jkt.empty()) spec.debug_data["dpop_jkt"] = grant.jkt;
  store::EventRecord event = Event(tenant.id, ctx, actor, spec);
  RETURN_IF_ERROR(
      store_.Write([&](Transaction& tx) { return tx.Events().Append(event).status(); }));
  return std::move(issued.response);
}

absl::StatusOr<Json> TokenService::CheckAccessToken(const store::TenantRecord& tenant,
                                                    std::string_view issuer, std::string_view token,
                                                    bool check_revoked) {
  bool key_lookup_failed = false;
  absl::Status lookup_error;
  absl::StatusOr<VerifiedJwt> verified =
      VerifyJwt(token, [&](const Json& header) -> absl::StatusOr<support::PublicJwk> {
        std::string kid = StringClaim(header, "kid");
        if (kid.empty()) return absl::NotFoundError("no kid");
        absl::StatusOr<support::PublicJwk> key = keys_.PublicKey(tenant.id, kid);
        if (!key.ok() && !absl::IsNotFound(key.status())) {
          key_lookup_failed = true;
          lookup_error = key.status();
        }
        return key;
      });
  // A store failure while finding the key is ours, not the token's.
  if (key_lookup_failed) return lookup_error;
  if (!verified.ok()) return InvalidToken("the access token is invalid");
  std::string typ = absl::AsciiStrToLower(StringClaim(verified->header, "typ"));
  if (typ != "at+jwt" && typ != "application/at+jwt") {
    return InvalidToken("not an access token");
  }
  const Json& claims = verified->claims;
  if (StringClaim(claims, "iss") != issuer || !AudienceHas(claims, issuer)) {
    return InvalidToken("the access token is not for this issuer");
  }
  std::optional<int64_t> exp = TimeClaim(claims, "exp");
  if (!exp || *exp <= absl::ToUnixSeconds(clock_.Now())) {
    return InvalidToken("the access token expired");
  }
  const std::string jti = StringClaim(claims, "jti");
  if (jti.empty() || StringClaim(claims, "sub").empty()) {
    return InvalidToken("the access token is invalid");
  }
  if (check_revoked) {
    const std::string family = StringClaim(claims, kFamilyClaim);
    const std::string subject = StringClaim(claims, "sub");
    // A client_credentials token's subject is the client itself; any other is a user.
    const bool user_token = subject != StringClaim(claims, "client_id");
    const int64_t issued_at = claims.contains("iat") && claims["iat"].is_number_integer()
                                  ? claims["iat"].get<int64_t>()
                                  : 0;
    enum class State { kValid, kRevoked, kUserInactive };
    ASSIGN_OR_RETURN(
        State state, store::ReadResult(store_, [&](Transaction& tx) -> absl::StatusOr<State> {
          ASSIGN_OR_RETURN(bool revoked, tx.Oidc().IsRevoked(tenant.id, jti));
          if (!revoked && !family.empty()) {
            ASSIGN_OR_RETURN(revoked, tx.Oidc().IsRevoked(
                                          tenant.id, fmt::format("{}{}", kFamilyPrefix, family)));
          }
          if (revoked) return State::kRevoked;
          if (!user_token) return State::kValid;
          absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant.id, UserId(subject));
          if (absl::IsNotFound(user.status())) return State::kUserInactive;
          RETURN_IF_ERROR(user.status());
          if (!UserMayHoldTokens(*user)) return State::kUserInactive;
          // The directory ended the user's tokens (suspension, password reset, sessions cleared)
          // after this one was issued: it stays ended after an unsuspend. iat has whole seconds,
          // so a token of the same second as the revocation counts as older.
          ASSIGN_OR_RETURN(std::optional<absl::Time> ended,
                           tx.Oidc().UserTokensRevokedAt(tenant.id, user->id));
          if (ended && issued_at <= absl::ToUnixSeconds(*ended)) return State::kRevoked;
          return State::kValid;
        }));
    if (state == State::kRevoked) return InvalidToken("the access token was revoked");
    if (state == State::kUserInactive) return InvalidToken("the user is not active");
  }
  return claims;
}

absl::StatusOr<Json> TokenService::Introspect(const store::TenantRecord& tenant,
                                              std::string_view issuer,
                                              const audit::RequestContext& ctx,
                                              const ClientRequest& request) {
  absl::StatusOr<Client> client = Authenticate(tenant, issuer, request);
  if (!client.ok()) {
    std::map<std::string, std::string> debug;
    audit::Principal actor = ClaimedClient(request, ctx, debug);
    return Refuse(tenant, ctx, kEventIntrospect, actor, std::move(debug), client.status());
  }
  const store::AppRecord& app = client->app();
  if (client->settings().IsPublic()) {
    // RFC 7662 4: introspection would let anyone who knows a public client's id test tokens.
    return Refuse(tenant, ctx, kEventIntrospect, ClientPrincipal(app), {{"client_id", app.id}},
                  InvalidClient("public_client", "public clients may not introspect tokens"));
  }
  const std::string token = Param(request.form, "token");
  if (token.empty()) {
    return Refuse(tenant, ctx, kEventIntrospect, ClientPrincipal(app), {{"client_id", app.id}},
                  InvalidRequest("token missing"));
  }
  const Json inactive = {{"active", false}};
  if (LooksLikeJwt(token)) {
    absl::StatusOr<Json> claims = CheckAccessToken(tenant, issuer, token, true);
    if (!claims.ok()) {
      if (OAuthErrorOf(claims.status())) return inactive;
      return claims.status();
    }
    Json out = {{"active", true},
                {"scope", StringClaim(*claims, "scope")},
                {"client_id", StringClaim(*claims, "client_id")},
                {"sub", StringClaim(*claims, "sub")},
                {"exp", (*claims)["exp"]},
                {"iat", claims->value("iat", Json(nullptr))},
                {"iss", StringClaim(*claims, "iss")},
                {"aud", (*claims)["aud"]},
                {"jti", StringClaim(*claims, "jti")},
                {"token_type", "Bearer"}};
    if (auto cnf = claims->find("cnf"); cnf != claims->end() && cnf->is_object()) {
      out["cnf"] = *cnf;
      out["token_type"] = "DPoP";
    }
    if (claims->contains("auth_time")) out["auth_time"] = (*claims)["auth_time"];
    return out;
  }
  const absl::Time now = clock_.Now();
  // The token, when it is live and its user ACTIVE (as the refresh grant checks them). The
  // directory revokes a user's refresh tokens with their sessions (suspension, deactivation,
  // password reset, sessions cleared), so a revoked token is inactive here already.
  ASSIGN_OR_RETURN(
      std::optional<store::RefreshTokenRecord> record,
      store::ReadResult(
          store_, [&](Transaction& tx) -> absl::StatusOr<std::optional<store::RefreshTokenRecord>> {
            absl::StatusOr<store::RefreshTokenRecord> found =
                tx.Oidc().FindRefreshToken(tenant.id, crypto::Sha256Hex(token));
            if (absl::IsNotFound(found.status())) return std::nullopt;
            RETURN_IF_ERROR(found.status());
            if (found->rotated || found->revoked || found->expires <= now) return std::nullopt;
            absl::StatusOr<store::UserRecord> user = tx.Users().Get(tenant.id, found->user_id);
            if (absl::IsNotFound(user.status())) return std::nullopt;
            RETURN_IF_ERROR(user.status());
            if (!UserMayHoldTokens(*user)) return std::nullopt;
            return *std::move(found);
          }));
  if (!record) return inactive;
  // A deactivated app's refresh tokens no longer work.
  absl::StatusOr<std::shared_ptr<const AppEntry>> owner = LoadApp(tenant.id, record->client_id);
  if (absl::IsNotFound(owner.status())) return inactive;
  RETURN_IF_ERROR(owner.status());
  if ((*owner)->app.status != store::kAppActive) return inactive;
  Json out = {{"active", true},
              {"scope", record->scope},
              {"client_id", record->client_id},
              {"sub", record->user_id.value()},
              {"exp", absl::ToUnixSeconds(record->expires)},
              {"iat", absl::ToUnixSeconds(record->created)},
              {"iss", std::string(issuer)},
              {"auth_time", absl::ToUnixSeconds(record->auth_time)}};
  if (!record->dpop_jkt.empty()) out["cnf"] = {{"jkt", record->dpop_jkt}};
  return out;
}

absl::Status TokenService::Revoke(const store::TenantRecord& tenant, std::string_view issuer,
                                  const audit::RequestContext& ctx, const ClientRequest& request) {
  absl::StatusOr<Client> client = Authenticate(tenant, issuer, request);
  if (!client.ok()) {
    std::map<std::string, std::string> debug;
    audit::Principal actor = ClaimedClient(request, ctx, debug);
    return Refuse(tenant, ctx, kEventRevoke, actor, std::move(debug), client.status());
  }
  const store::AppRecord& app = client->app();
  const audit::Principal actor = ClientPrincipal(app);
  const std::string token = Param(request.form, "token");
  if (token.empty()) {
    return Refuse(tenant, ctx, kEventRevoke, actor, {{"client_id", app.id}},
                  InvalidRequest("token missing"));
  }
  const absl::Time now = clock_.Now();
  audit::EventSpec spec;
  spec.event_type = std::string(kEventRevoke);
  spec.display_message = "OAuth2 token revoked";
  spec.targets.push_back(AppTarget(app));
  spec.debug_data = {{"client_id", app.id}};
  // RFC 7009 2.2: another client's token is not revoked, and the caller is not told.
  auto foreign = [&](std::string owner) {
    spec.display_message = "OAuth2 token revocation refused: the token is another client's";
    spec.outcome = std::string(audit::kFailure);
    spec.reason = "token of another client";
    spec.debug_data["token_client_id"] = std::move(owner);
  };

  if (LooksLikeJwt(token)) {
    absl::StatusOr<Json> claims = CheckAccessToken(tenant, issuer, token, false);
    if (!claims.ok()) return OAuthErrorOf(claims.status()) ? absl::OkStatus() : claims.status();
    const std::string jti = StringClaim(*claims, "jti");
    spec.debug_data["token_type_revoked"] = "access_token";
    spec.debug_data["jti"] = jti;
    if (StringClaim(*claims, "client_id") != app.id) {
      foreign(StringClaim(*claims, "client_id"));
      return store_.Write([&](Transaction& tx) {
        return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
      });
    }
    store::RevokedTokenRecord revoked{tenant.id, jti, now,
                                      absl::FromUnixSeconds(*TimeClaim(*claims, "exp"))};
    return store_.Write([&](Transaction& tx) -> absl::Status {
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(revoked));
      return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
    });
  }
  return store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<store::RefreshTokenRecord> found =
        tx.Oidc().FindRefreshToken(tenant.id, crypto::Sha256Hex(token));
    if (absl::IsNotFound(found.status())) return absl::OkStatus();
    RETURN_IF_ERROR(found.status());
    spec.debug_data["token_type_revoked"] = "refresh_token";
    spec.debug_data["refresh_token_id"] = found->id;
    spec.debug_data["family_id"] = found->family_id;
    if (found->client_id != app.id) {
      foreign(found->client_id);
    } else {
      // RFC 7009 2.1: the access tokens of the same grant go too.
      ASSIGN_OR_RETURN(int count, tx.Oidc().RevokeFamily(tenant.id, found->family_id, now));
      RETURN_IF_ERROR(tx.Oidc().InsertRevoked(FamilyRevocation(tenant.id, found->family_id, now)));
      spec.debug_data["refresh_tokens_revoked"] = std::to_string(count);
    }
    return tx.Events().Append(Event(tenant.id, ctx, actor, spec)).status();
  });
}

absl::StatusOr<AccessToken> TokenService::ValidateAccessToken(
    const store::TenantRecord& tenant, std::string_view issuer, std::string_view scheme,
    std::string_view token, std::string_view dpop, std::string_view method, std::string_view url) {
  ASSIGN_OR_RETURN(Json claims, CheckAccessToken(tenant, issuer, token, true));
  const std::string lower_scheme = absl::AsciiStrToLower(std::string(scheme));
  std::string jkt;
  if (auto cnf = claims.find("cnf"); cnf != claims.end() && cnf->is_object()) {
    jkt = StringClaim(*cnf, "jkt");
  }
  if (!jkt.empty()) {
    if (lower_scheme != "dpop") {
      return InvalidToken("a DPoP-bound access token needs the DPoP scheme");
    }
    // RFC 9449 7.1: a missing or invalid proof is invalid_dpop_proof, a proof by another key
    // invalid_token.
    if (dpop.empty()) return MakeOAuthError("invalid_dpop_proof", "DPoP proof missing", 401);
    support::DpopCheck check;
    check.method = std::string(method);
    check.url = std::string(url);
    check.access_token = std::string(token);
    check.record = false;
    absl::StatusOr<support::DpopResult> proof = dpop_.Verify(dpop, check);
    if (!proof.ok()) {
      if (!support::DpopErrorOf(proof.status())) return proof.status();
      return MakeOAuthError("invalid_dpop_proof", std::string(proof.status().message()), 401);
    }
    if (proof->jkt != jkt) return InvalidToken("the DPoP proof is not by the token's key");
    if (absl::Status recorded = dpop_.Record(*proof); !recorded.ok()) {
      // A replayed proof is the client's; a cache that cannot answer is the server's (kUnavailable,
      // without detail: see support::kReplayCacheUnavailable), and the proof is refused either way.
      if (!support::DpopErrorOf(recorded)) return recorded;
      return MakeOAuthError("invalid_dpop_proof", std::string(recorded.message()), 401);
    }
  } else if (lower_scheme != "bearer") {
    return InvalidToken("a Bearer access token needs the Bearer scheme");
  }
  AccessToken out;
  out.subject = StringClaim(claims, "sub");
  out.scopes = SplitScope(StringClaim(claims, "scope"));
  out.claims = std::move(claims);
  return out;
}

absl::StatusOr<Json> TokenService::UserClaims(const store::TenantRecord& tenant, const UserId& user,
                                              const std::vector<std::string>& scopes) {
  absl::StatusOr<store::UserRecord> record = directory_.GetUser(tenant.id, user.value());
  if (absl::IsNotFound(record.status())) return InvalidToken("the user no longer exists");
  RETURN_IF_ERROR(record.status());
  if (!UserMayHoldTokens(*record)) return InvalidToken("the user is not active");
  return ClaimsOf(*record, scopes);
}

absl::Status TokenService::RevokeSession(const store::TenantRecord& tenant,
                                         const audit::RequestContext& ctx,
                                         const SessionId& session) {
  return store_.Write([&](Transaction& tx) -> absl::Status {
    const absl::Time now = clock_.Now();
    ASSIGN_OR_RETURN(int count, tx.Oidc().RevokeRefreshTokensOfSession(tenant.id, session, now));
    if (count == 0) return absl::OkStatus();
    audit::EventSpec spec;
    spec.event_type = std::string(kEventRevoke);
    spec.display_message = "OAuth2 refresh tokens of a session revoked";
    spec.debug_data = {{"session_id", session.value()},
                       {"refresh_tokens_revoked", std::to_string(count)}};
    return tx.Events().Append(Event(tenant.id, ctx, ctx.actor, spec)).status();
  });
}

}  // namespace custos::oidc
