#pragma once

// Answers GET /api/v1/logs over the store: a tenant's System Log events selected by time
// (since, until), by a filter expression (filter.h) and by keywords (keyword_search.h), a page
// at a time (limit, after), oldest or newest first (sortOrder). docs/system-log.md describes
// the parameters for API clients.
//
// Paging. Events are ordered by their store sequence number `seq` (append order). The cursor
// is the decimal `seq` of the last event the query EXAMINED, matching or not; the next page
// continues strictly after it, so nothing is skipped or repeated. Because filter and q are
// evaluated here, in memory, one request examines at most `scan_budget` events; a page may
// therefore hold fewer than `limit` events (even none) and still have a next page.
//
// Two kinds of request, as in the reference API:
// - Polling (no `until`, ASCENDING): there is always a next cursor, also when nothing new has
//   arrived (then it is the incoming cursor, or the newest seq when there was none). A poller
//   that keeps following it receives every event appended after its first request exactly once,
//   in append order. With `after` and no `since`, the 7-day default does not apply, so a poller
//   that pauses for longer loses nothing.
// - Bounded (`until` given, or DESCENDING): a next cursor only while more events may match.
//
// Thread-safe: Run may be called from any number of threads.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/json.h"
#include "store/store.h"

namespace custos::audit {

inline constexpr int kDefaultLogLimit = 100;
inline constexpr int kMaxLogLimit = 1000;

// The query parameters as received, undecoded; an empty string means the parameter is absent.
struct LogQueryParams {
  std::string since;       // RFC 3339; default: 7 days before `until` (or now)
  std::string until;       // RFC 3339, exclusive; absent: a polling request
  std::string after;       // cursor from a previous page's next link
  std::string limit;       // 1..1000, default 100
  std::string sort_order;  // ASCENDING (default) or DESCENDING, any case
  std::string filter;      // filter expression
  std::string q;           // keywords
};

struct LogPage {
  // The stored events, field order as stored, plus the "custos" member. Serialise with
  // DumpJson(OrderedJson).
  std::vector<OrderedJson> events;
  // The `after` value for the rel="next" link (the request's other parameters stay as they
  // were); empty when there is no next page.
  std::string next_after;
  // When the request gave no `since` and the 7-day default applied to a bounded query: that
  // default as RFC 3339, for the next link to carry, so that later pages keep the window of
  // the first instead of sliding with the clock. Empty otherwise.
  std::string default_since;
};

struct LogQueryOptions {
  int scan_budget = 10000;  // events examined per request at most
  int page_size = 500;      // events read per store round trip when filter or q is given
  // The origin of the tenant's verifiable log. Every returned event gets a last member
  // "custos": {"log": {"origin": ..., "index": <its index, or null until sequenced>}}.
  std::string log_origin;
};

class LogQuery {
 public:
  // `store` and `clock` must outlive the LogQuery.
  LogQuery(store::Store& store, const Clock& clock, LogQueryOptions options = {});

  // Errors: absl::InvalidArgumentError naming the parameter ("since must be an RFC 3339
  // date-time", "limit must be between 1 and 1000", "filter: ..."); store errors as they come.
  absl::StatusOr<LogPage> Run(const TenantId& tenant, const LogQueryParams& params) const;

 private:
  store::Store& store_;
  const Clock& clock_;
  LogQueryOptions options_;
};

}  // namespace custos::audit
