#include "oidc/apps.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "crypto/hash.h"
#include "oidc/jwt.h"

namespace custos::oidc {
namespace {

using store::AppRecord;
using store::Transaction;

constexpr std::string_view kAppName = "oidc_client";
constexpr std::string_view kSignOnMode = "OPENID_CONNECT";
constexpr std::string_view kCredentialsPath = "credentials.oauthClient";
constexpr std::string_view kSettingsPath = "settings.oauthClient";

constexpr size_t kSecretBytes = 32;
constexpr size_t kMaxLabelLength = 100;
constexpr size_t kMaxUris = 100;
constexpr size_t kMaxUriLength = 2048;
constexpr size_t kMaxKeys = 10;

struct LifetimeRule {
  const char* member;
  absl::Duration min;
  absl::Duration max;
};
constexpr LifetimeRule kAccessTokenRule{"access_token", absl::Minutes(5), absl::Hours(24)};
constexpr LifetimeRule kIdTokenRule{"id_token", absl::Minutes(5), absl::Hours(24)};
constexpr LifetimeRule kRefreshTokenRule{"refresh_token", absl::Hours(1), absl::Hours(24 * 90)};

bool OneOf(std::string_view value, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

bool IsApplicationType(std::string_view t) {
  return OneOf(t, {"web", "browser", "native", "service"});
}

bool UsesSecret(std::string_view method) { return method == kAuthBasic || method == kAuthPost; }

// Validation causes, each "member: message", reported together so that a client fixes a body in
// one round trip.
class Causes {
 public:
  void Add(std::string_view member, std::string_view message) {
    if (first_.empty()) first_ = std::string(member);
    causes_.push_back(fmt::format("{}: {}", member, message));
  }
  bool empty() const { return causes_.empty(); }
  absl::Status Status() const {
    return ValidationError(fmt::format("Api validation failed: {}", first_), causes_);
  }

 private:
  std::string first_;
  std::vector<std::string> causes_;
};

std::string Path(std::string_view parent, std::string_view member) {
  return fmt::format("{}.{}", parent, member);
}

// The object member `key` of `parent` (at `path`), or nullptr when absent or null. A non-object
// value or an unknown member of it is a cause.
const Json* ObjectMember(const Json& parent, std::string_view key, const std::string& path,
                         std::initializer_list<std::string_view> known, Causes& causes) {
  auto it = parent.find(std::string(key));
  if (it == parent.end() || it->is_null()) return nullptr;
  if (!it->is_object()) {
    causes.Add(path, "must be an object");
    return nullptr;
  }
  for (const auto& [k, v] : it->items()) {
    if (!OneOf(k, known)) causes.Add(Path(path, k), "unknown property");
  }
  return &*it;
}

// A string member; nullopt when absent or null, or (with a cause) not a string.
std::optional<std::string> StringMember(const Json& parent, std::string_view key,
                                        const std::string& path, Causes& causes) {
  auto it = parent.find(std::string(key));
  if (it == parent.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) {
    causes.Add(path, "must be a string");
    return std::nullopt;
  }
  return it->get<std::string>();
}

// An array of strings; nullopt when absent or null, or (with a cause) not an array of strings.
std::optional<std::vector<std::string>> StringsMember(const Json& parent, std::string_view key,
                                                      const std::string& path, Causes& causes) {
  auto it = parent.find(std::string(key));
  if (it == parent.end() || it->is_null()) return std::nullopt;
  bool ok = it->is_array();
  if (ok) {
    for (const Json& v : *it) ok = ok && v.is_string();
  }
  if (!ok) {
    causes.Add(path, "must be an array of strings");
    return std::nullopt;
  }
  return it->get<std::vector<std::string>>();
}

// The string member `key` of an object, or "" when it is absent or not a string (nlohmann's
// value() would throw on a mistyped member).
std::string StringOr(const Json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost" || host == "[::1]") return true;
  // 127.0.0.0/8 in dotted-quad form.
  int parts = 0;
  size_t pos = 0;
  while (pos <= host.size()) {
    size_t dot = host.find('.', pos);
    std::string_view part = host.substr(pos, dot == std::string_view::npos ? dot : dot - pos);
    if (part.empty() || part.size() > 3) return false;
    int value = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    if (value > 255 || (parts == 0 && value != 127)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  return parts == 4;
}

// Why `uri` cannot be a redirect URI, or an empty string when it can.
std::string RedirectUriProblem(std::string_view uri, bool native) {
  if (uri.empty()) return "must not be empty";
  if (uri.size() > kMaxUriLength)
    return fmt::format("must be at most {} characters", kMaxUriLength);
  for (unsigned char c : uri) {
    if (c <= 0x20 || c >= 0x7f) return "must not contain spaces, control or non-ASCII characters";
  }
  if (uri.find('#') != std::string_view::npos) return "must not have a fragment";
  size_t colon = uri.find(':');
  bool scheme_ok = colon != std::string_view::npos && colon > 0 &&
                   ((uri[0] >= 'a' && uri[0] <= 'z') || (uri[0] >= 'A' && uri[0] <= 'Z'));
  for (size_t i = 0; scheme_ok && i < colon; ++i) {
    char c = uri[i];
    scheme_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '+' || c == '-' || c == '.';
  }
  if (!scheme_ok || colon + 1 == uri.size()) return "must be an absolute URI";
  std::string scheme(uri.substr(0, colon));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "https" && scheme != "http") {
    if (!native) return "must use https (custom schemes are only for native apps)";
    if (OneOf(scheme, {"javascript", "data", "file", "vbscript", "blob", "about"})) {
      return fmt::format("must not use the {} scheme", scheme);
    }
    return "";
  }
  std::string_view rest = uri.substr(colon + 1);
  if (!rest.starts_with("//")) return "must be an absolute URI with a host";
  rest.remove_prefix(2);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  if (authority.find('@') != std::string_view::npos) return "must not carry user information";
  std::string_view host = authority;
  std::string_view port;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return "must have a valid host";
    port = host.substr(close + 1);
    host = host.substr(0, close + 1);
  } else if (size_t c = host.rfind(':'); c != std::string_view::npos) {
    port = host.substr(c);
    host = host.substr(0, c);
  }
  if (!port.empty()) {
    bool ok = port.size() >= 2 && port.size() <= 6 && port[0] == ':';
    for (size_t i = 1; ok && i < port.size(); ++i) ok = port[i] >= '0' && port[i] <= '9';
    if (!ok) return "must have a valid port";
  }
  if (host.empty()) return "must have a host";
  if (!host.starts_with('[')) {
    for (char c : host) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
      if (!ok) return "must have a valid host";
    }
  }
  if (scheme == "http" && !IsLoopbackHost(host)) {
    return "must use https (http only for loopback hosts: 127.0.0.1, [::1], localhost)";
  }
  return "";
}

void CheckUris(const std::vector<std::string>& uris, const std::string& path, bool native,
               Causes& causes) {
  if (uris.size() > kMaxUris) {
    causes.Add(path, fmt::format("must have at most {} entries", kMaxUris));
    return;
  }
  for (size_t i = 0; i < uris.size(); ++i) {
    std::string problem = RedirectUriProblem(uris[i], native);
    if (!problem.empty()) causes.Add(fmt::format("{}[{}]", path, i), problem);
  }
}

// Checks jwks for private_key_jwt and returns it with each key reduced to the members Custos
// uses, so that nothing else a client sent (notes, certificates) is kept or shown again.
Json CheckJwks(const Json& jwks, const std::string& path, Causes& causes) {
  if (!jwks.is_object()) {
    causes.Add(path, "must be an object {\"keys\": [...]}");
    return nullptr;
  }
  for (const auto& [k, v] : jwks.items()) {
    if (k != "keys") causes.Add(Path(path, k), "unknown property");
  }
  auto keys = jwks.find("keys");
  const std::string keys_path = Path(path, "keys");
  if (keys == jwks.end() || !keys->is_array() || keys->empty()) {
    causes.Add(keys_path, "must be an array of at least one ES256 or EdDSA public key");
    return nullptr;
  }
  if (keys->size() > kMaxKeys) {
    causes.Add(keys_path, fmt::format("must have at most {} keys", kMaxKeys));
    return nullptr;
  }
  Json out_keys = Json::array();
  std::vector<std::string> kids;
  for (size_t i = 0; i < keys->size(); ++i) {
    const Json& key = (*keys)[i];
    const std::string key_path = fmt::format("{}[{}]", keys_path, i);
    if (!key.is_object()) {
      causes.Add(key_path, "must be a JWK object");
      continue;
    }
    std::string alg = StringOr(key, "alg");
    if (StringOr(key, "kty") == "RSA" || alg.starts_with("RS") || alg.starts_with("PS")) {
      causes.Add(key_path, "RS256 is not accepted; use an ES256 (P-256) or EdDSA (Ed25519) key");
      continue;
    }
    absl::StatusOr<support::PublicJwk> parsed = support::ParsePublicJwk(key);
    if (!parsed.ok()) {
      causes.Add(key_path, std::string(parsed.status().message()));
      continue;
    }
    std::string_view expected_alg = support::JwsAlgorithmFor(*parsed);
    if (key.contains("alg") && !support::IsAlgorithmFor(*parsed, alg)) {
      causes.Add(Path(key_path, "alg"), fmt::format("must be {} for this key", expected_alg));
      continue;
    }
    if (key.contains("use") && key["use"] != "sig") {
      causes.Add(Path(key_path, "use"), "must be \"sig\"");
      continue;
    }
    Json out = {{"kty", key["kty"]},
                {"crv", key["crv"]},
                {"x", key["x"]},
                {"alg", std::string(expected_alg)}};
    if (key.contains("y")) out["y"] = key["y"];
    if (key.contains("use")) out["use"] = "sig";
    if (key.contains("kid")) {
      if (!key["kid"].is_string() || key["kid"].get_ref<const std::string&>().empty()) {
        causes.Add(Path(key_path, "kid"), "must be a non-empty string");
        continue;
      }
      std::string kid = key["kid"].get<std::string>();
      if (std::find(kids.begin(), kids.end(), kid) != kids.end()) {
        causes.Add(Path(key_path, "kid"), "must be unique");
        continue;
      }
      kids.push_back(kid);
      out["kid"] = kid;
    } else if (keys->size() > 1) {
      causes.Add(Path(key_path, "kid"), "is required when there is more than one key");
      continue;
    }
    out_keys.push_back(std::move(out));
  }
  return {{"keys", std::move(out_keys)}};
}

void CheckLifetime(const Json& lifetimes, const LifetimeRule& rule, const std::string& path,
                   absl::Duration& out, Causes& causes) {
  const std::string member_path = Path(path, rule.member);
  std::optional<std::string> text = StringMember(lifetimes, rule.member, member_path, causes);
  if (!text) return;
  absl::Duration d;
  if (!absl::ParseDuration(*text, &d) || d < rule.min || d > rule.max) {
    causes.Add(member_path,
               fmt::format("must be a duration from {} to {} (e.g. \"1h\", \"30m\")",
                           absl::FormatDuration(rule.min), absl::FormatDuration(rule.max)));
    return;
  }
  out = d;
}

// A validated request body.
struct Draft {
  std::string label;
  std::string auth_method;
  AppSettings settings;
};

// Validates a create (app_id empty) or replace request body. Read-only members of the app
// object (as GET shows it) may be sent back and are ignored, so GET-modify-PUT works; anything
// else unknown is refused.
absl::StatusOr<Draft> ParseBody(const Json& body, std::string_view app_id) {
  if (!body.is_object()) {
    return ValidationError("Api validation failed: body", {"body: must be an object"});
  }
  Causes causes;
  for (const auto& [key, value] : body.items()) {
    if (!OneOf(key, {"name", "label", "signOnMode", "credentials", "settings", "id", "status",
                     "created", "lastUpdated", "_links", "_embedded"})) {
      causes.Add(key, "unknown property");
    }
  }
  if (auto name = StringMember(body, "name", "name", causes); name && *name != kAppName) {
    causes.Add("name", fmt::format("must be \"{}\"", kAppName));
  }
  if (auto mode = StringMember(body, "signOnMode", "signOnMode", causes);
      mode && *mode != kSignOnMode) {
    causes.Add("signOnMode", fmt::format("must be \"{}\"", kSignOnMode));
  }
  Draft draft;
  auto label = body.find("label");
  if (label == body.end() || label->is_null() ||
      (label->is_string() && label->get_ref<const std::string&>().empty())) {
    causes.Add("label", "The field cannot be left blank");
  } else if (!label->is_string()) {
    causes.Add("label", "must be a string");
  } else if (label->get_ref<const std::string&>().size() > kMaxLabelLength) {
    causes.Add("label", fmt::format("must be at most {} characters", kMaxLabelLength));
  } else {
    draft.label = label->get<std::string>();
    for (unsigned char c : draft.label) {
      if (c < 0x20 || c == 0x7f) {
        causes.Add("label", "must not contain control characters");
        break;
      }
    }
  }

  std::optional<std::string> auth_method;
  const std::string cred_path(kCredentialsPath);
  if (const Json* credentials =
          ObjectMember(body, "credentials", "credentials", {"oauthClient"}, causes)) {
    if (const Json* oauth =
            ObjectMember(*credentials, "oauthClient", cred_path,
                         {"token_endpoint_auth_method", "client_id", "client_secret"}, causes)) {
      auth_method = StringMember(*oauth, "token_endpoint_auth_method",
                                 Path(cred_path, "token_endpoint_auth_method"), causes);
      if (auto client_id = StringMember(*oauth, "client_id", Path(cred_path, "client_id"), causes);
          client_id && *client_id != app_id) {
        causes.Add(Path(cred_path, "client_id"),
                   app_id.empty() ? "is assigned by the server" : "must be the app's id");
      }
      if (auto it = oauth->find("client_secret"); it != oauth->end() && !it->is_null()) {
        causes.Add(Path(cred_path, "client_secret"),
                   "is issued by the server (POST .../credentials/secrets for a new one)");
      }
    }
  }

  const std::string path(kSettingsPath);
  const Json* settings = ObjectMember(body, "settings", "settings", {"oauthClient"}, causes);
  const Json* oauth =
      settings ? ObjectMember(*settings, "oauthClient", path,
                              {"application_type", "redirect_uris", "post_logout_redirect_uris",
                               "response_types", "grant_types", "jwks", "token_lifetimes",
                               "id_token_signed_response_alg"},
                              causes)
               : nullptr;
  if (oauth == nullptr) {
    if (causes.empty()) causes.Add(path, "The field cannot be left blank");
    return causes.Status();
  }
  AppSettings& s = draft.settings;
  const std::string type_path = Path(path, "application_type");
  std::optional<std::string> type = StringMember(*oauth, "application_type", type_path, causes);
  bool type_ok = type && IsApplicationType(*type);
  if (type && !type_ok) {
    causes.Add(type_path, "must be one of web, browser, native, service");
  } else if (!type &&
             (!oauth->contains("application_type") || (*oauth)["application_type"].is_null())) {
    causes.Add(type_path, "The field cannot be left blank");
  }
  if (type_ok) s.application_type = *type;
  const bool is_public = s.IsPublic();
  const bool confidential = type_ok && !is_public;

  // grant_types, defaulting to the type's usual flow.
  const std::string grants_path = Path(path, "grant_types");
  std::optional<std::vector<std::string>> grants =
      StringsMember(*oauth, "grant_types", grants_path, causes);
  bool grants_ok = true;
  if (grants) {
    std::vector<std::string> seen;
    for (const std::string& g : *grants) {
      if (!OneOf(g, {kGrantAuthorizationCode, kGrantRefreshToken, kGrantClientCredentials})) {
        causes.Add(grants_path, fmt::format("'{}' is not supported (authorization_code, "
                                            "refresh_token, client_credentials)",
                                            g));
        grants_ok = false;
      } else if (std::find(seen.begin(), seen.end(), g) != seen.end()) {
        causes.Add(grants_path, fmt::format("'{}' is listed twice", g));
        grants_ok = false;
      }
      seen.push_back(g);
    }
    if (grants->empty()) {
      causes.Add(grants_path, "must not be empty");
      grants_ok = false;
    }
    s.grant_types = *grants;
  } else if (oauth->contains("grant_types") && !(*oauth)["grant_types"].is_null()) {
    grants_ok = false;
  } else if (type_ok) {
    s.grant_types = {std::string(s.application_type == "service" ? kGrantClientCredentials
                                                                 : kGrantAuthorizationCode)};
  }
  if (grants_ok && type_ok) {
    if (s.application_type == "service" &&
        s.grant_types != std::vector<std::string>{std::string(kGrantClientCredentials)}) {
      causes.Add(grants_path, "service apps allow only client_credentials");
    } else if (is_public && s.Allows(kGrantClientCredentials)) {
      causes.Add(grants_path, "client_credentials is only for confidential apps (web, service)");
    }
  }
  if (grants_ok && s.Allows(kGrantRefreshToken) && !s.Allows(kGrantAuthorizationCode)) {
    causes.Add(grants_path, "refresh_token needs authorization_code");
  }
  const bool code_flow = s.Allows(kGrantAuthorizationCode);

  // token_endpoint_auth_method, defaulting to what the type allows first.
  const std::string method_path = Path(cred_path, "token_endpoint_auth_method");
  if (auth_method) {
    if (!OneOf(*auth_method, {kAuthBasic, kAuthPost, kAuthPrivateKeyJwt, kAuthNone})) {
      causes.Add(method_path,
                 "must be one of client_secret_basic, client_secret_post, private_key_jwt, none");
    } else if (is_public && *auth_method != kAuthNone) {
      causes.Add(method_path, "must be none for public apps (browser, native)");
    } else if (confidential && *auth_method == kAuthNone) {
      causes.Add(method_path, "none is only for public apps (browser, native)");
    }
    draft.auth_method = *auth_method;
  } else if (type_ok) {
    draft.auth_method = std::string(is_public ? kAuthNone : kAuthBasic);
  }

  // redirect_uris and post_logout_redirect_uris.
  const bool native = s.application_type == "native";
  const std::string redirect_path = Path(path, "redirect_uris");
  std::optional<std::vector<std::string>> uris =
      StringsMember(*oauth, "redirect_uris", redirect_path, causes);
  if (uris) {
    CheckUris(*uris, redirect_path, native, causes);
    s.redirect_uris = *uris;
  }
  const bool uris_malformed =
      !uris && oauth->contains("redirect_uris") && !(*oauth)["redirect_uris"].is_null();
  if (code_flow && !uris_malformed && s.redirect_uris.empty()) {
    causes.Add(redirect_path, "must list at least one URI when authorization_code is allowed");
  }
  const std::string logout_path = Path(path, "post_logout_redirect_uris");
  if (auto uris = StringsMember(*oauth, "post_logout_redirect_uris", logout_path, causes)) {
    CheckUris(*uris, logout_path, native, causes);
    s.post_logout_redirect_uris = *uris;
  }

  // response_types follow the grant types.
  std::vector<std::string> expected_responses;
  if (code_flow) expected_responses.push_back("code");
  const std::string responses_path = Path(path, "response_types");
  if (auto responses = StringsMember(*oauth, "response_types", responses_path, causes);
      responses && grants_ok && *responses != expected_responses) {
    causes.Add(responses_path, code_flow ? "must be [\"code\"] when authorization_code is allowed"
                                         : "must be empty when authorization_code is not allowed");
  }
  s.response_types = expected_responses;

  // jwks, for private_key_jwt only.
  const std::string jwks_path = Path(path, "jwks");
  auto jwks = oauth->find("jwks");
  const bool has_jwks = jwks != oauth->end() && !jwks->is_null();
  if (draft.auth_method == kAuthPrivateKeyJwt) {
    if (!has_jwks) {
      causes.Add(jwks_path, "is required with private_key_jwt (at least one ES256 or EdDSA key)");
    } else {
      s.jwks = CheckJwks(*jwks, jwks_path, causes);
    }
  } else if (has_jwks) {
    causes.Add(jwks_path, "is only for token_endpoint_auth_method private_key_jwt");
  }

  // The tenant key that signs the app's ID tokens.
  const std::string alg_path = Path(path, "id_token_signed_response_alg");
  if (std::optional<std::string> alg =
          StringMember(*oauth, "id_token_signed_response_alg", alg_path, causes)) {
    if (*alg != kAlgEs256 && *alg != kAlgEdDsa) {
      causes.Add(alg_path, "must be ES256 or EdDSA");
    } else {
      s.id_token_signed_response_alg = *alg;
    }
  }

  const std::string lifetimes_path = Path(path, "token_lifetimes");
  if (const Json* lifetimes = ObjectMember(*oauth, "token_lifetimes", lifetimes_path,
                                           {"access_token", "id_token", "refresh_token"}, causes)) {
    CheckLifetime(*lifetimes, kAccessTokenRule, lifetimes_path, s.access_token_lifetime, causes);
    CheckLifetime(*lifetimes, kIdTokenRule, lifetimes_path, s.id_token_lifetime, causes);
    CheckLifetime(*lifetimes, kRefreshTokenRule, lifetimes_path, s.refresh_token_lifetime, causes);
  }

  if (!causes.empty()) return causes.Status();
  return draft;
}

Json LifetimesJson(const AppSettings& s) {
  return {{"access_token", absl::FormatDuration(s.access_token_lifetime)},
          {"id_token", absl::FormatDuration(s.id_token_lifetime)},
          {"refresh_token", absl::FormatDuration(s.refresh_token_lifetime)}};
}

// settings.oauthClient without application_type, which AppRecord keeps in its own column.
std::string SettingsJson(const AppSettings& s) {
  Json j = {{"redirect_uris", s.redirect_uris},
            {"post_logout_redirect_uris", s.post_logout_redirect_uris},
            {"response_types", s.response_types},
            {"grant_types", s.grant_types},
            {"id_token_signed_response_alg", s.id_token_signed_response_alg},
            {"token_lifetimes", LifetimesJson(s)}};
  if (!s.jwks.is_null()) j["jwks"] = s.jwks;
  return DumpJson(j);
}

audit::Principal AppPrincipal(const AppRecord& app) {
  return {app.id, "AppInstance", app.label, app.label};
}

absl::Status AppNotFound(std::string_view id) {
  return NotFoundError(fmt::format("{} (AppInstance)", id));
}

absl::StatusOr<AppRecord> FindApp(Transaction& tx, const TenantId& tenant, std::string_view id) {
  if (id.empty()) return AppNotFound(id);
  absl::StatusOr<AppRecord> app = tx.Oidc().GetApp(tenant, id);
  if (absl::IsNotFound(app.status())) return AppNotFound(id);
  return app;
}

std::string Joined(const std::vector<std::string>& v) {
  return fmt::format("{}", fmt::join(v, " "));
}

}  // namespace

bool AppSettings::Allows(std::string_view grant_type) const {
  return std::find(grant_types.begin(), grant_types.end(), grant_type) != grant_types.end();
}

absl::StatusOr<AppSettings> SettingsOf(const AppRecord& app) {
  auto corrupt = [&app](std::string_view what) {
    return absl::InternalError(
        fmt::format("app {}: stored settings are corrupt ({})", app.id, what));
  };
  absl::StatusOr<Json> parsed = ParseJson(app.settings_json);
  if (!parsed.ok() || !parsed->is_object()) return corrupt("not a JSON object");
  const Json& j = *parsed;
  AppSettings s;
  s.application_type = app.application_type;
  auto strings = [&](const char* key, std::vector<std::string>& out) -> bool {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return false;
    for (const Json& v : *it) {
      if (!v.is_string()) return false;
      out.push_back(v.get<std::string>());
    }
    return true;
  };
  if (!strings("redirect_uris", s.redirect_uris) ||
      !strings("post_logout_redirect_uris", s.post_logout_redirect_uris) ||
      !strings("response_types", s.response_types) || !strings("grant_types", s.grant_types)) {
    return corrupt("URI, response or grant type lists");
  }
  if (auto it = j.find("jwks"); it != j.end()) {
    if (!it->is_object() || !it->contains("keys") || !(*it)["keys"].is_array()) {
      return corrupt("jwks");
    }
    s.jwks = *it;
  }
  // Absent from apps stored before the setting existed: they sign with ES256.
  if (auto it = j.find("id_token_signed_response_alg"); it != j.end()) {
    if (!it->is_string() || (*it != kAlgEs256 && *it != kAlgEdDsa)) {
      return corrupt("id_token_signed_response_alg");
    }
    s.id_token_signed_response_alg = it->get<std::string>();
  }
  auto lifetimes = j.find("token_lifetimes");
  if (lifetimes == j.end() || !lifetimes->is_object()) return corrupt("token_lifetimes");
  for (auto [key, out] : {std::pair{"access_token", &s.access_token_lifetime},
                          std::pair{"id_token", &s.id_token_lifetime},
                          std::pair{"refresh_token", &s.refresh_token_lifetime}}) {
    auto it = lifetimes->find(key);
    if (it == lifetimes->end() || !it->is_string() ||
        !absl::ParseDuration(it->get<std::string>(), out)) {
      return corrupt("token_lifetimes");
    }
  }
  return s;
}

absl::StatusOr<support::PublicJwk> ClientKey(const AppSettings& settings, const Json& jwt_header) {
  if (!jwt_header.is_object()) return absl::InvalidArgumentError("JWT header is not an object");
  if (!settings.jwks.is_object() || !settings.jwks.contains("keys") ||
      !settings.jwks["keys"].is_array() || settings.jwks["keys"].empty()) {
    return absl::NotFoundError("the client has no registered keys");
  }
  const Json& keys = settings.jwks["keys"];
  auto kid = jwt_header.find("kid");
  if (kid == jwt_header.end()) {
    // Without a kid only an unambiguous key may be used.
    if (keys.size() != 1) return absl::NotFoundError("no kid in the JWT header");
    return support::ParsePublicJwk(keys[0]);
  }
  if (!kid->is_string()) return absl::NotFoundError("kid is not a string");
  for (const Json& key : keys) {
    if (StringOr(key, "kid") == kid->get_ref<const std::string&>()) {
      return support::ParsePublicJwk(key);
    }
  }
  return absl::NotFoundError(fmt::format("unknown kid '{}'", kid->get_ref<const std::string&>()));
}

Json AppView(const AppRecord& app, const AppSettings& settings,
             const std::optional<std::string>& client_secret, std::string_view base_url) {
  Json oauth_credentials = {{"client_id", app.id},
                            {"token_endpoint_auth_method", app.token_endpoint_auth_method}};
  if (client_secret) oauth_credentials["client_secret"] = *client_secret;
  Json oauth_settings = {{"application_type", app.application_type},
                         {"redirect_uris", settings.redirect_uris},
                         {"post_logout_redirect_uris", settings.post_logout_redirect_uris},
                         {"response_types", settings.response_types},
                         {"grant_types", settings.grant_types},
                         {"id_token_signed_response_alg", settings.id_token_signed_response_alg},
                         {"token_lifetimes", LifetimesJson(settings)}};
  if (app.token_endpoint_auth_method == kAuthPrivateKeyJwt && !settings.jwks.is_null()) {
    oauth_settings["jwks"] = settings.jwks;
  }
  Json view = {{"id", app.id},
               {"name", kAppName},
               {"label", app.label},
               {"status", app.status},
               {"signOnMode", kSignOnMode},
               {"created", FormatRfc3339(app.created)},
               {"lastUpdated", FormatRfc3339(app.last_updated)},
               {"credentials", {{"oauthClient", oauth_credentials}}},
               {"settings", {{"oauthClient", oauth_settings}}}};
  // base_url is the tenant's base (`<public base>/t/<tenant>`); links are left out without it.
  if (!base_url.empty()) {
    std::string self = fmt::format("{}/api/v1/apps/{}", base_url, app.id);
    bool active = app.status == store::kAppActive;
    view["_links"] = {
        {"self", {{"href", self}}},
        {active ? "deactivate" : "activate",
         {{"href", fmt::format("{}/lifecycle/{}", self, active ? "deactivate" : "activate")}}}};
  }
  return view;
}

Apps::Apps(store::Store& store, const Clock& clock, crypto::Random& random)
    : store_(store), clock_(clock), random_(random) {}

absl::Status Apps::Write(absl::FunctionRef<absl::Status(Transaction&)> fn) {
  absl::Status written = store_.Write(fn);
  // Even after a failure: whether a failed commit left nothing behind is the store's business.
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return written;
}

absl::StatusOr<IssuedApp> Apps::Create(const TenantId& tenant, const audit::RequestContext& ctx,
                                       const Json& body) {
  ASSIGN_OR_RETURN(Draft draft, ParseBody(body, ""));
  IssuedApp issued;
  AppRecord& app = issued.app;
  app.id = random_.Id(store::kAppIdPrefix);
  app.tenant_id = tenant;
  app.label = draft.label;
  app.status = std::string(store::kAppActive);
  app.application_type = draft.settings.application_type;
  app.token_endpoint_auth_method = draft.auth_method;
  if (UsesSecret(draft.auth_method)) {
    issued.client_secret = random_.Token(kSecretBytes);
    app.client_secret_hash = crypto::Sha256Hex(*issued.client_secret);
  }
  app.settings_json = SettingsJson(draft.settings);
  app.created = app.last_updated = clock_.Now();
  issued.settings = std::move(draft.settings);
  RETURN_IF_ERROR(Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Oidc().InsertApp(app));
    audit::EventSpec spec{
        .event_type = "application.lifecycle.create",
        .display_message = "Add application",
        .targets = {AppPrincipal(app)},
        .debug_data = {{"applicationType", app.application_type},
                       {"tokenEndpointAuthMethod", app.token_endpoint_auth_method},
                       {"grantTypes", Joined(issued.settings.grant_types)},
                       {"redirectUris", Joined(issued.settings.redirect_uris)}}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  return issued;
}

absl::StatusOr<AppRecord> Apps::Get(const TenantId& tenant, std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindApp(tx, tenant, id); });
}

