#pragma once

// HTTP surface of the verifiable logs (docs/system-log.md, "Verifying the log"):
//   GET /t/{tenant}/log/checkpoint, /tile/<L>/<N>[.p/<W>], /tile/entries/<N>[.p/<W>], /keys,
//       /proof/inclusion, /proof/consistency, /proof/tlog-proof
//   the same under /provider/log/ for the provider log;
//   GET /.well-known/custos/log-keys (every verifier key, no credentials);
//   GET /t/{tenant}/api/v1/log/keys and GET|PUT /t/{tenant}/api/v1/log/settings (management).
// A tenant's log needs an API token of the tenant (scope admin or log.read) unless the tenant
// made it public; the provider log needs a provider token unless log.provider_public is set.

#include <vector>

#include "api/common.h"
#include "api/http_types.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"

namespace custos::api::log {

// All references must outlive the routes.
std::vector<Route> LogRoutes(Services& services, audit::LogReader& reader, audit::LogKeys& keys);

}  // namespace custos::api::log
