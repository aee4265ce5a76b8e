#include "support/anomaly.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>

#include "fmt/format.h"

namespace custos::support {

namespace {

// "60m" as the rules are usually configured, otherwise absl's form ("1h30m15s").
std::string FormatWindow(absl::Duration window) {
  absl::Duration rest;
  const int64_t minutes = absl::IDivDuration(window, absl::Minutes(1), &rest);
  if (window > absl::ZeroDuration() && window != absl::InfiniteDuration() &&
      rest == absl::ZeroDuration()) {
    return fmt::format("{}m", minutes);
  }
  return absl::FormatDuration(window);
}

}  // namespace

AnomalyDetector::AnomalyDetector(AnomalyRules rules) : rules_(rules) {}

AnomalyDetector::OperatorState& AnomalyDetector::StateOf(std::string_view operator_id) {
  std::unique_ptr<OperatorState>& slot = operators_[std::string(operator_id)];
  if (slot == nullptr) slot = std::make_unique<OperatorState>();
  return *slot;
}

std::optional<Alert> AnomalyDetector::OnTenantAccess(std::string_view operator_id,
                                                     std::string_view tenant_id, absl::Time now) {
  if (rules_.max_tenants <= 0) return std::nullopt;
  const size_t limit = static_cast<size_t>(rules_.max_tenants);
  absl::MutexLock lock(&mu_);
  OperatorState& state = StateOf(operator_id);

  // An access exactly one window old is out of the window.
  const absl::Time cutoff = now - rules_.window;
  while (!state.tenants_by_time.empty() && state.tenants_by_time.begin()->first <= cutoff) {
    state.last_access.erase(state.tenants_by_time.begin()->second);
    state.tenants_by_time.erase(state.tenants_by_time.begin());
  }
  if (state.last_access.size() <= limit) state.tenant_spread_armed = true;

  auto [it, inserted] = state.last_access.try_emplace(std::string(tenant_id), now);
  if (inserted) {
    state.tenants_by_time.emplace(now, it->first);
  } else if (it->second < now) {
    // Callers may report slightly out of order; a tenant's time only moves forward.
    state.tenants_by_time.erase({it->second, it->first});
    it->second = now;
    state.tenants_by_time.emplace(now, it->first);
  }
  while (state.last_access.size() > limit + 1) {
    state.last_access.erase(state.tenants_by_time.begin()->second);
    state.tenants_by_time.erase(state.tenants_by_time.begin());
  }

  if (state.last_access.size() <= limit || !state.tenant_spread_armed) return std::nullopt;
  state.tenant_spread_armed = false;
  return Alert{
      .rule = std::string(kRuleTenantSpread),
      .detail = fmt::format("reached {} tenants in {} (limit {})", state.last_access.size(),
                            FormatWindow(rules_.window), rules_.max_tenants)};
}

std::optional<Alert> AnomalyDetector::OnRefusedAction(std::string_view operator_id,
                                                      absl::Time now) {
  if (rules_.max_refused_actions <= 0) return std::nullopt;
  const size_t limit = static_cast<size_t>(rules_.max_refused_actions);
  absl::MutexLock lock(&mu_);
  OperatorState& state = StateOf(operator_id);

  const absl::Time cutoff = now - rules_.window;
  while (!state.refused.empty() && state.refused.front() <= cutoff) state.refused.pop_front();
  if (state.refused.size() < limit) state.refused_actions_armed = true;

  state.refused.insert(std::upper_bound(state.refused.begin(), state.refused.end(), now), now);
  while (state.refused.size() > limit) state.refused.pop_front();

  if (state.refused.size() < limit || !state.refused_actions_armed) return std::nullopt;
  state.refused_actions_armed = false;
  return Alert{
      .rule = std::string(kRuleRefusedActions),
      .detail = fmt::format("{} guarded actions refused in {} (limit {})", state.refused.size(),
                            FormatWindow(rules_.window), rules_.max_refused_actions)};
}

std::string NetworkOf(std::string_view ip) {
  const std::string text(ip);
  // inet_pton reads up to a NUL; text with one inside is not an address.
  if (text.find('\0') != std::string::npos) return text;

  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    const auto* b = reinterpret_cast<const unsigned char*>(&v4.s_addr);
    return fmt::format("{}.{}.{}.0/24", b[0], b[1], b[2]);
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    const unsigned char* b = v6.s6_addr;
    // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; their /64 would lump every
    // IPv4 client into one network.
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return fmt::format("{}.{}.{}.0/24", b[12], b[13], b[14]);
    std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
    char out[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &v6, out, sizeof out) == nullptr) return text;
    return fmt::format("{}/64", out);
  }
  return text;
}

}  // namespace custos::support
