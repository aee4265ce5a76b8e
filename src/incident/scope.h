#pragma once

// Scoping a support-plane incident: which tenants the indicated principals reached, from the
// support activity index (store::IncidentRepository; one row per support event in a tenant's
// log, written with the event by support::AppendTransparencyEvents).
//
// - The potential scope is every tenant that any indicated principal (operator, vendor, device,
//   session, or an address in an indicated IP range) reached within the incident's window: the
//   tenants one would have to warn if nothing more were known.
// - The confirmed scope is every tenant reached within the compromise window by an indicated
//   device, session or address: what the compromised workstation itself touched.
//
// A reach is a support event the principal caused: rows whose actor is the operator
// (`by_operator`), and unauthenticated attempts (actor "unknown", matched by address or by the
// presented session); a tenant admin's approval of the operator's request is not a reach.
// Each tenant comes with its timeline (every matching row, oldest first) and counts.
//
// Thread-safe (no state).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/json.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::incident {

// An IPv4 or IPv6 network ("203.0.113.0/24", "2001:db8::/32") or one address.
class IpRange {
 public:
  // kInvalidArgument naming the text when it is not an address with an optional /prefix, or
  // when the address has bits set beyond the prefix ("10.0.0.1/8").
  static absl::StatusOr<IpRange> Parse(std::string_view text);
  // False for anything that is not an address of the same family.
  bool Contains(std::string_view ip) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;   // canonical "address/prefix"
  std::string bytes_;  // 4 or 16 network-order bytes
  int prefix_bits_ = 0;
};

// What is known about the attacker. Ids are matched exactly.
struct Indicators {
  std::vector<std::string> operator_ids;
  std::vector<std::string> vendor_ids;
  std::vector<std::string> device_ids;
  std::vector<std::string> session_ids;
  std::vector<std::string> ip_ranges;  // each IpRange::Parse-able

  bool empty() const;
  // {"operatorIds":[…],"vendorIds":[…],"deviceIds":[…],"sessionIds":[…],"ipRanges":[…]}
  Json ToJson() const;
  // Refuses (kInvalidArgument, naming the field) unknown fields, non-string or empty entries,
  // more than 1000 entries per list, bad ranges, and indicators that are all empty.
  static absl::StatusOr<Indicators> FromJson(const Json& json);
};

struct Window {
  absl::Time start;
  absl::Time end;  // exclusive
};

struct TimelineEntry {
  absl::Time time;
  std::string event_type;
  std::string outcome;
  std::string reason;
  std::string operator_id;
  std::string vendor_id;
  std::string device_id;
  std::string session_id;
  std::string ip;
  std::string grant_id;
  std::string case_id;
  std::string resource;
  std::string fields;
  std::string tenant_event_uuid;  // the event in the tenant's own log (evidence)
  bool confirmed = false;         // matched the confirmed-scope criteria
};

struct TenantScope {
  TenantId tenant_id;
  std::string tenant_name;
  bool confirmed = false;                // in the confirmed scope (else only potential)
  int views = 0;                         // support.view SUCCESS
  int attempts = 0;                      // guarded actions tried, allowed or refused
  int refusals = 0;                      // outcome DENY or FAILURE
  int successes = 0;                     // outcome SUCCESS
  std::vector<std::string> grants_used;  // distinct grant ids, ascending
  std::vector<TimelineEntry> timeline;   // oldest first
};

struct ScopeResult {
  Window window;
  Window compromise;
  std::vector<TenantScope> tenants;  // potential scope, by tenant name
  int potential = 0;                 // tenants.size()
  int confirmed = 0;                 // tenants with confirmed set
  int64_t rows_examined = 0;
  absl::Duration elapsed;

  std::vector<std::string> PotentialTenantIds() const;  // ascending
  std::vector<std::string> ConfirmedTenantIds() const;  // ascending
  // The whole result: {"window","compromiseWindow","potential":N,"confirmed":N,"rowsExamined",
  // "elapsedMs","tenants":[{"id","name","confirmed","views","attempts","refusals","successes",
  // "grantsUsed","timeline":[…]}]}. `with_timelines` false leaves the timelines out.
  Json ToJson(bool with_timelines = true) const;
};

// Scopes over the activity index. kInvalidArgument for an empty window (start >= end), empty
// indicators or bad ranges. A tenant reached only in the compromise window counts in both
// scopes.
absl::StatusOr<ScopeResult> ScopeIncident(store::Store& store, const Indicators& indicators,
                                          const Window& window, const Window& compromise);

}  // namespace custos::incident
