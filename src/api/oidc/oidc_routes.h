#pragma once

// HTTP of each tenant's OpenID Connect provider; the issuer is `<base>/t/<tenant>` (docs/oidc.md):
//
//   GET       /t/{tenant}/.well-known/openid-configuration   discovery
//   GET       /t/{tenant}/oauth2/v1/keys                     JWKS
//   GET|POST  /t/{tenant}/oauth2/v1/authorize                authorization code flow
//   POST      /t/{tenant}/oauth2/v1/login                    the sign-in page's password step
//   POST      /t/{tenant}/oauth2/v1/login/factor             ... and its TOTP step
//   POST      /t/{tenant}/oauth2/v1/token
//   GET|POST  /t/{tenant}/oauth2/v1/userinfo
//   POST      /t/{tenant}/oauth2/v1/introspect
//   POST      /t/{tenant}/oauth2/v1/revoke
//   GET|POST  /t/{tenant}/oauth2/v1/logout                   RP-initiated logout
//
// The sign-in page is server-rendered HTML that works without JavaScript; it uses the tenant's
// password + TOTP sign-in (authn::SignIn) and its session cookie, so a user signed in once is
// not asked again while the session lasts (unless prompt=login or max_age says otherwise).

#include <vector>

#include "api/common.h"
#include "authn/sign_in.h"
#include "oidc/apps.h"
#include "oidc/keys.h"
#include "oidc/token_service.h"

namespace custos::api::oidc {

struct OidcParts {
  custos::oidc::KeyManager& keys;
  custos::oidc::Apps& apps;
  custos::oidc::TokenService& tokens;
  custos::authn::SignIn& sign_in;
};

// Every reference must outlive the routes.
std::vector<Route> OidcRoutes(Services& services, OidcParts parts);

}  // namespace custos::api::oidc
