#pragma once

// The incident service: what the provider's security team does when a support workstation, an
// operator or a vendor is compromised (docs/incidents.md).
//
// An incident holds indicators (incident/scope.h Indicators), a window in which the indicated
// principals are suspect and a compromise window (by default the same). Its status only moves
// forward:
//
//   DECLARED --Scope--> SCOPED --Notify--> NOTIFIED --Close--> CLOSED
//
// Scope may be repeated until the incident is closed (each run replaces the stored result; a
// NOTIFIED incident stays NOTIFIED), Notify may be repeated (it is idempotent per incident,
// tenant and contact), Close works from any status, and nothing works after CLOSED.
//
// Every step (declare, scope, evidence, notify, close) is an event in the provider log, type
// security.incident.<step>, with the caller's context as actor and counts in debugData (never
// secrets). A refused step (invalid input, an unknown incident or tenant, a wrong status) records
// the same event type with outcome FAILURE and its reason, and changes nothing else.
//
// Errors carry the management API's codes (common/errors.h): kInvalidArgument E0000001 naming the
// field; kNotFound E0000007; kAborted E0000038 (HTTP 409) for a step the status does not allow,
// with reason "incident_closed" or "incident_not_scoped"; kDeadlineExceeded from Evidence when
// the events are not in a signed checkpoint in time (the sequencer of `custos serve` is not
// running or is behind); store errors as they come.
//
// Thread-safe: holds references to thread-safe services only; every step re-reads the incident
// and checks its status inside the write transaction that changes it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "common/clock.h"
#include "common/json.h"
#include "crypto/random.h"
#include "incident/report.h"
#include "incident/scope.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

inline constexpr size_t kMaxTitleBytes = 200;
inline constexpr size_t kMaxNotesBytes = 10000;
// The longest window (and compromise window) an incident may have.
inline constexpr absl::Duration kMaxIncidentWindow = absl::Hours(24 * 366);

// Refusal reasons (errors' "reason", and the FAILURE events' outcome.reason).
inline constexpr std::string_view kReasonClosed = "incident_closed";
inline constexpr std::string_view kReasonNotScoped = "incident_not_scoped";

// Who Notify tells: every tenant of the potential scope, or only the confirmed ones.
enum class Audience { kPotential, kConfirmed };
// "potential" or "confirmed"; kInvalidArgument (E0000001, naming "audience") otherwise.
absl::StatusOr<Audience> ParseAudience(std::string_view text);
std::string_view AudienceName(Audience audience);

struct IncidentsOptions {
  // Bounds Evidence's wait for the sequencer (incident::EvidenceRequest::timeout).
  absl::Duration evidence_timeout = absl::Seconds(30);
  absl::Duration evidence_poll_interval = absl::Milliseconds(100);
};

// One tenant's evidence package, ready to be written or sent.
struct EvidenceFile {
  std::string file_name;  // "evidence-<incident id>-<tenant name>.json"
  std::string bytes;      // SerializeEvidence of the package
  store::TenantRecord tenant;
  size_t events = 0;  // events in the package (the manifest not counted)
  uint64_t tree_size = 0;
};

// What one Notify did for one tenant of the audience.
struct TenantNotifyResult {
  TenantId tenant_id;
  std::string tenant_name;
  bool confirmed = false;
  int contacts = 0;  // the tenant's security contacts now
  int created = 0;   // outbox rows made by this call
  int existing = 0;  // contacts notified by an earlier call (not again)
};

struct NotifyResult {
  store::IncidentRecord incident;  // as stored after the step
  Audience audience = Audience::kPotential;
  std::vector<TenantNotifyResult> tenants;  // the audience, by tenant name
  int created = 0;
  int existing = 0;
  int without_contacts = 0;  // tenants of the audience that have no security contact
  std::string notice_id;     // the incident's security status notice
  // {"incidentId","status","audience","tenants":N,"notifications":N (created now),
  //  "alreadyNotified":N,"tenantsWithoutContacts":N,"noticeId","details":[{"tenantId",
  //  "tenantName","confirmed","contacts","created","existing"}]}
  Json ToJson() const;
};

// The outbox rows of one tenant for one incident.
struct TenantNotifications {
  TenantId tenant_id;
  std::string tenant_name;  // empty when the tenant is gone
  bool in_scope = false;    // in the last scoping result
  bool confirmed = false;
  std::vector<store::NotificationRecord> rows;  // by created, then id
};
// {"tenantId","tenantName","inScope","confirmed","notifications":[{"id","contactId","channel",
//  "status","attempts","nextAttempt","lastError","created","delivered","acknowledged",
//  "acknowledgedBy"}]}
Json TenantNotificationsView(const TenantNotifications& tenant);

