#include "api/support/alerts.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/container/flat_hash_map.h"
#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::api::support {
namespace {

constexpr int kDefaultLimit = 50;
constexpr int kMaxLimit = 200;

absl::StatusOr<std::optional<absl::Time>> TimeParam(const Request& request, std::string_view name) {
  if (!request.HasQuery(name)) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = ParseRfc3339(request.Query(name));
  if (!t.ok()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: must be an RFC 3339 date-time", name)});
  }
  return std::optional<absl::Time>(*t);
}

absl::StatusOr<std::optional<int64_t>> CursorParam(const Request& request) {
  if (!request.HasQuery("after")) return std::optional<int64_t>();
  const std::string text = request.Query("after");
  bool ok = !text.empty() && text.size() <= 18;
  int64_t value = 0;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (ok) value = value * 10 + (c - '0');
  }
  if (!ok) {
    return ValidationError("Api validation failed: after",
                           {"after: must be the cursor of a previous page's next link"});
  }
  return std::optional<int64_t>(value);
}

// A string member of `object`, or null.
Json StringOrNull(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? *it : Json(nullptr);
}

// The event's debugContext.debugData, or an empty object.
Json DebugDataOf(const Json& event) {
  auto ctx = event.find("debugContext");
  if (ctx == event.end() || !ctx->is_object()) return Json::object();
  auto data = ctx->find("debugData");
  return data != ctx->end() && data->is_object() ? *data : Json::object();
}

// The operator an alert is about: debugData.operatorId, else the actor (the gate makes the
// operator the actor of their own requests). Empty when neither is there.
std::string OperatorIdOf(const Json& event) {
  Json id = StringOrNull(DebugDataOf(event), "operatorId");
  if (id.is_null()) id = StringOrNull(event.value("actor", Json::object()), "id");
  return id.is_string() ? id.get<std::string>() : std::string();
}

Json ParseEvent(const store::EventRecord& e) {
  absl::StatusOr<Json> parsed = ParseJson(e.json);
  return parsed.ok() && parsed->is_object() ? *std::move(parsed) : Json::object();
}

}  // namespace

absl::StatusOr<Response> ListAlerts(Services& services, const Request& request) {
  ASSIGN_OR_RETURN(const int limit, ParseLimit(request, kDefaultLimit, kMaxLimit));
  ASSIGN_OR_RETURN(std::optional<absl::Time> since, TimeParam(request, "since"));
  ASSIGN_OR_RETURN(std::optional<absl::Time> until, TimeParam(request, "until"));
  ASSIGN_OR_RETURN(std::optional<int64_t> after, CursorParam(request));

  std::vector<store::EventRecord> events;
  absl::flat_hash_map<std::string, bool> suspended;  // operator id -> suspended now
  RETURN_IF_ERROR(services.store.Read([&](store::Transaction& tx) -> absl::Status {
    // One more than a page tells whether there is a next one.
    ASSIGN_OR_RETURN(events, tx.Events().Query(TenantId(std::string(store::kProviderLogId)),
                                               store::EventQuery{
                                                   .since = since,
                                                   .until = until,
                                                   .after_seq = after,
                                                   .descending = true,
                                                   .limit = limit + 1,
                                                   .event_type = std::string(kAnomalyAlertEvent),
                                               }));
    for (const store::EventRecord& e : events) {
      const std::string id = OperatorIdOf(ParseEvent(e));
      if (id.empty() || suspended.contains(id)) continue;
      absl::StatusOr<store::OperatorRecord> op = tx.Support().GetOperator(UserId(id));
      if (!op.ok() && !absl::IsNotFound(op.status())) return op.status();
      suspended[id] = op.ok() && op->status == store::kStatusSuspended;
    }
    return absl::OkStatus();
  }));

  std::string next_after;
  if (static_cast<int>(events.size()) > limit) {
    events.resize(static_cast<size_t>(limit));
    next_after = std::to_string(events.back().seq);
  }
  Json items = Json::array();
  for (const store::EventRecord& e : events) {
    const Json event = ParseEvent(e);
    const Json actor = event.value("actor", Json::object());
    const Json debug = DebugDataOf(event);
    const std::string operator_id = OperatorIdOf(event);
    Json operator_login = StringOrNull(debug, "operatorLogin");
    if (operator_login.is_null()) operator_login = StringOrNull(actor, "alternateId");
    auto status = suspended.find(operator_id);
    Json item = {
        {"uuid", e.uuid},
        {"published", FormatRfc3339(e.published)},
        {"severity", StringOrNull(event, "severity")},
        {"rule", StringOrNull(debug, "rule")},
        {"detail", StringOrNull(debug, "detail")},
        {"operator",
         {{"id", operator_id.empty() ? Json(nullptr) : Json(operator_id)},
          {"login", operator_login}}},
        {"vendor",
         {{"id", StringOrNull(debug, "vendorId")},
          {"name", StringOrNull(debug, "vendorName")},
          {"employingEntity", StringOrNull(debug, "employingEntity")},
          {"country", StringOrNull(debug, "country")}}},
        {"deviceId", StringOrNull(debug, "deviceId")},
        {"ipAddress", StringOrNull(event.value("client", Json::object()), "ipAddress")},
        {"suspended", status != suspended.end() && status->second},
        {"logIndex", e.log_index.has_value() ? Json(*e.log_index) : Json(nullptr)},
    };
    if (const Json tenant_id = StringOrNull(debug, "tenantId"); tenant_id.is_string()) {
      item["tenant"] = {{"id", tenant_id}, {"name", StringOrNull(debug, "tenantName")}};
    }
    items.push_back(std::move(item));
  }
  Response r = Response::MakeJson(200, items);
  AddPagingLinks(r, request, next_after);
  return r;
}

}  // namespace custos::api::support
