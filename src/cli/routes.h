#pragma once

// Every API route that `custos serve` registers (the server adds /healthz, /readyz and
// /metrics itself). docs/openapi.yaml describes exactly these; openapi_test keeps the two in step.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "authn/sign_in.h"
#include "directory/directory.h"

namespace custos::cli {

std::vector<api::Route> ApiRoutes(api::Services& services, directory::Directory& directory,
                                  authn::SignIn& sign_in, audit::LogReader& log_reader,
                                  audit::LogKeys& log_keys);

}  // namespace custos::cli
