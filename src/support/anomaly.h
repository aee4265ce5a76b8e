#pragma once

// Anomaly rules of the support plane, as counters over a sliding window. The caller (the access
// gate) feeds what operators do; a rule that fires returns an alert, which the caller records as
// a support.anomaly.alert event and may follow by suspending the operator.
//
// The rules:
//   tenant_spread   one operator reaches more than max_tenants distinct tenants within window
//   refused_actions one operator has max_refused_actions guarded actions refused within window
// (New devices and networks are remembered in the store, as sightings; NetworkOf gives the
// network of an address.)
//
// A rule fires once when its threshold is crossed and again only after the operator's count has
// dropped back below it. State is in memory: a restart forgets the windows (the events remain).
// Thread-safe.

#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace custos::support {

struct AnomalyRules {
  int max_tenants = 5;  // 0: rule off
  absl::Duration window = absl::Minutes(60);
  int max_refused_actions = 3;  // 0: rule off
};

inline constexpr std::string_view kRuleTenantSpread = "tenant_spread";
inline constexpr std::string_view kRuleRefusedActions = "refused_actions";
inline constexpr std::string_view kRuleNewDevice = "new_device";
inline constexpr std::string_view kRuleNewNetwork = "new_network";

struct Alert {
  std::string rule;    // kRule*
  std::string detail;  // for people: "reached 6 tenants in 60m (limit 5)"
};

class AnomalyDetector {
 public:
  explicit AnomalyDetector(AnomalyRules rules);

  // An allowed access of `operator_id` into `tenant_id` at `now`.
  std::optional<Alert> OnTenantAccess(std::string_view operator_id, std::string_view tenant_id,
                                      absl::Time now);
  // A refused guarded action of `operator_id` at `now`.
  std::optional<Alert> OnRefusedAction(std::string_view operator_id, absl::Time now);

 private:
  // One operator's windows. Each rule keeps only what its threshold needs, so the state stays
  // small however busy the operator is: the max_tenants + 1 most recently reached tenants (more
  // than max_tenants are within the window exactly when all of those are) and the
  // max_refused_actions most recent refusals. Entries leave when they fall out of the window, on
  // the operator's next call.
  struct OperatorState {
    absl::flat_hash_map<std::string, absl::Time> last_access;      // tenant -> latest access
    std::set<std::pair<absl::Time, std::string>> tenants_by_time;  // the same, oldest first
    bool tenant_spread_armed = true;  // false from firing until the count is back below
    std::deque<absl::Time> refused;   // oldest first
    bool refused_actions_armed = true;
  };

  OperatorState& StateOf(std::string_view operator_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AnomalyRules rules_;
  absl::Mutex mu_;
  // operator id -> its windows.
  absl::flat_hash_map<std::string, std::unique_ptr<OperatorState>> operators_ ABSL_GUARDED_BY(mu_);
};

// The network an address belongs to for the new-network rule: "203.0.113.0/24" for IPv4,
// "2001:db8:1:2::/64" for IPv6 (canonical text), the address itself when it parses as neither.
// An IPv4-mapped IPv6 address (::ffff:203.0.113.7, as a dual-stack listener sees IPv4 clients)
// counts as IPv4.
std::string NetworkOf(std::string_view ip);

}  // namespace custos::support
