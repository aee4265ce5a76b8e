#pragma once

// The sign-in API (docs/sign-in.md), in the shape of the widely used authn API:
//
//   POST   /t/{tenant}/api/v1/authn                               {username, password}
//   POST   /t/{tenant}/api/v1/authn/factors/{factorId}/verify     {stateToken, passCode}
//   POST   /t/{tenant}/api/v1/authn/recovery/token                {recoveryToken}
//   POST   /t/{tenant}/api/v1/authn/credentials/reset_password    {stateToken, newPassword}
//   GET    /t/{tenant}/api/v1/sessions/me
//   DELETE /t/{tenant}/api/v1/sessions/me
//
// None needs an API token: these are what a sign-in page calls. The session of sessions/me is
// the cookie `custos_sid` or `Authorization: Bearer <session token>`. Unlike the reference
// API, the `sessionToken` of a SUCCESS answer is the session token itself (no separate
// one-time exchange); a SUCCESS answer also sets the `custos_sid` cookie. Answers to sign-in
// attempts carry the progressive delay in Response::delay.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "authn/sign_in.h"

namespace custos::api::authn {

// The session cookie's name.
inline constexpr std::string_view kSessionCookie = "custos_sid";

// `services` and `sign_in` must outlive the routes.
std::vector<Route> AuthnRoutes(Services& services, ::custos::authn::SignIn& sign_in);

}  // namespace custos::api::authn
