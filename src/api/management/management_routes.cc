#include "api/management/management_routes.h"

#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "api/management/apps_routes.h"
#include "api/management/logs_handler.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/qr_png.h"

namespace custos::api::management {
namespace {

using directory::Directory;

// An authenticated management call: the tenant, the caller's context, the request.
struct Call {
  Request& request;
  store::TenantRecord tenant;
  audit::RequestContext ctx;

  std::string Url(std::string_view path) const {
    return fmt::format("{}/t/{}/api/v1/{}", request.base_url, tenant.name, path);
  }
};

using CallHandler = std::function<absl::StatusOr<Response>(Call&)>;

Handler Admin(Services& services, CallHandler fn, std::string_view scope = store::kScopeAdmin) {
  return [&services, fn = std::move(fn), scope](Request& request) -> Response {
    absl::StatusOr<Response> result = [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(services, request));
      ASSIGN_OR_RETURN(audit::RequestContext ctx,
                       AuthenticateAdmin(services, request, tenant, scope));
      Call call{request, std::move(tenant), std::move(ctx)};
      return fn(call);
    }();
    return Respond(request, result);
  };
}

Json UserJson(const Call& call, const store::UserRecord& user) {
  Json j = directory::UserView(user);
  j["_links"] = {{"self", {{"href", call.Url("users/" + user.id.value())}}}};
  return j;
}

Json GroupJson(const Call& call, const store::GroupRecord& group) {
  Json j = directory::GroupView(group);
  j["_links"] = {{"self", {{"href", call.Url("groups/" + group.id.value())}}},
                 {"users", {{"href", call.Url("groups/" + group.id.value() + "/users")}}}};
  return j;
}

Json FactorJson(const Call& call, const store::UserRecord& user,
                const store::FactorRecord& factor) {
  Json j = directory::FactorView(factor, user.login);
  std::string base = fmt::format("users/{}/factors/{}", user.id.value(), factor.id.value());
  j["_links"] = {{"self", {{"href", call.Url(base)}}},
                 {"verify", {{"href", call.Url(base + "/verify")}}},
                 {"user", {{"href", call.Url("users/" + user.id.value())}}}};
  if (factor.status == store::kFactorPendingActivation) {
    j["_links"]["activate"] = {{"href", call.Url(base + "/lifecycle/activate")}};
  }
  return j;
}

absl::Status UnknownField(std::string_view where, std::string_view key) {
  return ValidationError(fmt::format("Api validation failed: {}", where),
                         {fmt::format("{}: unknown property '{}'", where, key)});
}

// Reads `credentials.password.value` when present, refusing anything else it cannot honour.
absl::StatusOr<std::optional<std::string>> PasswordOf(const Json& body) {
  auto creds = body.find("credentials");
  if (creds == body.end() || creds->is_null()) return std::optional<std::string>();
  if (!creds->is_object()) {
    return ValidationError("Api validation failed: credentials",
                           {"credentials: must be an object"});
  }
  std::optional<std::string> password;
  for (const auto& [key, value] : creds->items()) {
    if (key == "provider") continue;  // read-only; shown on GET and sent back by some clients
    if (key != "password") return UnknownField("credentials", key);
    if (value.is_null() || (value.is_object() && value.empty())) continue;
    auto v = value.is_object() ? value.find("value") : value.end();
    if (!value.is_object() || v == value.end() || !v->is_string() || value.size() != 1) {
      return ValidationError("Api validation failed: password",
                             {"credentials.password: must be {\"value\": \"<password>\"}"});
    }
    password = v->get<std::string>();
  }
  return password;
}

absl::StatusOr<bool> BoolQuery(const Request& request, std::string_view name, bool def) {
  if (!request.HasQuery(name)) return def;
  std::string v = request.Query(name);
  if (v == "true") return true;
  if (v == "false") return false;
  return ValidationError(fmt::format("Api validation failed: {}", name),
                         {fmt::format("{}: must be true or false", name)});
}

absl::StatusOr<directory::ListQuery> ListQueryOf(const Request& request, int def_limit,
                                                 int max_limit) {
  directory::ListQuery query;
  ASSIGN_OR_RETURN(query.limit, ParseLimit(request, def_limit, max_limit));
  query.after = request.Query("after");
  query.filter = request.Query("filter");
  query.search = request.Query("search");
  query.q = request.Query("q");
  return query;
}

Json Empty() { return Json::object(); }

absl::StatusOr<Response> CreateUser(Directory& dir, Call& call) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(call.request));
  for (const auto& [key, value] : body.items()) {
    if (key != "profile" && key != "credentials" && key != "type") {
      return UnknownField("user", key);
    }
  }
  ASSIGN_OR_RETURN(bool activate, BoolQuery(call.request, "activate", true));
  ASSIGN_OR_RETURN(std::optional<std::string> password, PasswordOf(body));
  auto profile = body.find("profile");
  if (profile == body.end()) {
    return ValidationError("Api validation failed: profile",
                           {"profile: The field cannot be left blank"});
  }
  ASSIGN_OR_RETURN(store::UserRecord user,
                   dir.CreateUser(call.tenant.id, call.ctx, *profile, password, activate));
  return Response::MakeJson(200, UserJson(call, user));
}

