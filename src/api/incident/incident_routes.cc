#include "api/incident/incident_routes.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"

namespace custos::api::incident {
namespace {

namespace inc = custos::incident;

// Refuses members other than `allowed`.
absl::Status OnlyFields(const Json& body, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return ValidationError("Api validation failed: body",
                             {fmt::format("{}: unknown property", key)});
    }
  }
  return absl::OkStatus();
}

// A string member that may be absent or null.
absl::StatusOr<std::string> OptionalString(const Json& body, std::string_view name) {
  auto it = body.find(std::string(name));
  if (it == body.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: must be a string", name)});
  }
  return it->get<std::string>();
}

// An optional JSON object body: empty means {}.
absl::StatusOr<Json> OptionalBody(const Request& request) {
  if (request.body.empty()) return Json::object();
  return ParseObjectBody(request);
}

using ProviderFn = ProviderAdminFn;
using TenantFn = TenantAdminFn;

// An evidence file as a download. A package that is not in a signed checkpoint yet is worth a
// retry in a moment: 503 with Retry-After rather than a 500.
absl::StatusOr<Response> EvidenceDownload(absl::StatusOr<inc::EvidenceFile> file) {
  if (absl::IsDeadlineExceeded(file.status())) {
    return absl::UnavailableError(std::string(file.status().message()));
  }
  RETURN_IF_ERROR(file.status());
  Response r;
  r.status = 200;
  r.body = std::move(file->bytes);
  r.AddHeader("Content-Type", "application/json");
  r.AddHeader("Content-Disposition", fmt::format("attachment; filename=\"{}\"", file->file_name));
  r.AddHeader("Cache-Control", "no-store");
  return r;
}

}  // namespace

