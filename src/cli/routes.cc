#include "cli/routes.h"

#include <utility>

#include "api/authn/authn_handlers.h"
#include "api/log/log_routes.h"
#include "api/management/management_routes.h"

namespace custos::cli {

std::vector<api::Route> ApiRoutes(api::Services& services, directory::Directory& directory,
                                  authn::SignIn& sign_in, audit::LogReader& log_reader,
                                  audit::LogKeys& log_keys) {
  std::vector<api::Route> routes = api::management::ManagementRoutes(services, directory);
  for (api::Route& r : api::authn::AuthnRoutes(services, sign_in)) routes.push_back(std::move(r));
  for (api::Route& r : api::log::LogRoutes(services, log_reader, log_keys)) {
    routes.push_back(std::move(r));
  }
  return routes;
}

}  // namespace custos::cli
