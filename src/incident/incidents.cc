#include "incident/incidents.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "common/time_format.h"
#include "incident/evidence.h"

namespace custos::incident {
namespace {

using store::Transaction;

constexpr std::string_view kIncidentType = "SecurityIncident";
// A refused step's debugData keeps this much of the error.
constexpr size_t kMaxErrorDetail = 300;

TenantId ProviderTenantId() { return TenantId(std::string(store::kProviderLogId)); }

audit::Principal IncidentTarget(const store::IncidentRecord& incident) {
  return {incident.id, std::string(kIncidentType), incident.id, incident.title};
}

audit::EventSpec StepSpec(std::string_view step, std::string display_message) {
  return audit::EventSpec{.event_type = fmt::format("security.incident.{}", step),
                          .display_message = std::move(display_message)};
}

absl::Status WrongStatus(std::string message, std::string_view reason) {
  return WithReason(ApiError(absl::StatusCode::kAborted, kErrWrongStatus, std::move(message)),
                    reason);
}

absl::Status Closed(const store::IncidentRecord& incident) {
  return WrongStatus(fmt::format("Incident {} is closed", incident.id), kReasonClosed);
}

absl::Status NotScoped(const store::IncidentRecord& incident) {
  return WrongStatus(
      fmt::format("Incident {} has not been scoped yet: scope it first", incident.id),
      kReasonNotScoped);
}

absl::StatusOr<store::IncidentRecord> FindIncident(Transaction& tx, std::string_view id) {
  absl::StatusOr<store::IncidentRecord> found = tx.Incidents().Get(id);
  if (absl::IsNotFound(found.status())) return NotFoundError(fmt::format("{} (Incident)", id));
  return found;
}

absl::Status AppendProviderEvent(Transaction& tx, const Clock& clock, crypto::Random& random,
                                 const audit::RequestContext& ctx, const audit::EventSpec& spec) {
  return tx.Events()
      .Append(audit::MakeEvent(ProviderTenantId(), ctx, spec, clock, random))
      .status();
}

std::string Cut(std::string text, size_t max) {
  if (text.size() > max) text.resize(max);
  return text;
}

// The machine-readable reason a refusal is recorded with.
std::string RefusalReason(const absl::Status& error) {
  if (std::string reason = ReasonOf(error); !reason.empty()) return reason;
  switch (error.code()) {
    case absl::StatusCode::kInvalidArgument:
      return "invalid_input";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kDeadlineExceeded:
      return "not_sequenced";
    default:
      return "error";
  }
}

// ---- The definition of an incident ----

Json WindowJson(absl::Time start, absl::Time end) {
  return {{"start", FormatRfc3339(start)}, {"end", FormatRfc3339(end)}};
}

// Appends the problems of the window member `field` to `causes`; the window when it is valid.
std::optional<Window> CheckWindow(const Json& value, std::string_view field,
                                  std::vector<std::string>& causes) {
  if (!value.is_object()) {
    causes.push_back(fmt::format("{}: must be an object {{\"start\", \"end\"}}", field));
    return std::nullopt;
  }
  for (const auto& [key, member] : value.items()) {
    if (key != "start" && key != "end") {
      causes.push_back(fmt::format("{}.{}: unknown property", field, key));
    }
  }
  Window window;
  bool ok = true;
  for (const char* end : {"start", "end"}) {
    auto it = value.find(end);
    absl::StatusOr<absl::Time> t = absl::InvalidArgumentError("missing");
    if (it != value.end() && it->is_string()) t = ParseRfc3339(it->get<std::string>());
    if (!t.ok()) {
      causes.push_back(fmt::format("{}.{}: must be an RFC 3339 date-time", field, end));
      ok = false;
      continue;
    }
    (std::string_view(end) == "start" ? window.start : window.end) = *t;
  }
  if (!ok) return std::nullopt;
  if (window.start >= window.end) {
    causes.push_back(fmt::format("{}: start must be before end", field));
    return std::nullopt;
  }
  if (window.end - window.start > kMaxIncidentWindow) {
    causes.push_back(fmt::format("{}: longer than 366 days", field));
    return std::nullopt;
  }
  return window;
}

struct Definition {
  std::string title;
  Indicators indicators;
  Window window;
  Window compromise;
  std::string notes;
};

absl::StatusOr<Definition> ParseDefinition(const Json& body) {
  if (!body.is_object()) return ValidationError("Api validation failed: body must be an object");
  std::vector<std::string> causes;
  std::string first_field;
  auto problem = [&](std::string_view field, std::string cause) {
    if (first_field.empty()) first_field = std::string(field);
    causes.push_back(std::move(cause));
  };
  static const std::set<std::string> kFields = {"title", "indicators", "window", "compromiseWindow",
                                                "notes"};
  for (const auto& [key, value] : body.items()) {
    if (!kFields.contains(key)) problem(key, fmt::format("{}: unknown property", key));
  }
  Definition def;
  auto title = body.find("title");
  if (title == body.end() || !title->is_string()) {
    problem("title", "title: is required (a string)");
  } else {
    def.title = title->get<std::string>();
    if (def.title.empty() || def.title.size() > kMaxTitleBytes) {
      problem("title", fmt::format("title: must be 1 to {} bytes", kMaxTitleBytes));
    }
  }
  auto indicators = body.find("indicators");
  if (indicators == body.end()) {
    problem("indicators", "indicators: is required");
  } else {
    absl::StatusOr<Indicators> parsed = Indicators::FromJson(*indicators);
    if (parsed.ok()) {
      def.indicators = *std::move(parsed);
    } else {
      std::string message(parsed.status().message());
      problem("indicators", message.starts_with("indicators") ? message : "indicators: " + message);
    }
  }
  auto window = body.find("window");
  const size_t before_window = causes.size();
  if (window == body.end()) {
    problem("window", "window: is required");
  } else if (std::optional<Window> w = CheckWindow(*window, "window", causes)) {
    def.window = *w;
  }
  if (causes.size() > before_window && first_field.empty()) first_field = "window";
  auto compromise = body.find("compromiseWindow");
  def.compromise = def.window;
  if (compromise != body.end() && !compromise->is_null()) {
    const size_t before = causes.size();
    if (std::optional<Window> w = CheckWindow(*compromise, "compromiseWindow", causes)) {
      def.compromise = *w;
    }
    if (causes.size() > before && first_field.empty()) first_field = "compromiseWindow";
  }
  auto notes = body.find("notes");
  if (notes != body.end() && !notes->is_null()) {
    if (!notes->is_string() || notes->get<std::string>().size() > kMaxNotesBytes) {
      problem("notes", fmt::format("notes: must be a string of at most {} bytes", kMaxNotesBytes));
    } else {
      def.notes = notes->get<std::string>();
    }
  }
  if (!causes.empty()) {
    return ValidationError(fmt::format("Api validation failed: {}", first_field),
                           std::move(causes));
  }
  return def;
}

// ---- Stored scope ----

Window ParseWindowJson(const Json& j) {
  return Window{.start = ParseRfc3339(j.at("start").get<std::string>()).value(),
                .end = ParseRfc3339(j.at("end").get<std::string>()).value()};
}

const TenantScope* FindTenant(const ScopeResult& scope, std::string_view name) {
  for (const TenantScope& t : scope.tenants) {
    if (t.tenant_name == name) return &t;
  }
  return nullptr;
}

const TenantScope* FindTenant(const ScopeResult& scope, const TenantId& id) {
  for (const TenantScope& t : scope.tenants) {
    if (t.tenant_id == id) return &t;
  }
  return nullptr;
}

std::string SafeFileNamePart(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    out += ok ? c : '_';
  }
  return out;
}

Json TimeOrNull(const std::optional<absl::Time>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

// ---- Notify ----

Json NotificationPayload(const store::IncidentRecord& incident, const TenantScope& tenant,
                         std::string_view notification_id, absl::Time now) {
  return {{"type", "security.incident.notification"},
          {"timestamp", FormatRfc3339(now)},
          {"data",
           {{"notificationId", notification_id},
            {"incidentId", incident.id},
            {"title", incident.title},
            {"tenant", {{"id", tenant.tenant_id.value()}, {"name", tenant.tenant_name}}},
            {"confirmed", tenant.confirmed},
            {"window", WindowJson(incident.window_start, incident.window_end)},
            {"compromiseWindow", WindowJson(incident.compromise_start, incident.compromise_end)},
            {"summary",
             {{"views", tenant.views},
              {"attempts", tenant.attempts},
              {"refusals", tenant.refusals},
              {"successes", tenant.successes},
              {"grantsUsed", tenant.grants_used.size()}}},
            {"evidence", fmt::format("/t/{}/api/v1/security/incidents/{}/evidence",
                                     tenant.tenant_name, incident.id)},
            {"acknowledge", fmt::format("/t/{}/api/v1/security/notifications/{}/acknowledge",
                                        tenant.tenant_name, notification_id)}}}};
}

// The public notice names neither tenants nor the incident's title (written for the provider's
// own people), only what every customer may know.
store::StatusNoticeRecord Notice(const store::IncidentRecord& incident, int tenants, int confirmed,
                                 absl::Time now) {
  return store::StatusNoticeRecord{
      .id = fmt::format("{}{}", store::kStatusNoticeIdPrefix,
                        std::string_view(incident.id).substr(store::kIncidentIdPrefix.size())),
      .kind = std::string(store::kNoticeSecurity),
      .title = "Security incident affecting support access",
      .body = fmt::format(
          "We are investigating a security incident in which support access to customer tenants "
          "may have been misused between {} and {} (UTC). We have notified the {} affected "
          "customer(s) directly ({} with confirmed access) through their security contacts; "
          "each can download an evidence package that verifies against its own System Log. "
          "Reference: {}.",
          FormatRfc3339(incident.window_start), FormatRfc3339(incident.window_end), tenants,
          confirmed, incident.id),
      .incident_id = incident.id,
      .published = now,
      .updated = now};
}

}  // namespace

absl::StatusOr<Audience> ParseAudience(std::string_view text) {
  if (text == "potential") return Audience::kPotential;
  if (text == "confirmed") return Audience::kConfirmed;
  return ValidationError("Api validation failed: audience",
                         {"audience: must be \"potential\" or \"confirmed\""});
}

std::string_view AudienceName(Audience audience) {
  return audience == Audience::kConfirmed ? "confirmed" : "potential";
}

Json NotifyResult::ToJson() const {
  Json details = Json::array();
  for (const TenantNotifyResult& t : tenants) {
    details.push_back({{"tenantId", t.tenant_id.value()},
                       {"tenantName", t.tenant_name},
                       {"confirmed", t.confirmed},
                       {"contacts", t.contacts},
                       {"created", t.created},
                       {"existing", t.existing}});
  }
  return {{"incidentId", incident.id},
          {"status", incident.status},
          {"audience", AudienceName(audience)},
          {"tenants", tenants.size()},
          {"notifications", created},
          {"alreadyNotified", existing},
          {"tenantsWithoutContacts", without_contacts},
          {"noticeId", notice_id},
          {"details", std::move(details)}};
}

Json TenantNotificationsView(const TenantNotifications& tenant) {
  Json rows = Json::array();
  for (const store::NotificationRecord& n : tenant.rows) {
    rows.push_back(
        {{"id", n.id},
         {"contactId", n.contact_id},
         {"channel", n.channel},
         {"status", n.status},
         {"attempts", n.attempts},
         {"nextAttempt", FormatRfc3339(n.next_attempt)},
         {"lastError", n.last_error.empty() ? Json(nullptr) : Json(n.last_error)},
         {"created", FormatRfc3339(n.created)},
         {"delivered", TimeOrNull(n.delivered)},
         {"acknowledged", TimeOrNull(n.acknowledged)},
         {"acknowledgedBy", n.acknowledged_by.empty() ? Json(nullptr) : Json(n.acknowledged_by)}});
  }
  return {{"tenantId", tenant.tenant_id.value()},
          {"tenantName", tenant.tenant_name},
          {"inScope", tenant.in_scope},
          {"confirmed", tenant.confirmed},
          {"notifications", std::move(rows)}};
}

Json TenantIncidentView(const TenantIncident& incident, std::string_view tenant_name) {
  const store::IncidentRecord& i = incident.incident;
  Json confirmed = false;
  Json summary = nullptr;
  Json rows = Json::array();
  for (const store::NotificationRecord& n : incident.notifications) {
    // The payload is what the tenant was told; the newest row says it last.
    Json payload = Json::parse(n.payload_json, nullptr, false);
    if (payload.is_object() && payload.contains("data") && payload["data"].is_object()) {
      const Json& data = payload["data"];
      if (data.contains("confirmed")) confirmed = data["confirmed"];
      if (data.contains("summary")) summary = data["summary"];
    }
    rows.push_back({{"id", n.id},
                    {"channel", n.channel},
                    {"status", n.status},
                    {"delivered", TimeOrNull(n.delivered)},
                    {"acknowledged", TimeOrNull(n.acknowledged)}});
  }
  return {
      {"id", i.id},
      {"title", i.title},
      {"status", i.status},
      {"window", WindowJson(i.window_start, i.window_end)},
      {"compromiseWindow", WindowJson(i.compromise_start, i.compromise_end)},
      {"confirmed", confirmed},
      {"summary", summary},
      {"notifications", std::move(rows)},
      {"evidence", fmt::format("/t/{}/api/v1/security/incidents/{}/evidence", tenant_name, i.id)}};
}

Json IncidentView(const store::IncidentRecord& incident) {
  Json indicators = Json::parse(incident.indicators_json, nullptr, false);
  if (indicators.is_discarded()) indicators = nullptr;
  Json scope = nullptr;
  if (!incident.scope_json.empty()) {
    Json stored = Json::parse(incident.scope_json, nullptr, false);
    if (stored.is_object()) {
      scope = {{"potential", stored.value("potential", 0)},
               {"confirmed", stored.value("confirmed", 0)}};
    }
  }
  return {{"id", incident.id},
          {"title", incident.title},
          {"status", incident.status},
          {"indicators", std::move(indicators)},
          {"window", WindowJson(incident.window_start, incident.window_end)},
          {"compromiseWindow", WindowJson(incident.compromise_start, incident.compromise_end)},
          {"notes", incident.notes},
          {"created", FormatRfc3339(incident.created)},
          {"updated", FormatRfc3339(incident.updated)},
          {"createdBy", incident.created_by},
          {"scope", std::move(scope)}};
}

absl::StatusOr<ScopeResult> ParseStoredScope(std::string_view scope_json) {
  absl::StatusOr<Json> json = ParseJson(scope_json);
  if (!json.ok()) return absl::DataLossError("stored scope is not JSON");
  // nlohmann throws on a missing member or a wrong type; a stored scope is ours, so either
  // means it was damaged.
  try {
    ScopeResult out;
    out.window = ParseWindowJson(json->at("window"));
    out.compromise = ParseWindowJson(json->at("compromiseWindow"));
    out.potential = json->at("potential").get<int>();
    out.confirmed = json->at("confirmed").get<int>();
    out.rows_examined = json->at("rowsExamined").get<int64_t>();
    out.elapsed = absl::Milliseconds(json->at("elapsedMs").get<double>());
    for (const Json& t : json->at("tenants")) {
      TenantScope tenant{.tenant_id = TenantId(t.at("id").get<std::string>()),
                         .tenant_name = t.at("name").get<std::string>(),
                         .confirmed = t.at("confirmed").get<bool>(),
                         .views = t.at("views").get<int>(),
                         .attempts = t.at("attempts").get<int>(),
                         .refusals = t.at("refusals").get<int>(),
                         .successes = t.at("successes").get<int>(),
                         .grants_used = t.at("grantsUsed").get<std::vector<std::string>>()};
      for (const Json& e : t.value("timeline", Json::array())) {
        tenant.timeline.push_back(
            TimelineEntry{.time = ParseRfc3339(e.at("time").get<std::string>()).value(),
                          .event_type = e.at("eventType").get<std::string>(),
                          .outcome = e.at("outcome").get<std::string>(),
                          .reason = e.at("reason").get<std::string>(),
                          .operator_id = e.at("operatorId").get<std::string>(),
                          .vendor_id = e.at("vendorId").get<std::string>(),
                          .device_id = e.at("deviceId").get<std::string>(),
                          .session_id = e.at("sessionId").get<std::string>(),
                          .ip = e.at("ip").get<std::string>(),
                          .grant_id = e.at("grantId").get<std::string>(),
                          .case_id = e.at("caseId").get<std::string>(),
                          .resource = e.at("resource").get<std::string>(),
                          .fields = e.at("fields").get<std::string>(),
                          .tenant_event_uuid = e.at("uuid").get<std::string>(),
                          .confirmed = e.at("confirmed").get<bool>()});
      }
      out.tenants.push_back(std::move(tenant));
    }
    return out;
  } catch (const std::exception& e) {
    return absl::DataLossError(fmt::format("stored scope is damaged: {}", e.what()));
  }
}

Incidents::Incidents(store::Store& store, const Clock& clock, crypto::Random& random,
                     audit::LogReader& reader, audit::LogKeys& keys, IncidentsOptions options)
    : store_(store),
      clock_(clock),
      random_(random),
      reader_(reader),
      keys_(keys),
      options_(options) {}

absl::Status Incidents::RecordFailure(const audit::RequestContext& ctx, audit::EventSpec spec,
                                      const absl::Status& error) {
  spec.outcome = std::string(audit::kFailure);
  spec.reason = RefusalReason(error);
  spec.severity = "WARN";
  std::vector<std::string> causes = ErrorCausesOf(error);
  spec.debug_data["error"] =
      Cut(causes.empty() ? std::string(error.message()) : causes.front(), kMaxErrorDetail);
  return store_.Write(
      [&](Transaction& tx) { return AppendProviderEvent(tx, clock_, random_, ctx, spec); });
}

absl::StatusOr<store::IncidentRecord> Incidents::Declare(const audit::RequestContext& ctx,
                                                         const Json& definition) {
  audit::EventSpec spec = StepSpec("declare", "Declare security incident");
  absl::StatusOr<Definition> def = ParseDefinition(definition);
  if (!def.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, def.status()));
    return def.status();
  }
  const absl::Time now = clock_.Now();
  store::IncidentRecord incident{.id = random_.Id(store::kIncidentIdPrefix),
                                 .title = def->title,
                                 .status = std::string(store::kIncidentDeclared),
                                 .indicators_json = DumpJson(def->indicators.ToJson()),
                                 .window_start = def->window.start,
                                 .window_end = def->window.end,
                                 .compromise_start = def->compromise.start,
                                 .compromise_end = def->compromise.end,
                                 .notes = def->notes,
                                 .created = now,
                                 .updated = now,
                                 .created_by = ctx.actor.id};
  spec.targets = {IncidentTarget(incident)};
  spec.severity = "WARN";
  spec.debug_data = {{"incidentId", incident.id},
                     {"windowStart", FormatRfc3339(incident.window_start)},
                     {"windowEnd", FormatRfc3339(incident.window_end)},
                     {"compromiseStart", FormatRfc3339(incident.compromise_start)},
                     {"compromiseEnd", FormatRfc3339(incident.compromise_end)},
                     {"operatorIds", std::to_string(def->indicators.operator_ids.size())},
                     {"vendorIds", std::to_string(def->indicators.vendor_ids.size())},
                     {"deviceIds", std::to_string(def->indicators.device_ids.size())},
                     {"sessionIds", std::to_string(def->indicators.session_ids.size())},
                     {"ipRanges", std::to_string(def->indicators.ip_ranges.size())}};
  RETURN_IF_ERROR(store_.Write([&](Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.Incidents().Insert(incident));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  }));
  return incident;
}

