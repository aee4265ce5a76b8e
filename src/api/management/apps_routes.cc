#include "api/management/apps_routes.h"

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/status_macros.h"

namespace custos::api::management {
namespace {

// An authenticated call: the tenant, the caller's context, the request.
struct Call {
  Request& request;
  store::TenantRecord tenant;
  audit::RequestContext ctx;

  // The tenant's base URL, for the app object's links.
  std::string TenantBase() const { return fmt::format("{}/t/{}", request.base_url, tenant.name); }
  std::string AppId() const { return request.Param("appId"); }
};

using CallHandler = std::function<absl::StatusOr<Response>(Call&)>;

// As the other management routes: the tenant first (404 before any authentication), then an
// admin SSWS token of that tenant.
Handler Admin(Services& services, CallHandler fn) {
  return [&services, fn = std::move(fn)](Request& request) -> Response {
    absl::StatusOr<Response> result = [&]() -> absl::StatusOr<Response> {
      ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(services, request));
      ASSIGN_OR_RETURN(audit::RequestContext ctx, AuthenticateAdmin(services, request, tenant));
      Call call{request, std::move(tenant), std::move(ctx)};
      return fn(call);
    }();
    return Respond(request, result);
  };
}

absl::StatusOr<Json> AppJson(const Call& call, const store::AppRecord& app) {
  ASSIGN_OR_RETURN(oidc::AppSettings settings, oidc::SettingsOf(app));
  return oidc::AppView(app, settings, std::nullopt, call.TenantBase());
}

// The answer of a call that may have issued a secret: the only place it is ever shown.
Response IssuedResponse(const Call& call, const oidc::IssuedApp& issued) {
  return Response::MakeJson(
      200, oidc::AppView(issued.app, issued.settings, issued.client_secret, call.TenantBase()));
}

absl::StatusOr<Response> ListApps(oidc::Apps& apps, Call& call) {
  ASSIGN_OR_RETURN(int limit, ParseLimit(call.request, 20, 200));
  // One more than asked tells whether a next page exists.
  ASSIGN_OR_RETURN(std::vector<store::AppRecord> found,
                   apps.List(call.tenant.id, {call.request.Query("after"), limit + 1}));
  std::string next_after;
  if (static_cast<int>(found.size()) > limit) {
    found.resize(limit);
    next_after = found.back().id;
  }
  Json items = Json::array();
  for (const store::AppRecord& app : found) {
    ASSIGN_OR_RETURN(Json j, AppJson(call, app));
    items.push_back(std::move(j));
  }
  Response r = Response::MakeJson(200, items);
  AddPagingLinks(r, call.request, next_after);
  return r;
}

}  // namespace

std::vector<Route> AppsRoutes(Services& s, oidc::Apps& apps) {
  const std::string a = "/t/{tenant}/api/v1/apps";
  std::vector<Route> routes;
  auto add = [&](std::string method, std::string pattern, CallHandler fn) {
    routes.push_back({std::move(method), std::move(pattern), Admin(s, std::move(fn))});
  };

  add("POST", a, [&apps](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(c.request));
    ASSIGN_OR_RETURN(oidc::IssuedApp issued, apps.Create(c.tenant.id, c.ctx, body));
    return IssuedResponse(c, issued);
  });
  add("GET", a, [&apps](Call& c) { return ListApps(apps, c); });
  add("GET", a + "/{appId}", [&apps](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::AppRecord app, apps.Get(c.tenant.id, c.AppId()));
    ASSIGN_OR_RETURN(Json j, AppJson(c, app));
    return Response::MakeJson(200, j);
  });
  add("PUT", a + "/{appId}", [&apps](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(c.request));
    ASSIGN_OR_RETURN(oidc::IssuedApp issued, apps.Replace(c.tenant.id, c.ctx, c.AppId(), body));
    return IssuedResponse(c, issued);
  });
  add("DELETE", a + "/{appId}", [&apps](Call& c) -> absl::StatusOr<Response> {
    RETURN_IF_ERROR(apps.Delete(c.tenant.id, c.ctx, c.AppId()));
    return Response::NoContent();
  });
  for (bool active : {true, false}) {
    add("POST", a + "/{appId}/lifecycle/" + (active ? "activate" : "deactivate"),
        [&apps, active](Call& c) -> absl::StatusOr<Response> {
          RETURN_IF_ERROR(apps.SetStatus(c.tenant.id, c.ctx, c.AppId(), active).status());
          return Response::MakeJson(200, Json::object());
        });
  }
  add("POST", a + "/{appId}/credentials/secrets", [&apps](Call& c) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(oidc::IssuedApp issued, apps.NewSecret(c.tenant.id, c.ctx, c.AppId()));
    return IssuedResponse(c, issued);
  });
  return routes;
}

}  // namespace custos::api::management
