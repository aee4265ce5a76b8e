#pragma once

// Every API route that `custos serve` registers (the server adds /healthz, /readyz and
// /metrics itself), the web console's included. docs/openapi.yaml describes exactly these;
// openapi_test keeps the two in step.

#include <memory>
#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "authn/sign_in.h"
#include "directory/directory.h"
#include "oidc/apps.h"
#include "oidc/keys.h"
#include "oidc/token_service.h"
#include "support/access_gate.h"
#include "support/anomaly.h"
#include "support/dpop.h"
#include "support/plane.h"

namespace custos::cli {

// The support plane's long-lived parts, built from the services (which must outlive it).
struct SupportStack {
  explicit SupportStack(api::Services& services);
  support::SupportPlane plane;
  // In memory, or in the store when processes share it (cli/shared_state.h).
  std::unique_ptr<support::DpopReplayCache> replay_cache;
  support::DpopVerifier dpop;  // its replay cache is shared by every operator request
  support::AnomalyDetector anomalies;
  support::AccessGate gate;
};

// The OpenID Connect provider's long-lived parts, built from the services (which must outlive
// it).
struct OidcStack {
  OidcStack(api::Services& services, directory::Directory& directory);
  oidc::Apps apps;
  oidc::KeyManager keys;
  // In memory, or in the store when processes share it (cli/shared_state.h).
  std::unique_ptr<support::DpopReplayCache> replay_cache;
  support::DpopVerifier dpop;  // the OIDC endpoints' own replay cache
  // The jti values of accepted client assertions (RFC 7523), in memory or in the store.
  std::unique_ptr<support::DpopReplayCache> assertion_cache;
  oidc::TokenService tokens;
};

// Console admins' Bearer sessions are accepted on admin routes only when
// services.sign_in is set (`custos serve` sets it to `sign_in`).
std::vector<api::Route> ApiRoutes(api::Services& services, directory::Directory& directory,
                                  authn::SignIn& sign_in, audit::LogReader& log_reader,
                                  audit::LogKeys& log_keys, SupportStack& support, OidcStack& oidc);

}  // namespace custos::cli
