#pragma once

// HTTP routes of incident response (docs/incidents.md), over incident::Incidents:
//   /provider/api/v1/incidents...            provider admins (admin SSWS token of the provider
//                                            tenant): declare, scope, report, evidence, notify,
//                                            notifications, close
//   /t/{tenant}/api/v1/security/incidents... a tenant's admins: the incidents the tenant was
//                                            notified of, and its own evidence packages
// Errors in the management API's shape (api/common.h); a step the incident's status does not
// allow is 409 E0000038 with a "reason".

#include <vector>

#include "api/common.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "incident/incidents.h"

namespace custos::api::incident {

// Every reference must outlive the routes.
std::vector<Route> IncidentRoutes(Services& services, custos::incident::Incidents& incidents);

// The same over an incident::Incidents of their own, built from the services, `reader` and
// `keys` (which must outlive the routes) and owned by the routes.
std::vector<Route> IncidentRoutes(Services& services, audit::LogReader& reader,
                                  audit::LogKeys& keys);

}  // namespace custos::api::incident
