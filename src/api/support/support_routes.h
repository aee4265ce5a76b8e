#pragma once

// HTTP routes of the support access plane (docs/support.md):
//   /provider/api/v1/vendors|operators|devices...   provider admins (SSWS token of the provider
//                                                   tenant, or a security team member's console
//                                                   session) and managed devices (enrolment,
//                                                   posture, signed by the device key)
//   /provider/api/v1/alerts                         provider admins: anomaly alerts (alerts.h)
//   /provider/oauth2/v1/token                       an operator's session -> a DPoP-bound token
//   /provider/api/v1/support/...                    operators, through support::AccessGate
//   /t/{tenant}/api/v1/support/...                  the tenant's admins: policy, cases, requests,
//                                                   grants, confirmations

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/common.h"
#include "directory/directory.h"
#include "support/access_gate.h"
#include "support/dpop.h"
#include "support/plane.h"

namespace custos::api::support {

// Every reference must outlive the routes.
std::vector<Route> SupportRoutes(Services& services, directory::Directory& directory,
                                 custos::support::SupportPlane& plane,
                                 custos::support::AccessGate& gate,
                                 custos::support::DpopVerifier& dpop);

}  // namespace custos::api::support
