#include "api/log/log_routes.h"

#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "absl/strings/match.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace custos::api::log {
namespace {

// Messages of the log reader are written for clients (what is missing, which parameter is
// wrong); give them the management API's error codes so that they reach the client.
absl::Status Visible(absl::Status status) {
  if (!ErrorCodeOf(status).empty()) return status;
  if (absl::IsNotFound(status)) {
    return ApiError(absl::StatusCode::kNotFound, kErrNotFound, std::string(status.message()));
  }
  if (absl::IsInvalidArgument(status)) return ValidationError(std::string(status.message()));
  return status;
}

template <typename T>
absl::StatusOr<T> Visible(absl::StatusOr<T> result) {
  if (!result.ok()) return Visible(result.status());
  return result;
}

// A decimal query parameter; absent gives nullopt.
absl::StatusOr<std::optional<uint64_t>> NumberParam(const Request& request, std::string_view name) {
  if (!request.HasQuery(name)) return std::nullopt;
  const std::string text = request.Query(name);
  uint64_t value = 0;
  bool ok = !text.empty() && text.size() <= 19 && (text == "0" || text[0] != '0');
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!ok) return ValidationError(fmt::format("{} must be a non-negative decimal integer", name));
  return value;
}

std::vector<std::string> Base64All(const std::vector<std::string>& hashes) {
  std::vector<std::string> out;
  out.reserve(hashes.size());
  for (const std::string& h : hashes) out.push_back(crypto::Base64Encode(h));
  return out;
}

Response Text(std::string body, std::string_view cache_control) {
  Response r;
  r.body = std::move(body);
  r.AddHeader("Content-Type", "text/plain; charset=utf-8");
  r.AddHeader("Cache-Control", std::string(cache_control));
  return r;
}

// C2SP tlog-proof@v1 with the entry as the extra data (unauthenticated by the format; the
// verifier authenticates it by hashing it into the proof).
std::string TlogProof(const audit::InclusionAnswer& answer) {
  std::string out = "c2sp.org/tlog-proof@v1\n";
  out += "extra " + crypto::Base64Encode(answer.entry) + "\n";
  out += fmt::format("index {}\n", answer.index);
  for (const std::string& h : answer.hashes) out += crypto::Base64Encode(h) + "\n";
  out += "\n" + answer.checkpoint;
  return out;
}

// Serves one resource of the log `log_id`; `path` is what follows ".../log/".
absl::StatusOr<Response> ServeLog(audit::LogReader& reader, audit::LogKeys& keys,
                                  const Request& request, const std::string& log_id,
                                  const std::string& path, bool is_public) {
  const std::string_view immutable =
      is_public ? "public, max-age=31536000, immutable" : "private, max-age=31536000, immutable";
  if (path == "checkpoint") {
    ASSIGN_OR_RETURN(store::CheckpointRecord latest, Visible(reader.LatestCheckpoint(log_id)));
    return Text(latest.note, "no-cache");
  }
  if (path == "keys") {
    ASSIGN_OR_RETURN(std::vector<std::string> vkeys, keys.VerifierKeys());
    std::string body;
    for (const std::string& vkey : vkeys) body += vkey + "\n";
    return Text(std::move(body), "no-cache");
  }
  if (path.starts_with("tile/")) {
    ASSIGN_OR_RETURN(audit::tiles::TilePathParts parts, Visible(audit::tiles::ParseTilePath(path)));
    ASSIGN_OR_RETURN(std::string bytes, Visible(reader.Resource(log_id, parts)));
    Response r;
    r.body = std::move(bytes);
    r.AddHeader("Content-Type", "application/octet-stream");
    // Entry bundles hold the events themselves (logins, addresses): never kept by shared
    // caches, so that a log made private again stops being served at once.
    r.AddHeader("Cache-Control",
                parts.entries ? "private, max-age=31536000, immutable" : std::string(immutable));
    return r;
  }
  if (path == "proof/inclusion" || path == "proof/tlog-proof") {
    ASSIGN_OR_RETURN(std::optional<uint64_t> index, NumberParam(request, "index"));
    std::optional<uint64_t> size;
    if (path == "proof/inclusion") {
      ASSIGN_OR_RETURN(size, NumberParam(request, "size"));
    }
    const std::string uuid = request.Query("uuid");
    if (index.has_value() == !uuid.empty()) {
      return ValidationError("give either index or uuid");
    }
    ASSIGN_OR_RETURN(audit::InclusionAnswer answer,
                     Visible(index ? reader.Inclusion(log_id, *index, size)
                                   : reader.InclusionByUuid(log_id, uuid, size)));
    if (path == "proof/tlog-proof") return Text(TlogProof(answer), "no-cache");
    Json body = {{"origin", answer.origin},
                 {"index", answer.index},
                 {"treeSize", answer.tree_size},
                 {"leafHash", crypto::Base64Encode(answer.leaf_hash)},
                 {"hashes", Base64All(answer.hashes)}};
    if (!answer.checkpoint.empty()) body["checkpoint"] = answer.checkpoint;
    return Response::MakeJson(200, body);
  }
  if (path == "proof/consistency") {
    ASSIGN_OR_RETURN(std::optional<uint64_t> from, NumberParam(request, "from"));
    ASSIGN_OR_RETURN(std::optional<uint64_t> to, NumberParam(request, "to"));
    if (!from) return ValidationError("from is required");
    ASSIGN_OR_RETURN(audit::ConsistencyAnswer answer,
                     Visible(reader.Consistency(log_id, *from, to)));
    return Response::MakeJson(200, {{"origin", answer.origin},
                                    {"from", answer.from},
                                    {"to", answer.to},
                                    {"hashes", Base64All(answer.hashes)}});
  }
  return ApiError(absl::StatusCode::kNotFound, kErrNotFound,
                  fmt::format("no log resource '{}'", path));
}

