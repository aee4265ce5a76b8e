#pragma once

// The management API (an Okta-compatible subset) under /t/{tenant}/api/v1: users and their
// lifecycle, factors, sessions, groups and membership, OpenID Connect apps (apps_routes.h), and
// the System Log. Every route needs `Authorization: SSWS <api token>` of that tenant.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "directory/directory.h"
#include "oidc/apps.h"

namespace custos::api::management {

std::vector<Route> ManagementRoutes(Services& services, directory::Directory& directory,
                                    oidc::Apps& apps);

}  // namespace custos::api::management