absl::StatusOr<store::IncidentRecord> Incidents::Get(std::string_view id) {
  return store::ReadResult(store_, [&](Transaction& tx) { return FindIncident(tx, id); });
}

absl::StatusOr<std::vector<store::IncidentRecord>> Incidents::List(int limit) {
  if (limit < 1 || limit > 1000) {
    return ValidationError("Api validation failed: limit",
                           {"limit: must be an integer between 1 and 1000"});
  }
  return store::ReadResult(store_, [&](Transaction& tx) { return tx.Incidents().List(limit); });
}

absl::StatusOr<ScopeResult> Incidents::Scope(const audit::RequestContext& ctx,
                                             std::string_view id) {
  audit::EventSpec spec = StepSpec("scope", "Scope security incident");
  spec.targets = {{std::string(id), std::string(kIncidentType), std::string(id), ""}};
  absl::StatusOr<store::IncidentRecord> incident = Get(id);
  absl::Status refused;
  if (!incident.ok()) {
    refused = incident.status();
  } else if (incident->status == store::kIncidentClosed) {
    refused = Closed(*incident);
  }
  if (!refused.ok()) {
    if (absl::IsNotFound(refused) || absl::IsAborted(refused)) {
      RETURN_IF_ERROR(RecordFailure(ctx, spec, refused));
    }
    return refused;
  }
  spec.targets = {IncidentTarget(*incident)};
  ASSIGN_OR_RETURN(Json indicators_json, ParseJson(incident->indicators_json));
  ASSIGN_OR_RETURN(Indicators indicators, Indicators::FromJson(indicators_json));
  absl::StatusOr<ScopeResult> result =
      ScopeIncident(store_, indicators, Window{incident->window_start, incident->window_end},
                    Window{incident->compromise_start, incident->compromise_end});
  if (!result.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, result.status()));
    return result.status();
  }
  spec.debug_data = {
      {"incidentId", incident->id},
      {"potential", std::to_string(result->potential)},
      {"confirmed", std::to_string(result->confirmed)},
      {"rowsExamined", std::to_string(result->rows_examined)},
      {"elapsedMs", fmt::format("{:.1f}", absl::ToDoubleMilliseconds(result->elapsed))}};
  const std::string scope_json = DumpJson(result->ToJson(true));
  absl::Status closed_meanwhile;
  absl::Status written = store_.Write([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(store::IncidentRecord current, FindIncident(tx, id));
    if (current.status == store::kIncidentClosed) {
      closed_meanwhile = Closed(current);
      return closed_meanwhile;
    }
    current.scope_json = scope_json;
    if (current.status == store::kIncidentDeclared) {
      current.status = std::string(store::kIncidentScoped);
    }
    current.updated = clock_.Now();
    RETURN_IF_ERROR(tx.Incidents().Update(current));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  });
  if (!closed_meanwhile.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, closed_meanwhile));
    return closed_meanwhile;
  }
  RETURN_IF_ERROR(written);
  return result;
}

