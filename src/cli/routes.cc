#include "cli/routes.h"

#include <utility>

#include "api/authn/authn_handlers.h"
#include "api/console/console_routes.h"
#include "api/incident/incident_routes.h"
#include "api/log/log_routes.h"
#include "api/management/management_routes.h"
#include "api/oidc/oidc_routes.h"
#include "api/security/security_routes.h"
#include "api/support/support_routes.h"
#include "cli/shared_state.h"

namespace custos::cli {

SupportStack::SupportStack(api::Services& services)
    : plane(services.store, services.config, services.clock, services.random),
      replay_cache(MakeDpopReplayCache(services.config, services.store, services.clock,
                                       kSupportDpopScope, DpopOptionsOf(services.config))),
      dpop(services.clock, DpopOptionsOf(services.config), replay_cache.get()),
      anomalies(support::AnomalyRules{
          .max_tenants = services.config.anomaly_max_tenants,
          .window = services.config.anomaly_window,
          .max_refused_actions = services.config.anomaly_max_refused_actions}),
      gate(services.store, services.config, services.clock, services.random, plane, dpop, anomalies,
           services.refused_auth_limiter) {}

OidcStack::OidcStack(api::Services& services, directory::Directory& directory)
    : apps(services.store, services.clock, services.random),
      keys(services.store, services.sealer, services.clock, services.random),
      replay_cache(MakeDpopReplayCache(services.config, services.store, services.clock,
                                       kOidcDpopScope, DpopOptionsOf(services.config))),
      dpop(services.clock, DpopOptionsOf(services.config), replay_cache.get()),
      // One confidential client is one key of this cache, so the per-key bound is the whole.
      assertion_cache(MakeDpopReplayCache(
          services.config, services.store, services.clock, kOidcAssertionScope,
          support::DpopOptions{.max_replay_entries = kMaxClientAssertions,
                               .max_replay_entries_per_key = kMaxClientAssertions})),
      tokens(services.store, services.clock, services.random, keys, apps, directory, dpop,
             oidc::TokenOptions{.refusal_limiter = services.refused_auth_limiter,
                                .assertion_replay_cache = assertion_cache.get()}) {}

std::vector<api::Route> ApiRoutes(api::Services& services, directory::Directory& directory,
                                  authn::SignIn& sign_in, audit::LogReader& log_reader,
                                  audit::LogKeys& log_keys, SupportStack& support,
                                  OidcStack& oidc) {
  std::vector<api::Route> routes =
      api::management::ManagementRoutes(services, directory, oidc.apps);
  for (api::Route& r : api::authn::AuthnRoutes(services, sign_in)) routes.push_back(std::move(r));
  for (api::Route& r : api::console::ConsoleRoutes(services, sign_in)) {
    routes.push_back(std::move(r));
  }
  for (api::Route& r : api::log::LogRoutes(services, log_reader, log_keys)) {
    routes.push_back(std::move(r));
  }
  for (api::Route& r : api::incident::IncidentRoutes(services, log_reader, log_keys)) {
    routes.push_back(std::move(r));
  }
  for (api::Route& r : api::security::SecurityRoutes(services)) routes.push_back(std::move(r));
  for (api::Route& r : api::support::SupportRoutes(services, directory, support.plane, support.gate,
                                                   support.dpop)) {
    routes.push_back(std::move(r));
  }
  for (api::Route& r : api::oidc::OidcRoutes(
           services,
           api::oidc::OidcParts{
               .keys = oidc.keys, .apps = oidc.apps, .tokens = oidc.tokens, .sign_in = sign_in})) {
    routes.push_back(std::move(r));
  }
  return routes;
}

}  // namespace custos::cli
