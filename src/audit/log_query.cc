#include "audit/log_query.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "audit/filter.h"
#include "audit/keyword_search.h"
#include "common/status_macros.h"
#include "common/time_format.h"

namespace custos::audit {
namespace {

constexpr absl::Duration kDefaultWindow = absl::Hours(24 * 7);
constexpr size_t kMaxCursorDigits = 18;  // below 2^63

// The parameters once checked.
struct Request {
  std::optional<absl::Time> since;
  std::optional<absl::Time> until;
  std::optional<int64_t> after;
  int limit = kDefaultLogLimit;
  bool descending = false;
  Filter filter;
  KeywordSearch keywords;
  bool filtering = false;
  bool polling = false;
};

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; };
           return lower(x) == lower(y);
         });
}

absl::StatusOr<Request> Check(const LogQueryParams& params, absl::Time now) {
  Request r;
  if (!params.since.empty()) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(params.since);
    if (!t.ok()) return absl::InvalidArgumentError("since must be an RFC 3339 date-time");
    r.since = *t;
  }
  if (!params.until.empty()) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(params.until);
    if (!t.ok()) return absl::InvalidArgumentError("until must be an RFC 3339 date-time");
    r.until = *t;
  }
  if (!params.after.empty()) {
    // Digits only: from_chars alone would accept a leading '-'.
    bool digits = params.after.size() <= kMaxCursorDigits &&
                  std::all_of(params.after.begin(), params.after.end(),
                              [](char c) { return c >= '0' && c <= '9'; });
    std::optional<int64_t> seq = digits ? ParseInt(params.after) : std::nullopt;
    if (!seq) return absl::InvalidArgumentError("after is not a valid cursor");
    r.after = *seq;
  }
  if (!params.limit.empty()) {
    std::optional<int64_t> limit = ParseInt(params.limit);
    if (!limit || *limit < 1 || *limit > kMaxLogLimit) {
      return absl::InvalidArgumentError(
          fmt::format("limit must be between 1 and {}", kMaxLogLimit));
    }
    r.limit = static_cast<int>(*limit);
  }
  if (!params.sort_order.empty()) {
    if (EqualsIgnoreCase(params.sort_order, "DESCENDING")) {
      r.descending = true;
    } else if (!EqualsIgnoreCase(params.sort_order, "ASCENDING")) {
      return absl::InvalidArgumentError("sortOrder must be ASCENDING or DESCENDING");
    }
  }
  if (!params.filter.empty()) {
    ASSIGN_OR_RETURN(r.filter, ParseFilter(params.filter));
  }
  ASSIGN_OR_RETURN(r.keywords, ParseKeywords(params.q));
  r.filtering = !params.filter.empty() || !r.keywords.keywords().empty();
  r.polling = !r.until && !r.descending;
  // A poller that follows its cursor must not lose events because it paused for longer than
  // the default window.
  if (!r.since && !(r.polling && r.after)) r.since = r.until.value_or(now) - kDefaultWindow;
  if (r.since && r.until && *r.since >= *r.until) {
    return absl::InvalidArgumentError("since must be before until");
  }
  return r;
}

}  // namespace

LogQuery::LogQuery(store::Store& store, const Clock& clock, LogQueryOptions options)
    : store_(store), clock_(clock), options_(options) {}

absl::StatusOr<LogPage> LogQuery::Run(const TenantId& tenant, const LogQueryParams& params) const {
  ASSIGN_OR_RETURN(Request r, Check(params, clock_.Now()));

  LogPage page;
  std::optional<int64_t> last_examined;
  std::optional<int64_t> newest;  // polling only: the newest seq when nothing was examined
  bool more = false;              // events past last_examined may match
  const int budget = std::max(1, options_.scan_budget);
  const int chunk = r.filtering ? std::max(1, options_.page_size) : r.limit;

  RETURN_IF_ERROR(store_.Read([&](store::Transaction& txn) -> absl::Status {
    std::optional<int64_t> cursor = r.after;
    int examined = 0;
    while (true) {
      store::EventQuery query;
      query.since = r.since;
      query.until = r.until;
      query.after_seq = cursor;
      query.descending = r.descending;
      query.limit = std::min(chunk, budget - examined);
      ASSIGN_OR_RETURN(std::vector<store::EventRecord> records, txn.Events().Query(tenant, query));
      const bool last_chunk = static_cast<int>(records.size()) < query.limit;
      for (size_t i = 0; i < records.size(); ++i) {
        const store::EventRecord& record = records[i];
        ++examined;
        last_examined = record.seq;
        OrderedJson event = OrderedJson::parse(record.json, nullptr, /*allow_exceptions=*/false);
        if (event.is_discarded()) {
          return absl::InternalError(fmt::format("stored event {} is not valid JSON", record.seq));
        }
        if (!r.filter.Matches(event) || !r.keywords.Matches(event)) continue;
        // Where the event sits in the tenant's verifiable log, so that an event found in a SIEM
        // can be proven; appended last, outside the entry the log hashed.
        OrderedJson log = OrderedJson::object();
        log["origin"] = options_.log_origin;
        log["index"] = record.log_index ? OrderedJson(*record.log_index) : OrderedJson(nullptr);
        OrderedJson custos = OrderedJson::object();
        custos["log"] = std::move(log);
        event["custos"] = std::move(custos);
        page.events.push_back(std::move(event));
        if (static_cast<int>(page.events.size()) == r.limit) {
          more = !(last_chunk && i + 1 == records.size());
          return absl::OkStatus();
        }
      }
      if (last_chunk) break;
      cursor = last_examined;
      if (examined >= budget) {
        more = true;
        return absl::OkStatus();
      }
    }
    if (r.polling && !last_examined && !r.after) {
      // Nothing at or after `since` yet. Every event appended later gets a larger seq than the
      // newest one now, so the poller continues from there; same snapshot as the scan above.
      store::EventQuery query;
      query.descending = true;
      query.limit = 1;
      ASSIGN_OR_RETURN(std::vector<store::EventRecord> records, txn.Events().Query(tenant, query));
      newest = records.empty() ? 0 : records.front().seq;
    }
    return absl::OkStatus();
  }));

  std::optional<int64_t> next;
  if (r.polling) {
    next = last_examined ? last_examined : (r.after ? r.after : newest);
  } else if (more) {
    next = last_examined;
  }
  if (next) page.next_after = std::to_string(*next);
  if (next && !r.polling && params.since.empty() && r.since) {
    page.default_since = FormatRfc3339(*r.since);
  }
  return page;
}

}  // namespace custos::audit