absl::StatusOr<Json> Incidents::LastScope(std::string_view id) {
  ASSIGN_OR_RETURN(store::IncidentRecord incident, Get(id));
  if (incident.scope_json.empty()) {
    return NotFoundError(fmt::format("scope of {} (the incident was not scoped yet)", id));
  }
  absl::StatusOr<Json> scope = ParseJson(incident.scope_json);
  if (!scope.ok()) return absl::DataLossError("stored scope is not JSON");
  return scope;
}

absl::StatusOr<std::string> Incidents::Report(std::string_view id, ReportFormat format) {
  ASSIGN_OR_RETURN(store::IncidentRecord incident, Get(id));
  if (incident.scope_json.empty()) return RenderReport(incident, nullptr, format);
  ASSIGN_OR_RETURN(ScopeResult scope, ParseStoredScope(incident.scope_json));
  return RenderReport(incident, &scope, format);
}

absl::StatusOr<EvidenceFile> Incidents::Evidence(const audit::RequestContext& ctx,
                                                 std::string_view id,
                                                 std::string_view tenant_name) {
  audit::EventSpec spec = StepSpec("evidence", "Build incident evidence package");
  spec.targets = {{std::string(id), std::string(kIncidentType), std::string(id), ""}};
  spec.debug_data = {{"tenantName", std::string(tenant_name)}};
  absl::StatusOr<store::IncidentRecord> incident = Get(id);
  absl::StatusOr<ScopeResult> scope = absl::UnknownError("not read");
  std::optional<store::TenantRecord> tenant;
  absl::Status refused = incident.status();
  if (refused.ok()) {
    spec.targets = {IncidentTarget(*incident)};
    if (incident->status == store::kIncidentClosed) {
      refused = Closed(*incident);
    } else if (incident->scope_json.empty()) {
      refused = NotScoped(*incident);
    } else {
      ASSIGN_OR_RETURN(scope, ParseStoredScope(incident->scope_json));
      const TenantScope* in_scope = FindTenant(*scope, tenant_name);
      absl::StatusOr<store::TenantRecord> found =
          NotFoundError(fmt::format("{} (Tenant in the scope of {})", tenant_name, incident->id));
      if (in_scope != nullptr) {
        found = store::ReadResult(
            store_, [&](Transaction& tx) { return tx.Tenants().Get(in_scope->tenant_id); });
        if (absl::IsNotFound(found.status())) {
          found = NotFoundError(fmt::format("{} (Tenant)", tenant_name));
        }
      }
      if (found.ok()) {
        tenant = *std::move(found);
      } else {
        refused = found.status();
      }
    }
  }
  if (!refused.ok()) {
    if (absl::IsNotFound(refused) || absl::IsAborted(refused)) {
      RETURN_IF_ERROR(RecordFailure(ctx, spec, refused));
    }
    return refused;
  }
  return EvidenceFor(ctx, *incident, *tenant, *scope);
}

