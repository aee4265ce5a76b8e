#pragma once

// Demo data for `custos serve --demo` (what `make run` starts): a tenant "acme" with an
// administrator API token and a user who can sign in, a provider admin token with which to
// try the support plane (and read the incident of `custos demo`, which lays this down too when it
// ends), and two console admins (docs/console.md): one of acme, one of the provider's security
// team, each with a password and an active TOTP factor, in the group config.console_admin_group.
// Idempotent: an existing tenant, token, user, group, membership or factor is kept.
//
// The console admins have well-known passwords, so they are made (and an existing user of that
// login is put in the admin group) only in a tenant that is the demo's own:
//   - acme: when this call created it, when an earlier call did (kDemoApiTokenFile exists), or
//     when the data directory is the demo's;
//   - provider: only when the data directory is the demo's: `custos demo` made it (its marker
//     kDemoMarkerFile), or the store was new when `custos serve --demo` first ran in it (that
//     call then writes kServeDemoMarkerFile, which later calls find).
// Elsewhere the admin is skipped (DemoData::skipped_console_admins says why) and no user is
// created or promoted.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "api/common.h"
#include "directory/directory.h"

namespace custos::cli {

// Files in config.data_dir. The marker `custos demo` writes before it fills a directory.
inline constexpr std::string_view kDemoMarkerFile = "demo.json";
// Written by SeedDemoData when it found a new store: the directory is the demo's.
inline constexpr std::string_view kServeDemoMarkerFile = "demo-serve-marker";
// The demo tenant's admin API token, written when SeedDemoData created the tenant.
inline constexpr std::string_view kDemoApiTokenFile = "demo-api-token";

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
  // One line per console admin not made because its tenant is not the demo's (see above), e.g.
  // "security@provider.example (provider): ...".
  std::vector<std::string> skipped_console_admins;
};

absl::StatusOr<DemoData> SeedDemoData(api::Services& services, directory::Directory& directory);

}  // namespace custos::cli
