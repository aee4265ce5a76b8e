#pragma once

// The web console's routes (docs/console.md):
//
//   GET    /console                               301 to /console/
//   GET    /console/, /console/{path...}          the built console (console_files.h)
//   POST   /t/{tenant}/api/v1/console/session     sign in to the console
//   GET    /t/{tenant}/api/v1/console/session     the same answer, no event (a reload)
//   DELETE /t/{tenant}/api/v1/console/session     sign out: ends the session
//
// The session routes take `Authorization: Bearer <session token>` (the sessionToken of the
// tenant's sign-in API) of a console admin (api/common.h AuthenticateConsoleAdmin) and answer
//   {"user": {"id", "login", "displayName"}, "tenant": {"name"}, "provider": bool,
//    "expiresAt": RFC 3339, "logOrigin": the origin line of the tenant's verifiable log}
// POST records user.session.access_admin_app SUCCESS; DELETE records user.session.end. No
// cookies are involved, so there is nothing for a cross-site request to ride on.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "authn/sign_in.h"

namespace custos::api::console {

// `services` and `sign_in` must outlive the routes. The console directory is
// ConsoleDir(services.config).
std::vector<Route> ConsoleRoutes(Services& services, ::custos::authn::SignIn& sign_in);

}  // namespace custos::api::console