std::vector<Route> IncidentRoutes(Services& s, inc::Incidents& incidents) {
  std::vector<Route> routes;
  auto provider = [&](std::string method, std::string pattern, ProviderFn fn) {
    routes.push_back({std::move(method), std::move(pattern), ProviderAdmin(s, std::move(fn))});
  };
  auto tenant = [&](std::string method, std::string pattern, TenantFn fn) {
    routes.push_back({std::move(method), std::move(pattern), TenantAdmin(s, std::move(fn))});
  };
  const std::string p = "/provider/api/v1/incidents";
  const std::string one = p + "/{incidentId}";

  provider("POST", p, [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
    ASSIGN_OR_RETURN(store::IncidentRecord incident, incidents.Declare(ctx, body));
    Response created = Response::MakeJson(201, inc::IncidentView(incident));
    created.AddHeader("Location", fmt::format("{}{}/{}", r.base_url, r.path, incident.id));
    return created;
  });
  provider("GET", p, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(int limit, ParseLimit(r, 20, 200));
    ASSIGN_OR_RETURN(std::vector<store::IncidentRecord> list, incidents.List(limit));
    Json out = Json::array();
    for (const store::IncidentRecord& incident : list) out.push_back(inc::IncidentView(incident));
    return Response::MakeJson(200, out);
  });
  provider("GET", one, [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
    ASSIGN_OR_RETURN(store::IncidentRecord incident, incidents.Get(r.Param("incidentId")));
    return Response::MakeJson(200, inc::IncidentView(incident));
  });
  provider("POST", one + "/scope",
           [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(inc::ScopeResult scope, incidents.Scope(ctx, r.Param("incidentId")));
             return Response::MakeJson(200, scope.ToJson(true));
           });
  provider("GET", one + "/scope",
           [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(Json scope, incidents.LastScope(r.Param("incidentId")));
             return Response::MakeJson(200, scope);
           });
  provider(
      "GET", one + "/report", [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
        const std::string format = r.HasQuery("format") ? r.Query("format") : "markdown";
        if (format != "markdown" && format != "html") {
          return ValidationError("Api validation failed: format",
                                 {"format: must be \"markdown\" or \"html\""});
        }
        const bool html = format == "html";
        ASSIGN_OR_RETURN(std::string report, incidents.Report(r.Param("incidentId"),
                                                              html ? inc::ReportFormat::kHtml
                                                                   : inc::ReportFormat::kMarkdown));
        Response out;
        out.body = std::move(report);
        out.AddHeader("Content-Type",
                      html ? "text/html; charset=utf-8" : "text/markdown; charset=utf-8");
        // The page is data about tenants: nothing in it may run or load.
        out.AddHeader("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
        out.AddHeader("X-Content-Type-Options", "nosniff");
        return out;
      });
  provider("GET", one + "/evidence/{tenantName}",
           [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
             return EvidenceDownload(
                 incidents.Evidence(ctx, r.Param("incidentId"), r.Param("tenantName")));
           });
  provider("POST", one + "/notify",
           [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(Json body, OptionalBody(r));
             RETURN_IF_ERROR(OnlyFields(body, {"audience"}));
             ASSIGN_OR_RETURN(std::string audience_text, OptionalString(body, "audience"));
             inc::Audience audience = inc::Audience::kPotential;
             if (!audience_text.empty()) {
               ASSIGN_OR_RETURN(audience, inc::ParseAudience(audience_text));
             }
             ASSIGN_OR_RETURN(inc::NotifyResult result,
                              incidents.Notify(ctx, r.Param("incidentId"), audience));
             return Response::MakeJson(200, result.ToJson());
           });
  provider("GET", one + "/notifications",
           [&](Request& r, audit::RequestContext&) -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(store::IncidentRecord incident, incidents.Get(r.Param("incidentId")));
             ASSIGN_OR_RETURN(std::vector<inc::TenantNotifications> tenants,
                              incidents.Notifications(incident.id));
             Json list = Json::array();
             for (const inc::TenantNotifications& t : tenants) {
               list.push_back(inc::TenantNotificationsView(t));
             }
             return Response::MakeJson(200, {{"incidentId", incident.id},
                                             {"status", incident.status},
                                             {"tenants", std::move(list)}});
           });
  provider("POST", one + "/close",
           [&](Request& r, audit::RequestContext& ctx) -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(Json body, OptionalBody(r));
             RETURN_IF_ERROR(OnlyFields(body, {"notes"}));
             ASSIGN_OR_RETURN(std::string notes, OptionalString(body, "notes"));
             ASSIGN_OR_RETURN(store::IncidentRecord incident,
                              incidents.Close(ctx, r.Param("incidentId"), notes));
             return Response::MakeJson(200, inc::IncidentView(incident));
           });

  const std::string t = "/t/{tenant}/api/v1/security/incidents";
  tenant("GET", t,
         [&](Request&, const store::TenantRecord& record,
             audit::RequestContext&) -> absl::StatusOr<Response> {
           ASSIGN_OR_RETURN(std::vector<inc::TenantIncident> list,
                            incidents.TenantIncidents(record.id));
           Json out = Json::array();
           for (const inc::TenantIncident& i : list) {
             out.push_back(inc::TenantIncidentView(i, record.name));
           }
           return Response::MakeJson(200, out);
         });
  tenant("GET", t + "/{incidentId}/evidence",
         [&](Request& r, const store::TenantRecord& record,
             audit::RequestContext& ctx) -> absl::StatusOr<Response> {
           return EvidenceDownload(incidents.TenantEvidence(ctx, record, r.Param("incidentId")));
         });
  return routes;
}

std::vector<Route> IncidentRoutes(Services& services, audit::LogReader& reader,
                                  audit::LogKeys& keys) {
  // Owned by the handlers together: the service lives as long as the last route that uses it.
  auto incidents = std::make_shared<inc::Incidents>(services.store, services.clock, services.random,
                                                    reader, keys);
  std::vector<Route> routes = IncidentRoutes(services, *incidents);
  for (Route& route : routes) {
    route.handler = [incidents, handler = std::move(route.handler)](Request& request) {
      return handler(request);
    };
  }
  return routes;
}

}  // namespace custos::api::incident