// An incident as a tenant admin sees it: only through its own notifications.
struct TenantIncident {
  store::IncidentRecord incident;
  std::vector<store::NotificationRecord> notifications;  // the tenant's, by created
};
// {"id","title","status","window","compromiseWindow","confirmed","summary",
//  "notifications":[{"id","channel","status","delivered","acknowledged"}],"evidence":"<path>"}
// `tenant_name` builds the evidence path. No indicators, notes or other tenants.
Json TenantIncidentView(const TenantIncident& incident, std::string_view tenant_name);

// The provider's view: {"id","title","status","indicators","window":{"start","end"},
// "compromiseWindow":{…},"notes","created","updated","createdBy","scope":null |
// {"potential":N,"confirmed":N}}.
Json IncidentView(const store::IncidentRecord& incident);

// The scoping result as Scope stored it (ScopeResult::ToJson with timelines) read back.
// kDataLoss when it is not what ToJson writes.
absl::StatusOr<ScopeResult> ParseStoredScope(std::string_view scope_json);

class Incidents {
 public:
  // Every reference must outlive the service. `keys` supplies the verifier keys embedded in
  // evidence packages (those published at /.well-known/custos/log-keys).
  Incidents(store::Store& store, const Clock& clock, crypto::Random& random,
            audit::LogReader& reader, audit::LogKeys& keys, IncidentsOptions options = {});

  // Declares an incident from its definition, the JSON the API takes:
  //   {"title": "1..200 bytes", "indicators": {...Indicators...},
  //    "window": {"start": RFC 3339, "end": RFC 3339},
  //    "compromiseWindow"?: {"start","end"} (default: window), "notes"?: "<= 10000 bytes"}
  // Windows need start < end and at most kMaxIncidentWindow. Status DECLARED.
  absl::StatusOr<store::IncidentRecord> Declare(const audit::RequestContext& ctx,
                                                const Json& definition);
  absl::StatusOr<store::IncidentRecord> Get(std::string_view id);
  // The `limit` newest (1..1000).
  absl::StatusOr<std::vector<store::IncidentRecord>> List(int limit);

  // Scopes the incident over the support activity index (ScopeIncident) and stores the result,
  // timelines included. DECLARED becomes SCOPED.
  absl::StatusOr<ScopeResult> Scope(const audit::RequestContext& ctx, std::string_view id);
  // The stored result of the last Scope (ScopeResult::ToJson). kNotFound before the first.
  absl::StatusOr<Json> LastScope(std::string_view id);

  // The report of the incident and its last scoping result (report.h); an incident not scoped
  // yet has a header only.
  absl::StatusOr<std::string> Report(std::string_view id, ReportFormat format);

  // The evidence package of one tenant of the last scope (kNotFound when the tenant is not in
  // it; kAborted before the first Scope), holding the tenant's timeline events. Writes the
  // package's manifest event in the tenant's log (incident/evidence.h) and waits for the
  // sequencer, up to IncidentsOptions::evidence_timeout.
  absl::StatusOr<EvidenceFile> Evidence(const audit::RequestContext& ctx, std::string_view id,
                                        std::string_view tenant_name);
  // The same for a tenant admin asking for their own package: only for an incident the tenant
  // was notified of (kNotFound otherwise, as for an unknown incident). Works after CLOSED too:
  // the notification the tenant received points here.
  absl::StatusOr<EvidenceFile> TenantEvidence(const audit::RequestContext& ctx,
                                              const store::TenantRecord& tenant,
                                              std::string_view id);

  // Queues one notification per tenant of the audience and security contact of that tenant
  // (outbox rows, PENDING, due now; the notifier delivers them), except for (tenant, contact)
  // pairs an earlier Notify already queued. Publishes the incident's security status notice
  // (one per incident, updated by later calls; it names no tenant). SCOPED becomes NOTIFIED.
  // All in one transaction with the event.
  absl::StatusOr<NotifyResult> Notify(const audit::RequestContext& ctx, std::string_view id,
                                      Audience audience);
  // Per tenant of the last scope and per tenant with a notification: its outbox rows. By tenant
  // name.
  absl::StatusOr<std::vector<TenantNotifications>> Notifications(std::string_view id);
  // The incidents the tenant has notifications of, newest first.
  absl::StatusOr<std::vector<TenantIncident>> TenantIncidents(const TenantId& tenant);

  // CLOSED, from any other status. Non-empty `notes` are appended to the incident's notes.
  absl::StatusOr<store::IncidentRecord> Close(const audit::RequestContext& ctx, std::string_view id,
                                              std::string_view notes);

 private:
  absl::StatusOr<EvidenceFile> EvidenceFor(const audit::RequestContext& ctx,
                                           const store::IncidentRecord& incident,
                                           const store::TenantRecord& tenant,
                                           const ScopeResult& scope);
  absl::Status RecordFailure(const audit::RequestContext& ctx, audit::EventSpec spec,
                             const absl::Status& error);

  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
  audit::LogReader& reader_;
  audit::LogKeys& keys_;
  const IncidentsOptions options_;
};

}  // namespace custos::incident
