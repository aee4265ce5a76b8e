#pragma once

// Demo data for `custos serve --demo` (what `make run` starts): a tenant "acme" with an
// administrator API token and a user who can sign in, a provider admin token with which to
// try the support plane (and read the incident of `custos demo`, which lays this down too when it
// ends), and two console admins (docs/console.md): one of acme, one of the provider's security
// team, each with a password and an active TOTP factor, in the group config.console_admin_group.
// Idempotent: an existing tenant, token, user, group, membership or factor is kept.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/common.h"
#include "directory/directory.h"

namespace custos::cli {

// A console admin of the demo. Demo credentials: printed at start, so they are no secret.
struct DemoConsoleAdmin {
  std::string tenant;  // the organisation to type at sign-in: "acme" or "provider"
  std::string login;
  std::string password;
  std::string totp_secret;  // base32, for an authenticator app or `oathtool --totp -b`
  std::string totp_uri;     // otpauth://totp/...
};

struct DemoData {
  std::string tenant;
  std::string api_token;  // read back from <data_dir>/demo-api-token (0600) on later runs
  std::string login;
  std::string password;
  // An admin API token of the provider tenant (support plane administration), kept in
  // <data_dir>/demo-provider-token (0600).
  std::string provider_token;
  std::vector<DemoConsoleAdmin> console_admins;  // acme's, then the provider's
};

absl::StatusOr<DemoData> SeedDemoData(api::Services& services, directory::Directory& directory);

}  // namespace custos::cli
