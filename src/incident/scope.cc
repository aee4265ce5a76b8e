#include "incident/scope.h"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <tuple>

#include "common/status_macros.h"
#include "common/time_format.h"
#include "fmt/format.h"
#include "support/plane.h"

namespace custos::incident {
namespace {

constexpr size_t kMaxIndicatorsPerList = 1000;
constexpr int kPageSize = 5000;

// Network-order bytes of an IPv4 or IPv6 address; empty when `text` is neither.
std::string AddressBytes(std::string_view text) {
  const std::string s(text);
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    return std::string(reinterpret_cast<char*>(buf), 16);
  }
  return {};
}

// True when the first `bits` bits of a and b (same length) are equal.
bool SamePrefix(std::string_view a, std::string_view b, int bits) {
  const int whole = bits / 8;
  if (a.substr(0, whole) != b.substr(0, whole)) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (static_cast<unsigned char>(a[whole]) & mask) ==
         (static_cast<unsigned char>(b[whole]) & mask);
}

bool IsGuardedAction(std::string_view name) {
  return name == support::kActionPasswordReset || name == support::kActionMfaReset ||
         name == support::kActionConfigChange;
}

bool IsReach(const store::SupportActivityRecord& row) {
  return row.by_operator || row.actor_id == "unknown";
}

TimelineEntry EntryOf(const store::SupportActivityRecord& row) {
  return TimelineEntry{.time = row.published,
                       .event_type = row.event_type,
                       .outcome = row.outcome,
                       .reason = row.reason,
                       .operator_id = row.operator_id,
                       .vendor_id = row.vendor_id,
                       .device_id = row.device_id,
                       .session_id = row.session_id,
                       .ip = row.ip,
                       .grant_id = row.grant_id,
                       .case_id = row.case_id,
                       .resource = row.resource,
                       .fields = row.fields,
                       .tenant_event_uuid = row.tenant_event_uuid};
}

// Every row of `query` (all pages). The caller has made sure some list is non-empty: with every
// list empty the store answers the whole window.
absl::Status ReadAll(store::IncidentRepository& repo, store::ActivityQuery query,
                     std::vector<store::SupportActivityRecord>& out) {
  query.limit = kPageSize;
  for (;;) {
    ASSIGN_OR_RETURN(std::vector<store::SupportActivityRecord> page, repo.QueryActivity(query));
    const bool more = static_cast<int>(page.size()) == kPageSize;
    if (!page.empty()) query.after_seq = page.back().seq;
    for (store::SupportActivityRecord& row : page) out.push_back(std::move(row));
    if (!more) return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<std::string>> IpsInRanges(store::IncidentRepository& repo,
                                                     const std::vector<IpRange>& ranges,
                                                     const Window& window) {
  std::vector<std::string> ips;
  if (ranges.empty()) return ips;
  ASSIGN_OR_RETURN(std::vector<std::string> seen, repo.ListActivityIps(window.start, window.end));
  for (std::string& ip : seen) {
    if (std::any_of(ranges.begin(), ranges.end(),
                    [&](const IpRange& range) { return range.Contains(ip); })) {
      ips.push_back(std::move(ip));
    }
  }
  return ips;
}

absl::Status CheckList(const Json& json, const char* field, std::vector<std::string>& out) {
  if (!json.contains(field)) return absl::OkStatus();
  const Json& list = json.at(field);
  if (!list.is_array()) {
    return absl::InvalidArgumentError(fmt::format("{} must be an array of strings", field));
  }
  if (list.size() > kMaxIndicatorsPerList) {
    return absl::InvalidArgumentError(
        fmt::format("{} has {} entries; at most {}", field, list.size(), kMaxIndicatorsPerList));
  }
  std::set<std::string> seen;
  for (const Json& item : list) {
    if (!item.is_string() || item.get<std::string>().empty() ||
        item.get<std::string>().size() > 200) {
      return absl::InvalidArgumentError(
          fmt::format("{} entries must be non-empty strings of at most 200 bytes", field));
    }
    if (seen.insert(item.get<std::string>()).second) out.push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

Json WindowJson(const Window& w) {
  return {{"start", FormatRfc3339(w.start)}, {"end", FormatRfc3339(w.end)}};
}

}  // namespace

absl::StatusOr<IpRange> IpRange::Parse(std::string_view text) {
  const size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  IpRange range;
  range.bytes_ = AddressBytes(address);
  if (range.bytes_.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("ip range \"{}\": not an IPv4 or IPv6 address", text));
  }
  const int max_bits = static_cast<int>(range.bytes_.size()) * 8;
  range.prefix_bits_ = max_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    int bits = 0;
    const bool numeric =
        !digits.empty() && digits.size() <= 3 &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) bits = std::stoi(std::string(digits));
    if (!numeric || bits > max_bits || (digits.size() > 1 && digits[0] == '0')) {
      return absl::InvalidArgumentError(
          fmt::format("ip range \"{}\": the prefix length must be 0 to {}", text, max_bits));
    }
    range.prefix_bits_ = bits;
  }
  // An address with bits beyond the prefix is most likely a typo for another network.
  if (range.prefix_bits_ < max_bits) {
    std::string masked = range.bytes_;
    for (int bit = range.prefix_bits_; bit < max_bits; ++bit) {
      masked[bit / 8] =
          static_cast<char>(static_cast<unsigned char>(masked[bit / 8]) & ~(0x80u >> (bit % 8)));
    }
    if (masked != range.bytes_) {
      return absl::InvalidArgumentError(
          fmt::format("ip range \"{}\": the address has bits set beyond the /{} prefix", text,
                      range.prefix_bits_));
    }
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(range.bytes_.size() == 4 ? AF_INET : AF_INET6, range.bytes_.data(), buf, sizeof buf);
  range.text_ = fmt::format("{}/{}", buf, range.prefix_bits_);
  return range;
}

bool IpRange::Contains(std::string_view ip) const {
  const std::string bytes = AddressBytes(ip);
  return bytes.size() == bytes_.size() && SamePrefix(bytes, bytes_, prefix_bits_);
}

bool Indicators::empty() const {
  return operator_ids.empty() && vendor_ids.empty() && device_ids.empty() && session_ids.empty() &&
         ip_ranges.empty();
}

Json Indicators::ToJson() const {
  return {{"operatorIds", operator_ids},
          {"vendorIds", vendor_ids},
          {"deviceIds", device_ids},
          {"sessionIds", session_ids},
          {"ipRanges", ip_ranges}};
}

absl::StatusOr<Indicators> Indicators::FromJson(const Json& json) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError("indicators must be an object");
  }
  static const std::set<std::string> kFields = {"operatorIds", "vendorIds", "deviceIds",
                                                "sessionIds", "ipRanges"};
  for (const auto& [key, value] : json.items()) {
    if (!kFields.contains(key)) {
      return absl::InvalidArgumentError(fmt::format(
          "indicators.{} is not an indicator (operatorIds, vendorIds, deviceIds, sessionIds, "
          "ipRanges)",
          key));
    }
  }
  Indicators out;
  RETURN_IF_ERROR(CheckList(json, "operatorIds", out.operator_ids));
  RETURN_IF_ERROR(CheckList(json, "vendorIds", out.vendor_ids));
  RETURN_IF_ERROR(CheckList(json, "deviceIds", out.device_ids));
  RETURN_IF_ERROR(CheckList(json, "sessionIds", out.session_ids));
  std::vector<std::string> ranges;
  RETURN_IF_ERROR(CheckList(json, "ipRanges", ranges));
  for (const std::string& text : ranges) {
    ASSIGN_OR_RETURN(IpRange range, IpRange::Parse(text));
    out.ip_ranges.push_back(range.text());
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "indicators: name at least one operator, vendor, device, session or IP range");
  }
  return out;
}

