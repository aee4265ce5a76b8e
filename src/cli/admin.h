#pragma once

// `custos admin ...`: operator tasks run against the data directory directly (safe while
// `custos serve` runs: the store serialises writers).

#include <string>

#include "cli/runtime.h"

namespace custos::cli {

// Prints the new tenant's id. Returns the process exit code.
int CreateTenant(const ConfigFlags& flags, const std::string& name);
// Prints only the token, once.
int CreateApiToken(const ConfigFlags& flags, const std::string& tenant,
                   const std::string& token_name);

}  // namespace custos::cli
