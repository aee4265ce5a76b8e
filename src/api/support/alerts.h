#pragma once

// GET /provider/api/v1/alerts (provider admins): the anomaly alerts of the support plane, i.e. the
// provider log's support.anomaly.alert events (support/access_gate.h), newest first.
//
// Query: since, until (RFC 3339; since inclusive, until exclusive; no default window), limit
// (1..200, default 50), after (the cursor of a previous page's rel="next" link). Each alert:
//   {"uuid", "published", "severity", "rule", "detail",
//    "operator": {"id", "login"}, "vendor": {"id", "name", "employingEntity", "country"},
//    "deviceId", "ipAddress", "tenant": {"id", "name"} (only when the alert names one),
//    "suspended": whether the operator is suspended now, "logIndex": index in the provider log
//    (null until sequenced)}
// Members the event does not hold are null (strings) or absent (tenant).

#include "absl/status/statusor.h"
#include "api/common.h"
#include "api/http_types.h"

namespace custos::api::support {

inline constexpr std::string_view kAnomalyAlertEvent = "support.anomaly.alert";

absl::StatusOr<Response> ListAlerts(Services& services, const Request& request);

}  // namespace custos::api::support