absl::StatusOr<EvidenceFile> Incidents::TenantEvidence(const audit::RequestContext& ctx,
                                                       const store::TenantRecord& tenant,
                                                       std::string_view id) {
  audit::EventSpec spec = StepSpec("evidence", "Build incident evidence package");
  spec.targets = {{std::string(id), std::string(kIncidentType), std::string(id), ""}};
  spec.debug_data = {{"tenantId", tenant.id.value()}, {"tenantName", tenant.name}};
  // Only an incident the tenant was told of exists for it.
  absl::StatusOr<std::vector<store::NotificationRecord>> rows = store::ReadResult(
      store_,
      [&](Transaction& tx) { return tx.Incidents().ListNotificationsForTenant(tenant.id); });
  RETURN_IF_ERROR(rows.status());
  const bool notified =
      std::any_of(rows->begin(), rows->end(), [&](const auto& n) { return n.incident_id == id; });
  absl::Status refused;
  absl::StatusOr<store::IncidentRecord> incident = NotFoundError(fmt::format("{} (Incident)", id));
  if (notified) incident = Get(id);
  absl::StatusOr<ScopeResult> scope = absl::UnknownError("not read");
  if (!incident.ok()) {
    refused = incident.status();
  } else if (incident->scope_json.empty()) {
    refused = NotScoped(*incident);
  } else {
    spec.targets = {IncidentTarget(*incident)};
    ASSIGN_OR_RETURN(scope, ParseStoredScope(incident->scope_json));
    if (FindTenant(*scope, tenant.id) == nullptr) {
      refused = NotFoundError(fmt::format("{} (Tenant in the scope of {})", tenant.name, id));
    }
  }
  if (!refused.ok()) {
    if (absl::IsNotFound(refused) || absl::IsAborted(refused)) {
      RETURN_IF_ERROR(RecordFailure(ctx, spec, refused));
    }
    return refused;
  }
  return EvidenceFor(ctx, *incident, tenant, *scope);
}

