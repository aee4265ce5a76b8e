#pragma once

// `custos admin ...`: operator tasks run against the data directory directly (safe while
// `custos serve` runs: the store serialises writers).

#include <string>

#include "cli/runtime.h"

namespace custos::cli {

// Prints the new tenant's id. Returns the process exit code.
int CreateTenant(const ConfigFlags& flags, const std::string& name);
// Prints only the token, once. `scope`: "admin" (default) or "log.read".
int CreateApiToken(const ConfigFlags& flags, const std::string& tenant,
                   const std::string& token_name, const std::string& scope);
// Prints only the provider token, once.
int CreateProviderToken(const ConfigFlags& flags, const std::string& token_name);
// `custos log rotate-key`: a new checkpoint signing key takes over; prints its vkey. `name`
// empty keeps the current key's name.
int RotateLogKey(const ConfigFlags& flags, const std::string& name);

}  // namespace custos::cli