std::vector<std::string> ScopeResult::PotentialTenantIds() const {
  std::vector<std::string> ids;
  for (const TenantScope& t : tenants) ids.push_back(t.tenant_id.value());
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::string> ScopeResult::ConfirmedTenantIds() const {
  std::vector<std::string> ids;
  for (const TenantScope& t : tenants) {
    if (t.confirmed) ids.push_back(t.tenant_id.value());
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

Json ScopeResult::ToJson(bool with_timelines) const {
  Json list = Json::array();
  for (const TenantScope& t : tenants) {
    Json tenant = {
        {"id", t.tenant_id.value()}, {"name", t.tenant_name},       {"confirmed", t.confirmed},
        {"views", t.views},          {"attempts", t.attempts},      {"refusals", t.refusals},
        {"successes", t.successes},  {"grantsUsed", t.grants_used}, {"events", t.timeline.size()}};
    if (with_timelines) {
      Json timeline = Json::array();
      for (const TimelineEntry& e : t.timeline) {
        timeline.push_back({{"time", FormatRfc3339(e.time)},
                            {"eventType", e.event_type},
                            {"outcome", e.outcome},
                            {"reason", e.reason},
                            {"operatorId", e.operator_id},
                            {"vendorId", e.vendor_id},
                            {"deviceId", e.device_id},
                            {"sessionId", e.session_id},
                            {"ip", e.ip},
                            {"grantId", e.grant_id},
                            {"caseId", e.case_id},
                            {"resource", e.resource},
                            {"fields", e.fields},
                            {"uuid", e.tenant_event_uuid},
                            {"confirmed", e.confirmed}});
      }
      tenant["timeline"] = std::move(timeline);
    }
    list.push_back(std::move(tenant));
  }
  return {{"window", WindowJson(window)},  {"compromiseWindow", WindowJson(compromise)},
          {"potential", potential},        {"confirmed", confirmed},
          {"rowsExamined", rows_examined}, {"elapsedMs", absl::ToDoubleMilliseconds(elapsed)},
          {"tenants", std::move(list)}};
}

absl::StatusOr<ScopeResult> ScopeIncident(store::Store& store, const Indicators& indicators,
                                          const Window& window, const Window& compromise) {
  const auto started = std::chrono::steady_clock::now();
  if (window.start >= window.end) {
    return absl::InvalidArgumentError("window: start must be before end");
  }
  if (compromise.start >= compromise.end) {
    return absl::InvalidArgumentError("compromiseWindow: start must be before end");
  }
  if (indicators.empty()) {
    return absl::InvalidArgumentError(
        "indicators: name at least one operator, vendor, device, session or IP range");
  }
  std::vector<IpRange> ranges;
  for (const std::string& text : indicators.ip_ranges) {
    ASSIGN_OR_RETURN(IpRange range, IpRange::Parse(text));
    ranges.push_back(std::move(range));
  }

  ScopeResult result{.window = window, .compromise = compromise};
  std::vector<store::SupportActivityRecord> potential_rows;
  std::vector<store::SupportActivityRecord> confirmed_rows;
  std::map<std::string, std::string> names;  // tenant id -> name
  RETURN_IF_ERROR(store.Read([&](store::Transaction& tx) -> absl::Status {
    store::IncidentRepository& repo = tx.Incidents();
    store::ActivityQuery potential{.from = window.start,
                                   .to = window.end,
                                   .operator_ids = indicators.operator_ids,
                                   .vendor_ids = indicators.vendor_ids,
                                   .device_ids = indicators.device_ids,
                                   .session_ids = indicators.session_ids};
    ASSIGN_OR_RETURN(potential.ips, IpsInRanges(repo, ranges, window));
    const bool any_potential = !potential.operator_ids.empty() || !potential.vendor_ids.empty() ||
                               !potential.device_ids.empty() || !potential.session_ids.empty() ||
                               !potential.ips.empty();
    if (any_potential) RETURN_IF_ERROR(ReadAll(repo, potential, potential_rows));

    store::ActivityQuery confirmed{.from = compromise.start,
                                   .to = compromise.end,
                                   .device_ids = indicators.device_ids,
                                   .session_ids = indicators.session_ids};
    ASSIGN_OR_RETURN(confirmed.ips, IpsInRanges(repo, ranges, compromise));
    const bool any_confirmed =
        !confirmed.device_ids.empty() || !confirmed.session_ids.empty() || !confirmed.ips.empty();
    if (any_confirmed) RETURN_IF_ERROR(ReadAll(repo, confirmed, confirmed_rows));

    std::set<std::string> tenant_ids;
    for (const auto* rows : {&potential_rows, &confirmed_rows}) {
      for (const store::SupportActivityRecord& row : *rows) {
        if (IsReach(row)) tenant_ids.insert(row.tenant_id.value());
      }
    }
    for (const std::string& id : tenant_ids) {
      absl::StatusOr<store::TenantRecord> tenant = tx.Tenants().Get(TenantId(id));
      if (tenant.ok()) {
        names[id] = tenant->name;
      } else if (absl::IsNotFound(tenant.status())) {
        names[id] = "";  // a tenant deleted since: its rows still count
      } else {
        return tenant.status();
      }
    }
    return absl::OkStatus();
  }));
  result.rows_examined = static_cast<int64_t>(potential_rows.size() + confirmed_rows.size());

  // Merge both reads by row (a row may be in both), confirmed rows marked.
  std::map<int64_t, std::pair<const store::SupportActivityRecord*, bool>> rows;
  for (const store::SupportActivityRecord& row : potential_rows) {
    if (IsReach(row)) rows.emplace(row.seq, std::make_pair(&row, false));
  }
  for (const store::SupportActivityRecord& row : confirmed_rows) {
    if (IsReach(row)) rows[row.seq] = std::make_pair(&row, true);
  }
  std::map<std::string, TenantScope> by_tenant;
  std::map<std::string, std::set<std::string>> grants;
  for (const auto& [seq, entry] : rows) {
    const auto& [row, is_confirmed] = entry;
    TenantScope& scope = by_tenant[row->tenant_id.value()];
    scope.tenant_id = row->tenant_id;
    TimelineEntry e = EntryOf(*row);
    e.confirmed = is_confirmed;
    scope.confirmed = scope.confirmed || is_confirmed;
    if (row->event_type == "support.view" && row->outcome == "SUCCESS") ++scope.views;
    // A guarded action tried: allowed or refused by the action's own checks (support.action.*),
    // or refused already at the tenant check (support.gate.deny naming the action).
    if (row->event_type.starts_with("support.action.") ||
        (row->event_type == "support.gate.deny" && IsGuardedAction(row->resource))) {
      ++scope.attempts;
    }
    if (row->outcome == "DENY" || row->outcome == "FAILURE") ++scope.refusals;
    if (row->outcome == "SUCCESS") ++scope.successes;
    if (!row->grant_id.empty() && row->outcome == "SUCCESS") {
      grants[row->tenant_id.value()].insert(row->grant_id);
    }
    scope.timeline.push_back(std::move(e));
  }
  for (auto& [id, scope] : by_tenant) {
    scope.tenant_name = names[id];
    scope.grants_used.assign(grants[id].begin(), grants[id].end());
    std::stable_sort(
        scope.timeline.begin(), scope.timeline.end(),
        [](const TimelineEntry& a, const TimelineEntry& b) { return a.time < b.time; });
    result.tenants.push_back(std::move(scope));
  }
  std::sort(result.tenants.begin(), result.tenants.end(),
            [](const TenantScope& a, const TenantScope& b) {
              return std::tie(a.tenant_name, a.tenant_id) < std::tie(b.tenant_name, b.tenant_id);
            });
  result.potential = static_cast<int>(result.tenants.size());
  result.confirmed =
      static_cast<int>(std::count_if(result.tenants.begin(), result.tenants.end(),
                                     [](const TenantScope& t) { return t.confirmed; }));
  result.elapsed = absl::FromChrono(std::chrono::steady_clock::now() - started);
  return result;
}

}  // namespace custos::incident
