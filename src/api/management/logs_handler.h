#pragma once

// GET /t/{tenant}/api/v1/logs: the tenant's System Log, with since, until, after, limit,
// sortOrder, filter and q, paged with `Link: <...>; rel="next"` (docs/system-log.md).

#include "absl/status/statusor.h"
#include "api/common.h"
#include "api/http_types.h"
#include "audit/event.h"
#include "store/records.h"

namespace custos::api::management {

absl::StatusOr<Response> ListLogs(Services& services, const Request& request,
                                  const store::TenantRecord& tenant,
                                  const audit::RequestContext& ctx);

}  // namespace custos::api::management
