#pragma once

// The management API's OpenID Connect apps under /t/{tenant}/api/v1/apps (Okta's app object
// shape, oidc/apps.h): create, list, get, replace, delete, activate, deactivate, and a new
// client secret. Every route needs `Authorization: SSWS <admin api token>` of that tenant. A
// client secret appears only in the answer that issued it.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "oidc/apps.h"

namespace custos::api::management {

// `services` and `apps` must outlive the routes.
std::vector<Route> AppsRoutes(Services& services, oidc::Apps& apps);

}  // namespace custos::api::management