absl::StatusOr<Response> UpdateUser(Directory& dir, Call& call, bool partial) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(call.request));
  static const char* kReadOnly[] = {"id",          "status",          "created",
                                    "activated",   "statusChanged",   "lastLogin",
                                    "lastUpdated", "passwordChanged", "type",
                                    "_links",      "_embedded",       "transitioningToStatus",
                                    "realmId"};
  for (const auto& [key, value] : body.items()) {
    if (key == "profile" || key == "credentials") continue;
    bool read_only = false;
    for (const char* r : kReadOnly) read_only = read_only || key == r;
    if (!read_only) return UnknownField("user", key);
  }
  ASSIGN_OR_RETURN(std::optional<std::string> password, PasswordOf(body));
  auto profile = body.find("profile");
  if (profile == body.end() && !partial) {
    return ValidationError("Api validation failed: profile",
                           {"profile: The field cannot be left blank"});
  }
  Json p = profile == body.end() ? Json::object() : *profile;
  ASSIGN_OR_RETURN(
      store::UserRecord user,
      dir.UpdateUser(call.tenant.id, call.ctx, call.request.Param("id"), p, password, partial));
  return Response::MakeJson(200, UserJson(call, user));
}

absl::StatusOr<Response> ListUsers(Directory& dir, Call& call) {
  ASSIGN_OR_RETURN(directory::ListQuery query, ListQueryOf(call.request, 200, 200));
  ASSIGN_OR_RETURN(auto page, dir.ListUsers(call.tenant.id, query));
  Json items = Json::array();
  for (const store::UserRecord& u : page.items) items.push_back(UserJson(call, u));
  Response r = Response::MakeJson(200, items);
  AddPagingLinks(r, call.request, page.next_after);
  return r;
}

Response TokenResponse(const Call& call, std::string_view url_key, std::string_view token_key,
                       std::string_view path, const std::string& token) {
  if (token.empty()) return Response::MakeJson(200, Empty());
  // The token rides in the fragment, which browsers never send to a server: it cannot reach an
  // access log, a Referer header or a proxy.
  std::string url =
      fmt::format("{}/t/{}/{}#token={}", call.request.base_url, call.tenant.name, path, token);
  return Response::MakeJson(200, {{std::string(url_key), url}, {std::string(token_key), token}});
}

absl::StatusOr<std::string> PassCodeOf(const Request& request) {
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(request));
  auto it = body.find("passCode");
  if (it == body.end() || !it->is_string()) {
    return ValidationError("Api validation failed: passCode",
                           {"passCode: The field cannot be left blank and must be a string"});
  }
  return it->get<std::string>();
}

absl::StatusOr<Response> EnrollFactor(Services& services, Directory& dir, Call& call) {
  (void)services;
  ASSIGN_OR_RETURN(Json body, ParseObjectBody(call.request));
  std::string factor_type, provider;
  for (const auto& [key, value] : body.items()) {
    if (key != "factorType" && key != "provider" && key != "profile") {
      return UnknownField("factor", key);
    }
    if (key != "profile" && !value.is_string()) {
      return ValidationError("Api validation failed: factor",
                             {fmt::format("{}: must be a string", key)});
    }
  }
  if (auto it = body.find("factorType"); it != body.end()) factor_type = it->get<std::string>();
  if (auto it = body.find("provider"); it != body.end()) provider = it->get<std::string>();
  std::string user_id = call.request.Param("id");
  ASSIGN_OR_RETURN(store::UserRecord user, dir.GetUser(call.tenant.id, user_id));
  ASSIGN_OR_RETURN(directory::FactorEnrollment enrollment,
                   dir.EnrollFactor(call.tenant.id, call.ctx, user.id.value(), factor_type,
                                    provider, fmt::format("Custos ({})", call.tenant.name)));
  ASSIGN_OR_RETURN(std::string png, crypto::QrPng(enrollment.otpauth_uri));
  Json j = FactorJson(call, user, enrollment.factor);
  j["_embedded"] = {{"activation",
                     {{"timeStep", 30},
                      {"sharedSecret", enrollment.shared_secret},
                      {"encoding", "base32"},
                      {"keyLength", 6},
                      {"otpauthUri", enrollment.otpauth_uri},
                      {"_links",
                       {{"qrcode",
                         {{"href", "data:image/png;base64," + crypto::Base64Encode(png)},
                          {"type", "image/png"}}}}}}}};
  Response r = Response::MakeJson(200, j);
  return r;
}

}  // namespace