absl::StatusOr<EvidenceFile> Incidents::EvidenceFor(const audit::RequestContext& ctx,
                                                    const store::IncidentRecord& incident,
                                                    const store::TenantRecord& tenant,
                                                    const ScopeResult& scope) {
  audit::EventSpec spec = StepSpec("evidence", "Build incident evidence package");
  spec.targets = {IncidentTarget(incident)};
  spec.debug_data = {
      {"incidentId", incident.id}, {"tenantId", tenant.id.value()}, {"tenantName", tenant.name}};
  const TenantScope* in_scope = FindTenant(scope, tenant.id);
  EvidenceRequest request{.incident_id = incident.id,
                          .incident_title = incident.title,
                          .tenant = tenant,
                          .timeout = options_.evidence_timeout,
                          .poll_interval = options_.evidence_poll_interval};
  if (in_scope != nullptr) {
    for (const TimelineEntry& e : in_scope->timeline) {
      request.event_uuids.push_back(e.tenant_event_uuid);
    }
  }
  absl::StatusOr<Json> package = absl::UnknownError("not built");
  absl::StatusOr<std::vector<std::string>> vkeys = keys_.VerifierKeys();
  if (!vkeys.ok()) {
    package = vkeys.status();
  } else {
    request.verifier_keys = *std::move(vkeys);
    package = BuildEvidence(store_, reader_, clock_, random_, request);
  }
  if (!package.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, package.status()));
    return package.status();
  }
  EvidenceFile file{.file_name = fmt::format("evidence-{}-{}.json", SafeFileNamePart(incident.id),
                                             SafeFileNamePart(tenant.name)),
                    .bytes = SerializeEvidence(*package),
                    .tenant = tenant,
                    .events = (*package)["events"].size(),
                    .tree_size = (*package)["treeSize"].get<uint64_t>()};
  spec.debug_data["events"] = std::to_string(file.events);
  spec.debug_data["treeSize"] = std::to_string(file.tree_size);
  spec.debug_data["manifestIndex"] =
      std::to_string((*package)["manifest"]["index"].get<uint64_t>());
  RETURN_IF_ERROR(store_.Write(
      [&](Transaction& tx) { return AppendProviderEvent(tx, clock_, random_, ctx, spec); }));
  return file;
}

