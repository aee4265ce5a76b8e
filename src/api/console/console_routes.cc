#include "api/console/console_routes.h"

#include <memory>
#include <string>
#include <utility>

#include "api/console/console_files.h"
#include "audit/sequencer.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::api::console {
namespace {

// The origin of the tenant's verifiable log: the one it got with its first entry, else the one
// it will get.
absl::StatusOr<std::string> LogOriginOf(Services& services, const Request& request,
                                        const store::TenantRecord& tenant) {
  absl::StatusOr<store::LogStateRecord> state = store::ReadResult(
      services.store,
      [&](store::Transaction& tx) { return tx.Logs().GetState(tenant.id.value()); });
  if (state.ok()) return state->origin;
  if (!absl::IsNotFound(state.status())) return state.status();
  const std::string host = LogHost(request.base_url);
  return tenant.id.value() == store::kProviderLogId ? audit::ProviderLogOrigin(host)
                                                    : audit::TenantLogOrigin(host, tenant.name);
}

absl::StatusOr<Response> SessionAnswer(Services& services, const Request& request,
                                       const store::TenantRecord& tenant,
                                       const ConsoleAdmin& admin) {
  ASSIGN_OR_RETURN(std::string origin, LogOriginOf(services, request, tenant));
  Json body = {{"user",
                {{"id", admin.session.user.id.value()},
                 {"login", admin.session.user.login},
                 {"displayName", admin.display_name}}},
               {"tenant", {{"name", tenant.name}}},
               {"provider", tenant.id.value() == store::kProviderLogId},
               {"expiresAt", FormatRfc3339(admin.session.expires_at)},
               {"logOrigin", origin}};
  Response r = Response::MakeJson(200, body);
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

}  // namespace

std::vector<Route> ConsoleRoutes(Services& services, ::custos::authn::SignIn& sign_in) {
  std::vector<Route> routes;
  const std::string session = "/t/{tenant}/api/v1/console/session";
  for (const bool sign_in_now : {true, false}) {
    routes.push_back(
        {sign_in_now ? "POST" : "GET", session,
         [&services, &sign_in, sign_in_now](Request& request) -> Response {
           return Respond(request, [&]() -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(services, request));
             ASSIGN_OR_RETURN(
                 ConsoleAdmin admin,
                 AuthenticateConsoleAdmin(services, sign_in, request, tenant, sign_in_now));
             return SessionAnswer(services, request, tenant, admin);
           }());
         }});
  }
  routes.push_back(
      {"DELETE", session, [&services, &sign_in](Request& request) -> Response {
         return Respond(request, [&]() -> absl::StatusOr<Response> {
           ASSIGN_OR_RETURN(store::TenantRecord tenant, ResolveTenant(services, request));
           ASSIGN_OR_RETURN(ConsoleAdmin admin,
                            AuthenticateConsoleAdmin(services, sign_in, request, tenant, false));
           RETURN_IF_ERROR(sign_in.EndSession(tenant.id, BearerToken(request), admin.ctx));
           return Response::NoContent();
         }());
       }});

  // The three file routes share one cache of the directory.
  auto files = std::make_shared<ConsoleFiles>(ConsoleDir(services.config));
  routes.push_back({"GET", "/console", [](Request&) -> Response {
                      Response r;
                      r.status = 301;
                      r.AddHeader("Location", "/console/");
                      AddConsoleHeaders(r);
                      return r;
                    }});
  routes.push_back(
      {"GET", "/console/", [files](Request& request) { return files->Serve("", request); }});
  routes.push_back({"GET", "/console/{path...}", [files](Request& request) {
                      return files->Serve(request.Param("path"), request);
                    }});
  return routes;
}

}  // namespace custos::api::console