// The provider log: public when configured so, otherwise a provider token or the Bearer session
// of a console admin of the provider tenant (its security team). A refused token or session is
// an event in the provider log.
absl::Status AuthorizeProvider(Services& services, const Request& request) {
  if (services.config.provider_log_public) return absl::OkStatus();
  // As AuthenticateAdmin decides: by the scheme, so that a Bearer token too long to look up is
  // a refused console session, not a refused provider token.
  if (services.sign_in != nullptr && IsBearer(request)) {
    ASSIGN_OR_RETURN(store::TenantRecord provider, ProviderTenant(services));
    return AuthenticateConsoleAdmin(services, *services.sign_in, request, provider, false).status();
  }
  const std::string header = request.Header("authorization");
  const std::string token = SswsToken(request);
  absl::StatusOr<store::ProviderTokenRecord> record = absl::NotFoundError("no token");
  if (!token.empty()) {
    const std::string hash = crypto::Sha256Hex(token);
    record = store::ReadResult(services.store, [&](store::Transaction& tx) {
      return tx.ProviderTokens().FindByHash(hash);
    });
  }
  if (record.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(record.status())) return record.status();
  RETURN_IF_ERROR(TakeRefusal(services, request));
  audit::RequestContext ctx = ContextFor(request);
  ctx.actor = {"unknown", "ProviderToken", "unknown", "Unknown provider token"};
  audit::EventSpec spec{.event_type = "system.provider_token.verify",
                        .display_message = "Verify provider token",
                        .severity = "WARN",
                        .outcome = std::string(audit::kFailure),
                        .reason = header.empty() ? "MISSING_CREDENTIALS" : "INVALID_CREDENTIALS"};
  store::EventRecord event = audit::MakeEvent(TenantId(std::string(store::kProviderLogId)), ctx,
                                              spec, services.clock, services.random);
  RETURN_IF_ERROR(services.store.Write(
      [&](store::Transaction& tx) { return tx.Events().Append(event).status(); }));
  return ApiError(absl::StatusCode::kUnauthenticated, kErrInvalidToken, "Invalid token provided");
}

Json KeyJson(const std::string& vkey, bool current) {
  absl::StatusOr<audit::note::VerifierKey> key = audit::note::ParseVerifierKey(vkey);
  return {{"vkey", vkey},
          {"name", key.ok() ? key->name : ""},
          {"keyId", key.ok() ? fmt::format("{:08x}", key->key_id) : ""},
          {"status", current ? "ACTIVE" : "RETIRED"}};
}

}  // namespace