absl::StatusOr<NotifyResult> Incidents::Notify(const audit::RequestContext& ctx,
                                               std::string_view id, Audience audience) {
  audit::EventSpec spec = StepSpec("notify", "Notify tenants of security incident");
  spec.targets = {{std::string(id), std::string(kIncidentType), std::string(id), ""}};
  spec.debug_data = {{"audience", std::string(AudienceName(audience))}};
  NotifyResult result;
  absl::Status refused;
  absl::Status written = store_.Write([&](Transaction& tx) -> absl::Status {
    result = NotifyResult{.audience = audience};
    absl::StatusOr<store::IncidentRecord> found = FindIncident(tx, id);
    if (!found.ok()) {
      if (absl::IsNotFound(found.status())) refused = found.status();
      return found.status();
    }
    store::IncidentRecord incident = *std::move(found);
    spec.targets = {IncidentTarget(incident)};
    if (incident.status == store::kIncidentClosed) {
      refused = Closed(incident);
      return refused;
    }
    if (incident.scope_json.empty()) {
      refused = NotScoped(incident);
      return refused;
    }
    ASSIGN_OR_RETURN(ScopeResult scope, ParseStoredScope(incident.scope_json));
    std::set<std::pair<std::string, std::string>> notified;  // (tenant id, contact id)
    ASSIGN_OR_RETURN(std::vector<store::NotificationRecord> existing,
                     tx.Incidents().ListNotifications(incident.id));
    for (const store::NotificationRecord& n : existing) {
      notified.emplace(n.tenant_id.value(), n.contact_id);
    }
    const absl::Time now = clock_.Now();
    int confirmed_tenants = 0;
    for (const TenantScope& tenant : scope.tenants) {
      if (audience == Audience::kConfirmed && !tenant.confirmed) continue;
      TenantNotifyResult done{.tenant_id = tenant.tenant_id,
                              .tenant_name = tenant.tenant_name,
                              .confirmed = tenant.confirmed};
      if (tenant.confirmed) ++confirmed_tenants;
      absl::StatusOr<store::TenantRecord> record = tx.Tenants().Get(tenant.tenant_id);
      if (!record.ok() && !absl::IsNotFound(record.status())) return record.status();
      std::vector<store::SecurityContactRecord> contacts;
      // A tenant deleted since the scoping has nobody left to tell.
      if (record.ok()) {
        ASSIGN_OR_RETURN(contacts, tx.Incidents().ListContacts(tenant.tenant_id));
      }
      done.contacts = static_cast<int>(contacts.size());
      for (const store::SecurityContactRecord& contact : contacts) {
        if (notified.contains({tenant.tenant_id.value(), contact.id})) {
          ++done.existing;
          continue;
        }
        store::NotificationRecord row{.id = random_.Id(store::kNotificationIdPrefix),
                                      .incident_id = incident.id,
                                      .tenant_id = tenant.tenant_id,
                                      .contact_id = contact.id,
                                      .channel = contact.type,
                                      .status = std::string(store::kNotificationPending),
                                      .next_attempt = now,
                                      .created = now};
        row.payload_json = DumpJson(NotificationPayload(incident, tenant, row.id, now));
        RETURN_IF_ERROR(tx.Incidents().InsertNotification(row));
        ++done.created;
      }
      if (contacts.empty()) ++result.without_contacts;
      result.created += done.created;
      result.existing += done.existing;
      result.tenants.push_back(std::move(done));
    }

    store::StatusNoticeRecord notice =
        Notice(incident, static_cast<int>(result.tenants.size()), confirmed_tenants, now);
    result.notice_id = notice.id;
    absl::Status inserted = tx.Incidents().InsertNotice(notice);
    const bool published = inserted.ok();
    if (absl::IsAlreadyExists(inserted)) {
      RETURN_IF_ERROR(tx.Incidents().UpdateNotice(notice));
    } else {
      RETURN_IF_ERROR(inserted);
    }
    RETURN_IF_ERROR(AppendProviderEvent(
        tx, clock_, random_, ctx,
        audit::EventSpec{
            .event_type = published ? "status.notice.publish" : "status.notice.update",
            .display_message = published ? "Publish status notice" : "Update status notice",
            .targets = {{notice.id, "StatusNotice", notice.id, notice.title}},
            .debug_data = {
                {"noticeId", notice.id}, {"kind", notice.kind}, {"incidentId", incident.id}}}));

    if (incident.status == store::kIncidentScoped) {
      incident.status = std::string(store::kIncidentNotified);
    }
    incident.updated = now;
    RETURN_IF_ERROR(tx.Incidents().Update(incident));
    result.incident = incident;
    spec.debug_data["incidentId"] = incident.id;
    spec.debug_data["tenants"] = std::to_string(result.tenants.size());
    spec.debug_data["notificationsCreated"] = std::to_string(result.created);
    spec.debug_data["notificationsExisting"] = std::to_string(result.existing);
    spec.debug_data["tenantsWithoutContacts"] = std::to_string(result.without_contacts);
    spec.debug_data["noticeId"] = notice.id;
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  });
  if (!refused.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, refused));
    return refused;
  }
  RETURN_IF_ERROR(written);
  return result;
}