std::vector<Route> ManagementRoutes(Services& s, Directory& dir, oidc::Apps& apps) {
  const std::string u = "/t/{tenant}/api/v1/users";
  const std::string g = "/t/{tenant}/api/v1/groups";
  std::vector<Route> routes;
  auto add = [&](std::string method, std::string pattern, CallHandler fn) {
    routes.push_back({std::move(method), std::move(pattern), Admin(s, std::move(fn))});
  };
  auto lifecycle = [&](std::string name,
                       std::function<absl::Status(const TenantId&, const audit::RequestContext&,
                                                  std::string_view)>
                           fn) {
    add("POST", u + "/{id}/lifecycle/" + name, [fn](Call& c) -> absl::StatusOr<Response> {
      RETURN_IF_ERROR(fn(c.tenant.id, c.ctx, c.request.Param("id")));
      return Response::MakeJson(200, Empty());
    });
  };

  add("POST", u, [&dir](Call& c) { return CreateUser(dir, c); });
  add("GET", u, [&dir](Call& c) { return ListUsers(dir, c); });
  add("GET", u + "/{id}", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::UserRecord user, dir.GetUser(c.tenant.id, c.request.Param("id")));
    return Response::MakeJson(200, UserJson(c, user));
  });
  add("POST", u + "/{id}", [&dir](Call& c) { return UpdateUser(dir, c, /*partial=*/true); });
  add("PUT", u + "/{id}", [&dir](Call& c) { return UpdateUser(dir, c, /*partial=*/false); });
  add("DELETE", u + "/{id}", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(dir.DeleteUser(c.tenant.id, c.ctx, c.request.Param("id")).status());
    return Response::NoContent();
  });
  add("POST", u + "/{id}/lifecycle/activate", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(directory::IssuedToken issued,
                     dir.Activate(c.tenant.id, c.ctx, c.request.Param("id")));
    return TokenResponse(c, "activationUrl", "activationToken", "signin/activate", issued.token);
  });
  add("POST", u + "/{id}/lifecycle/reset_password", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(directory::IssuedToken issued,
                     dir.ResetPassword(c.tenant.id, c.ctx, c.request.Param("id")));
    return TokenResponse(c, "resetPasswordUrl", "resetPasswordToken", "signin/reset-password",
                         issued.token);
  });
  using namespace std::placeholders;
  lifecycle("deactivate", std::bind(&Directory::Deactivate, &dir, _1, _2, _3));
  lifecycle("suspend", std::bind(&Directory::Suspend, &dir, _1, _2, _3));
  lifecycle("unsuspend", std::bind(&Directory::Unsuspend, &dir, _1, _2, _3));
  lifecycle("unlock", std::bind(&Directory::Unlock, &dir, _1, _2, _3));
  lifecycle("reset_factors", std::bind(&Directory::ResetFactors, &dir, _1, _2, _3));
  add("DELETE", u + "/{id}/sessions", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(dir.ClearSessions(c.tenant.id, c.ctx, c.request.Param("id")).status());
    return Response::NoContent();
  });

  add("GET", u + "/{id}/factors", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::UserRecord user, dir.GetUser(c.tenant.id, c.request.Param("id")));
    ASSIGN_OR_RETURN(auto factors, dir.ListFactors(c.tenant.id, user.id.value()));
    Json items = Json::array();
    for (const auto& f : factors) items.push_back(FactorJson(c, user, f));
    return Response::MakeJson(200, items);
  });
  add("POST", u + "/{id}/factors", [&s, &dir](Call& c) { return EnrollFactor(s, dir, c); });
  add("GET", u + "/{id}/factors/{factorId}", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::UserRecord user, dir.GetUser(c.tenant.id, c.request.Param("id")));
    ASSIGN_OR_RETURN(store::FactorRecord factor,
                     dir.GetFactor(c.tenant.id, user.id.value(), c.request.Param("factorId")));
    return Response::MakeJson(200, FactorJson(c, user, factor));
  });
  add("POST", u + "/{id}/factors/{factorId}/lifecycle/activate",
      [&dir](Call& c) -> absl::StatusOr<Response> {
        ASSIGN_OR_RETURN(std::string code, PassCodeOf(c.request));
        ASSIGN_OR_RETURN(store::UserRecord user, dir.GetUser(c.tenant.id, c.request.Param("id")));
        ASSIGN_OR_RETURN(store::FactorRecord factor,
                         dir.ActivateFactor(c.tenant.id, c.ctx, user.id.value(),
                                            c.request.Param("factorId"), code));
        return Response::MakeJson(200, FactorJson(c, user, factor));
      });
  add("POST", u + "/{id}/factors/{factorId}/verify", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(std::string code, PassCodeOf(c.request));
    RETURN_IF_ERROR(dir.VerifyFactor(c.tenant.id, c.ctx, c.request.Param("id"),
                                     c.request.Param("factorId"), code));
    return Response::MakeJson(200, {{"factorResult", "SUCCESS"}});
  });
  add("DELETE", u + "/{id}/factors/{factorId}", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(
        dir.DeleteFactor(c.tenant.id, c.ctx, c.request.Param("id"), c.request.Param("factorId")));
    return Response::NoContent();
  });

  add("POST", g, [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(c.request));
    for (const auto& [key, value] : body.items()) {
      if (key != "profile") return UnknownField("group", key);
    }
    ASSIGN_OR_RETURN(store::GroupRecord group,
                     dir.CreateGroup(c.tenant.id, c.ctx, body.value("profile", Json())));
    return Response::MakeJson(200, GroupJson(c, group));
  });
  add("GET", g, [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(directory::ListQuery query, ListQueryOf(c.request, 10000, 10000));
    ASSIGN_OR_RETURN(auto page, dir.ListGroups(c.tenant.id, query));
    Json items = Json::array();
    for (const store::GroupRecord& group : page.items) items.push_back(GroupJson(c, group));
    Response r = Response::MakeJson(200, items);
    AddPagingLinks(r, c.request, page.next_after);
    return r;
  });
  add("GET", g + "/{id}", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::GroupRecord group, dir.GetGroup(c.tenant.id, c.request.Param("id")));
    return Response::MakeJson(200, GroupJson(c, group));
  });
  add("PUT", g + "/{id}", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(c.request));
    static const char* kReadOnly[] = {
        "id",          "created", "lastUpdated", "lastMembershipUpdated",
        "objectClass", "type",    "_links",      "_embedded"};
    for (const auto& [key, value] : body.items()) {
      bool ok = key == "profile";
      for (const char* r : kReadOnly) ok = ok || key == r;
      if (!ok) return UnknownField("group", key);
    }
    ASSIGN_OR_RETURN(
        store::GroupRecord group,
        dir.UpdateGroup(c.tenant.id, c.ctx, c.request.Param("id"), body.value("profile", Json())));
    return Response::MakeJson(200, GroupJson(c, group));
  });
  add("DELETE", g + "/{id}", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(dir.DeleteGroup(c.tenant.id, c.ctx, c.request.Param("id")));
    return Response::NoContent();
  });
  add("GET", g + "/{id}/users", [&dir](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(int limit, ParseLimit(c.request, 1000, 1000));
    ASSIGN_OR_RETURN(auto page, dir.ListMembers(c.tenant.id, c.request.Param("id"),
                                                c.request.Query("after"), limit));
    Json items = Json::array();
    for (const store::UserRecord& user : page.items) items.push_back(UserJson(c, user));
    Response r = Response::MakeJson(200, items);
    AddPagingLinks(r, c.request, page.next_after);
    return r;
  });
  add("PUT", g + "/{id}/users/{userId}", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(
        dir.AddMember(c.tenant.id, c.ctx, c.request.Param("id"), c.request.Param("userId")));
    return Response::NoContent();
  });
  add("DELETE", g + "/{id}/users/{userId}", [&dir](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(
        dir.RemoveMember(c.tenant.id, c.ctx, c.request.Param("id"), c.request.Param("userId")));
    return Response::NoContent();
  });

  for (Route& r : AppsRoutes(s, apps)) routes.push_back(std::move(r));

  // Log-read tokens may page the System Log too.
  routes.push_back({"GET", "/t/{tenant}/api/v1/logs",
                    Admin(
                        s, [&s](Call& c) { return ListLogs(s, c.request, c.tenant, c.ctx); },
                        store::kScopeLogRead)});
  return routes;
}

}  // namespace custos::api::management