std::vector<Route> LogRoutes(Services& s, audit::LogReader& reader, audit::LogKeys& keys) {
  std::vector<Route> routes;
  routes.push_back({"GET", "/t/{tenant}/log/{path...}", [&](Request& request) -> Response {
                      return Respond(request, [&]() -> absl::StatusOr<Response> {
                        ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(s, request));
                        if (!tenant.log_public) {
                          RETURN_IF_ERROR(
                              AuthenticateAdmin(s, request, tenant, store::kScopeLogRead).status());
                        }
                        return ServeLog(reader, keys, request, tenant.id.value(),
                                        request.Param("path"), tenant.log_public);
                      }());
                    }});
  routes.push_back({"GET", "/provider/log/{path...}", [&](Request& request) -> Response {
                      return Respond(request, [&]() -> absl::StatusOr<Response> {
                        RETURN_IF_ERROR(AuthorizeProvider(s, request));
                        return ServeLog(reader, keys, request, std::string(store::kProviderLogId),
                                        request.Param("path"), s.config.provider_log_public);
                      }());
                    }});
  routes.push_back({"GET", "/.well-known/custos/log-keys", [&](Request& request) -> Response {
                      return Respond(request, [&]() -> absl::StatusOr<Response> {
                        ASSIGN_OR_RETURN(std::vector<std::string> vkeys, keys.VerifierKeys());
                        std::string body;
                        for (const std::string& vkey : vkeys) body += vkey + "\n";
                        return Text(std::move(body), "no-cache");
                      }());
                    }});
  routes.push_back({"GET", "/t/{tenant}/api/v1/log/keys", [&](Request& request) -> Response {
                      return Respond(request, [&]() -> absl::StatusOr<Response> {
                        ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(s, request));
                        RETURN_IF_ERROR(
                            AuthenticateAdmin(s, request, tenant, store::kScopeLogRead).status());
                        ASSIGN_OR_RETURN(std::vector<std::string> vkeys, keys.VerifierKeys());
                        Json out = Json::array();
                        for (size_t i = 0; i < vkeys.size(); ++i) {
                          out.push_back(KeyJson(vkeys[i], i == 0));
                        }
                        return Response::MakeJson(200, out);
                      }());
                    }});
  routes.push_back({"GET", "/t/{tenant}/api/v1/log/settings", [&](Request& request) -> Response {
                      return Respond(request, [&]() -> absl::StatusOr<Response> {
                        ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(s, request));
                        RETURN_IF_ERROR(
                            AuthenticateAdmin(s, request, tenant, store::kScopeLogRead).status());
                        return Response::MakeJson(200, {{"public", tenant.log_public}});
                      }());
                    }});
  routes.push_back(
      {"PUT", "/t/{tenant}/api/v1/log/settings", [&](Request& request) -> Response {
         return Respond(request, [&]() -> absl::StatusOr<Response> {
           ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(s, request));
           ASSIGN_OR_RETURN(audit::RequestContext ctx, AuthenticateAdmin(s, request, tenant));
           ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
           if (!body.contains("public") || !body["public"].is_boolean()) {
             return ValidationError("Api validation failed: public",
                                    {"public: must be true or false"});
           }
           const bool make_public = body["public"].get<bool>();
           RETURN_IF_ERROR(s.store.Write([&](store::Transaction& tx) -> absl::Status {
             ASSIGN_OR_RETURN(store::TenantRecord current, tx.Tenants().Get(tenant.id));
             const bool was_public = current.log_public;
             current.log_public = make_public;
             RETURN_IF_ERROR(tx.Tenants().Update(current));
             audit::EventSpec spec{
                 .event_type = "log.settings.update",
                 .display_message = "Update verifiable log settings",
                 .targets = {{tenant.id.value(), "Tenant", tenant.name, tenant.name}},
                 .debug_data = {{"public", make_public ? "true" : "false"},
                                {"previousPublic", was_public ? "true" : "false"}}};
             return tx.Events()
                 .Append(audit::MakeEvent(tenant.id, ctx, spec, s.clock, s.random))
                 .status();
           }));
           return Response::MakeJson(200, {{"public", make_public}});
         }());
       }});
  return routes;
}

}  // namespace custos::api::log