absl::StatusOr<std::vector<TenantNotifications>> Incidents::Notifications(std::string_view id) {
  std::vector<TenantNotifications> out;
  RETURN_IF_ERROR(store_.Read([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(store::IncidentRecord incident, FindIncident(tx, id));
    std::map<std::string, TenantNotifications> by_tenant;
    if (!incident.scope_json.empty()) {
      ASSIGN_OR_RETURN(ScopeResult scope, ParseStoredScope(incident.scope_json));
      for (const TenantScope& t : scope.tenants) {
        by_tenant[t.tenant_id.value()] = TenantNotifications{.tenant_id = t.tenant_id,
                                                             .tenant_name = t.tenant_name,
                                                             .in_scope = true,
                                                             .confirmed = t.confirmed};
      }
    }
    ASSIGN_OR_RETURN(std::vector<store::NotificationRecord> rows,
                     tx.Incidents().ListNotifications(incident.id));
    for (store::NotificationRecord& row : rows) {
      auto [it, added] = by_tenant.try_emplace(row.tenant_id.value());
      if (added) {
        it->second.tenant_id = row.tenant_id;
        absl::StatusOr<store::TenantRecord> tenant = tx.Tenants().Get(row.tenant_id);
        if (tenant.ok()) {
          it->second.tenant_name = tenant->name;
        } else if (!absl::IsNotFound(tenant.status())) {
          return tenant.status();
        }
      }
      it->second.rows.push_back(std::move(row));
    }
    for (auto& [tenant_id, tenant] : by_tenant) out.push_back(std::move(tenant));
    return absl::OkStatus();
  }));
  std::sort(out.begin(), out.end(), [](const TenantNotifications& a, const TenantNotifications& b) {
    return std::tie(a.tenant_name, a.tenant_id) < std::tie(b.tenant_name, b.tenant_id);
  });
  return out;
}

