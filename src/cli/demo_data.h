#pragma once

// Demo data for `custos serve --demo` (what `make run` starts): a tenant "acme" with an
// administrator API token and a user who can sign in, and a provider admin token with which to
// try the support plane (and read the incident of `custos demo`, which lays this down too when it
// ends). Idempotent: an existing tenant or token is kept.

#include <string>

#include "absl/status/statusor.h"
#include "api/common.h"
#include "directory/directory.h"

namespace custos::cli {

struct DemoData {
  std::string tenant;
  std::string api_token;  // read back from <data_dir>/demo-api-token (0600) on later runs
  std::string login;
  std::string password;
  // An admin API token of the provider tenant (support plane administration), kept in
  // <data_dir>/demo-provider-token (0600).
  std::string provider_token;
};

absl::StatusOr<DemoData> SeedDemoData(api::Services& services, directory::Directory& directory);

}  // namespace custos::cli