absl::StatusOr<std::vector<AppRecord>> Apps::List(const TenantId& tenant, const store::Page& page) {
  if (page.limit <= 0) {
    return ValidationError("Api validation failed: limit", {"limit: must be positive"});
  }
  return store::ReadResult(store_,
                           [&](Transaction& tx) { return tx.Oidc().ListApps(tenant, page); });
}

absl::StatusOr<IssuedApp> Apps::Replace(const TenantId& tenant, const audit::RequestContext& ctx,
                                        std::string_view id, const Json& body) {
  ASSIGN_OR_RETURN(Draft draft, ParseBody(body, id));
  IssuedApp issued;
  RETURN_IF_ERROR(Write([&](Transaction& tx) -> absl::Status {
    issued.client_secret.reset();
    ASSIGN_OR_RETURN(issued.app, FindApp(tx, tenant, id));
    AppRecord& app = issued.app;
    std::string previous_method = app.token_endpoint_auth_method;
    app.label = draft.label;
    app.application_type = draft.settings.application_type;
    app.token_endpoint_auth_method = draft.auth_method;
    if (!UsesSecret(draft.auth_method)) {
      // A secret the app can no longer use must not come back to life if the method is switched
      // back later.
      app.client_secret_hash.clear();
    } else if (app.client_secret_hash.empty()) {
      issued.client_secret = random_.Token(kSecretBytes);
      app.client_secret_hash = crypto::Sha256Hex(*issued.client_secret);
    }
    app.settings_json = SettingsJson(draft.settings);
    app.last_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Oidc().UpdateApp(app));
    audit::EventSpec spec{
        .event_type = "application.lifecycle.update",
        .display_message = "Update application",
        .targets = {AppPrincipal(app)},
        .debug_data = {{"applicationType", app.application_type},
                       {"tokenEndpointAuthMethod", app.token_endpoint_auth_method},
                       {"previousTokenEndpointAuthMethod", previous_method},
                       {"grantTypes", Joined(draft.settings.grant_types)},
                       {"redirectUris", Joined(draft.settings.redirect_uris)},
                       {"clientSecretIssued", issued.client_secret ? "true" : "false"}}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  issued.settings = std::move(draft.settings);
  return issued;
}

absl::StatusOr<AppRecord> Apps::SetStatus(const TenantId& tenant, const audit::RequestContext& ctx,
                                          std::string_view id, bool active) {
  const std::string_view to = active ? store::kAppActive : store::kAppInactive;
  AppRecord app;
  RETURN_IF_ERROR(Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(app, FindApp(tx, tenant, id));
    // Asking for the status the app already has changes nothing, so there is no event (as the
    // reference API, it is not an error either).
    if (app.status == to) return absl::OkStatus();
    app.status = std::string(to);
    app.last_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Oidc().UpdateApp(app));
    audit::EventSpec spec{
        .event_type =
            active ? "application.lifecycle.activate" : "application.lifecycle.deactivate",
        .display_message = active ? "Activate application" : "Deactivate application",
        .targets = {AppPrincipal(app)}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  return app;
}

absl::Status Apps::Delete(const TenantId& tenant, const audit::RequestContext& ctx,
                          std::string_view id) {
  absl::Status refused;
  RETURN_IF_ERROR(Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(AppRecord app, FindApp(tx, tenant, id));
    audit::EventSpec spec{.event_type = "application.lifecycle.delete",
                          .display_message = "Delete application",
                          .targets = {AppPrincipal(app)}};
    if (app.status != store::kAppInactive) {
      // The refusal is a decision too: it is recorded, and nothing else changes.
      spec.outcome = std::string(audit::kFailure);
      spec.reason = fmt::format("Application status is {}", app.status);
      refused =
          ApiError(absl::StatusCode::kFailedPrecondition, kErrWrongStatus,
                   fmt::format("Operation not allowed in the app's current status: {}", app.status),
                   {"status: deactivate the app before deleting it"});
      return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
    }
    RETURN_IF_ERROR(tx.Oidc().DeleteApp(tenant, app.id));
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  return refused;
}

absl::StatusOr<IssuedApp> Apps::NewSecret(const TenantId& tenant, const audit::RequestContext& ctx,
                                          std::string_view id) {
  IssuedApp issued;
  absl::Status refused;
  RETURN_IF_ERROR(Write([&](Transaction& tx) -> absl::Status {
    issued.client_secret.reset();
    ASSIGN_OR_RETURN(issued.app, FindApp(tx, tenant, id));
    AppRecord& app = issued.app;
    audit::EventSpec spec{.event_type = "application.client_secret.rotate",
                          .display_message = "Rotate client secret",
                          .targets = {AppPrincipal(app)}};
    if (!UsesSecret(app.token_endpoint_auth_method)) {
      spec.outcome = std::string(audit::kFailure);
      spec.reason = fmt::format("token_endpoint_auth_method is {}", app.token_endpoint_auth_method);
      refused = ValidationError(
          "Api validation failed: token_endpoint_auth_method",
          {fmt::format("{}.token_endpoint_auth_method: an app using {} has no client secret",
                       kCredentialsPath, app.token_endpoint_auth_method)});
      return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
    }
    issued.client_secret = random_.Token(kSecretBytes);
    app.client_secret_hash = crypto::Sha256Hex(*issued.client_secret);
    app.last_updated = clock_.Now();
    RETURN_IF_ERROR(tx.Oidc().UpdateApp(app));
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  RETURN_IF_ERROR(refused);
  ASSIGN_OR_RETURN(issued.settings, SettingsOf(issued.app));
  return issued;
}

}  // namespace custos::oidc
