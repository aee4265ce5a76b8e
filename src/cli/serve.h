#pragma once

// `custos serve`: the HTTP server over the embedded store until SIGTERM or SIGINT.

#include <string>

#include "cli/runtime.h"

namespace custos::cli {

struct ServeFlags {
  bool demo = false;  // seed a demo tenant, user and API token when missing; print them
};

// Returns the process exit code.
int Serve(const ConfigFlags& flags, const ServeFlags& serve);

}  // namespace custos::cli
