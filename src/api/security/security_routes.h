#pragma once

// HTTP routes of incident notification (docs/notifications.md):
//   /t/{tenant}/api/v1/security/contacts[/{contactId}]          a tenant's security contacts
//   /t/{tenant}/api/v1/security/notifications[/{id}/acknowledge] what was sent to them
//       (tenant admins: an admin SSWS token of that tenant)
//   /status.json, /status.atom                                   the public status feed
//   /provider/api/v1/status/notices[/{noticeId}]                  publishing to it (provider
//       admins: an admin SSWS token of the provider tenant)

#include <vector>

#include "api/common.h"
#include "api/http_types.h"

namespace custos::api::security {

// `services` must outlive the routes.
std::vector<Route> SecurityRoutes(Services& services);

}  // namespace custos::api::security