absl::StatusOr<std::vector<TenantIncident>> Incidents::TenantIncidents(const TenantId& tenant) {
  std::vector<TenantIncident> out;
  RETURN_IF_ERROR(store_.Read([&](Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::NotificationRecord> rows,
                     tx.Incidents().ListNotificationsForTenant(tenant));
    std::map<std::string, size_t> index;
    for (store::NotificationRecord& row : rows) {
      auto it = index.find(row.incident_id);
      if (it == index.end()) {
        ASSIGN_OR_RETURN(store::IncidentRecord incident, FindIncident(tx, row.incident_id));
        it = index.emplace(row.incident_id, out.size()).first;
        out.push_back(TenantIncident{.incident = std::move(incident)});
      }
      out[it->second].notifications.push_back(std::move(row));
    }
    return absl::OkStatus();
  }));
  std::sort(out.begin(), out.end(), [](const TenantIncident& a, const TenantIncident& b) {
    return std::tie(a.incident.created, a.incident.id) >
           std::tie(b.incident.created, b.incident.id);
  });
  return out;
}

absl::StatusOr<store::IncidentRecord> Incidents::Close(const audit::RequestContext& ctx,
                                                       std::string_view id,
                                                       std::string_view notes) {
  audit::EventSpec spec = StepSpec("close", "Close security incident");
  spec.targets = {{std::string(id), std::string(kIncidentType), std::string(id), ""}};
  if (notes.size() > kMaxNotesBytes) {
    absl::Status invalid =
        ValidationError("Api validation failed: notes",
                        {fmt::format("notes: must be at most {} bytes", kMaxNotesBytes)});
    RETURN_IF_ERROR(RecordFailure(ctx, spec, invalid));
    return invalid;
  }
  store::IncidentRecord closed;
  absl::Status refused;
  absl::Status written = store_.Write([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<store::IncidentRecord> found = FindIncident(tx, id);
    if (!found.ok()) {
      if (absl::IsNotFound(found.status())) refused = found.status();
      return found.status();
    }
    closed = *std::move(found);
    spec.targets = {IncidentTarget(closed)};
    if (closed.status == store::kIncidentClosed) {
      refused = Closed(closed);
      return refused;
    }
    spec.debug_data = {{"incidentId", closed.id}, {"previousStatus", closed.status}};
    if (!notes.empty()) {
      closed.notes =
          closed.notes.empty() ? std::string(notes) : fmt::format("{}\n\n{}", closed.notes, notes);
    }
    closed.status = std::string(store::kIncidentClosed);
    closed.updated = clock_.Now();
    RETURN_IF_ERROR(tx.Incidents().Update(closed));
    return AppendProviderEvent(tx, clock_, random_, ctx, spec);
  });
  if (!refused.ok()) {
    RETURN_IF_ERROR(RecordFailure(ctx, spec, refused));
    return refused;
  }
  RETURN_IF_ERROR(written);
  return closed;
}

}  // namespace custos::incident
