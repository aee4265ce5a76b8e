#include "audit/log_query.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "audit/event.h"
#include "common/time_format.h"
#include "crypto/random.h"

namespace custos::audit {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// An in-memory store that keeps only events; enough for LogQuery, which reads nothing else.
class FakeEvents final : public store::EventRepository {
 public:
  FakeEvents(std::vector<store::EventRecord>& rows, int64_t& last_seq, int64_t& rows_read)
      : rows_(rows), last_seq_(last_seq), rows_read_(rows_read) {}

  absl::StatusOr<int64_t> Append(const store::EventRecord& event) override {
    store::EventRecord row = event;
    row.seq = ++last_seq_;
    rows_.push_back(std::move(row));
    return last_seq_;
  }

  absl::StatusOr<std::vector<store::EventRecord>> Query(const TenantId& tenant,
                                                        const store::EventQuery& q) override {
    std::vector<store::EventRecord> out;
    for (const store::EventRecord& row : rows_) {
      if (row.tenant_id != tenant) continue;
      if (q.since && row.published < *q.since) continue;
      if (q.until && row.published >= *q.until) continue;
      if (q.after_seq && (q.descending ? row.seq >= *q.after_seq : row.seq <= *q.after_seq)) {
        continue;
      }
      out.push_back(row);
    }
    std::sort(out.begin(), out.end(), [&q](const auto& a, const auto& b) {
      return q.descending ? a.seq > b.seq : a.seq < b.seq;
    });
    if (static_cast<int>(out.size()) > q.limit) out.resize(q.limit);
    rows_read_ += static_cast<int64_t>(out.size());
    return out;
  }

 private:
  std::vector<store::EventRecord>& rows_;
  int64_t& last_seq_;
  int64_t& rows_read_;
};

class FakeTransaction final : public store::Transaction {
 public:
  explicit FakeTransaction(FakeEvents& events) : events_(events) {}
  store::TenantRepository& Tenants() override { std::abort(); }
  store::ApiTokenRepository& ApiTokens() override { std::abort(); }
  store::UserRepository& Users() override { std::abort(); }
  store::GroupRepository& Groups() override { std::abort(); }
  store::FactorRepository& Factors() override { std::abort(); }
  store::SessionRepository& Sessions() override { std::abort(); }
  store::AuthnTransactionRepository& AuthnTransactions() override { std::abort(); }
  store::EventRepository& Events() override { return events_; }
  store::ProviderTokenRepository& ProviderTokens() override { std::abort(); }
  store::LogRepository& Logs() override { std::abort(); }
  store::SupportRepository& Support() override { std::abort(); }
  store::OidcRepository& Oidc() override { std::abort(); }
  store::IncidentRepository& Incidents() override { std::abort(); }
  store::SharedStateRepository& SharedState() override { std::abort(); }

 private:
  FakeEvents& events_;
};

class FakeStore final : public store::Store {
 public:
  absl::Status Write(absl::FunctionRef<absl::Status(store::Transaction&)> fn) override {
    absl::MutexLock lock(&mu_);
    std::vector<store::EventRecord> saved_rows = rows_;
    int64_t saved_seq = last_seq_;
    FakeEvents events(rows_, last_seq_, rows_read_);
    FakeTransaction txn(events);
    absl::Status status = fn(txn);
    if (!status.ok()) {
      rows_ = std::move(saved_rows);
      last_seq_ = saved_seq;
    }
    return status;
  }
  absl::Status Read(absl::FunctionRef<absl::Status(store::Transaction&)> fn) override {
    absl::MutexLock lock(&mu_);
    FakeEvents events(rows_, last_seq_, rows_read_);
    FakeTransaction txn(events);
    return fn(txn);
  }
  absl::Status Ping() override { return absl::OkStatus(); }
  void Close() override {}
  void SetObserver(store::StoreObserver*) override {}

  // Rows returned by Query calls so far.
  int64_t rows_read() {
    absl::MutexLock lock(&mu_);
    return rows_read_;
  }

 private:
  absl::Mutex mu_;
  std::vector<store::EventRecord> rows_ ABSL_GUARDED_BY(mu_);
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rows_read_ ABSL_GUARDED_BY(mu_) = 0;
};

const TenantId kAcme("00oacme000000000000");
const TenantId kOther("00oother00000000000");

class LogQueryTest : public ::testing::Test {
 protected:
  // Appends an event published now (by the fake clock) and returns its uuid.
  std::string Append(const TenantId& tenant, std::string event_type,
                     std::string target_id = "00ujane") {
    EventSpec spec;
    spec.event_type = std::move(event_type);
    spec.display_message = "test event";
    spec.targets.push_back(
        {.id = std::move(target_id), .type = "User", .alternate_id = "", .display_name = ""});
    RequestContext context;
    context.actor = SystemPrincipal();
    store::EventRecord record = MakeEvent(tenant, context, spec, clock_, random_);
    absl::Status status = store_.Write([&](store::Transaction& txn) -> absl::Status {
      return txn.Events().Append(record).status();
    });
    EXPECT_TRUE(status.ok()) << status;
    stored_json_.push_back(record.json);
    return record.uuid;
  }

  LogPage Run(const LogQueryParams& params, LogQueryOptions options = {}) {
    if (options.log_origin.empty()) options.log_origin = "id.example.com/t/acme";
    LogQuery query(store_, clock_, options);
    absl::StatusOr<LogPage> page = query.Run(kAcme, params);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *std::move(page) : LogPage();
  }

  std::string ErrorOf(const LogQueryParams& params) {
    LogQuery query(store_, clock_);
    absl::StatusOr<LogPage> page = query.Run(kAcme, params);
    if (page.ok()) return "ok";
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(page.status().message());
  }

  static std::vector<std::string> Uuids(const LogPage& page) {
    std::vector<std::string> out;
    for (const OrderedJson& event : page.events) out.push_back(event["uuid"].get<std::string>());
    return out;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{42};
  std::vector<std::string> stored_json_;  // every appended event's stored text, in order
  FakeStore store_;
};

TEST_F(LogQueryTest, RejectsBadParametersWithClearMessages) {
  EXPECT_EQ(ErrorOf({.since = "yesterday"}), "since must be an RFC 3339 date-time");
  EXPECT_EQ(ErrorOf({.until = "2026-13-01T00:00:00Z"}), "until must be an RFC 3339 date-time");
  EXPECT_EQ(ErrorOf({.since = "2026-01-02T00:00:00Z", .until = "2026-01-01T00:00:00Z"}),
            "since must be before until");
  EXPECT_EQ(ErrorOf({.since = "2026-01-01T00:00:00Z", .until = "2026-01-01T00:00:00Z"}),
            "since must be before until");
  // The default since is 7 days before until; an explicit since after now is not an error.
  EXPECT_EQ(ErrorOf({.until = "2026-01-01T00:00:00Z"}), "ok");
  EXPECT_EQ(ErrorOf({.since = "2030-01-01T00:00:00Z"}), "ok");
  for (const char* limit : {"0", "1001", "-5", "abc", "10x", "99999999999999999999"}) {
    EXPECT_EQ(ErrorOf({.limit = limit}), "limit must be between 1 and 1000") << limit;
  }
  EXPECT_EQ(ErrorOf({.limit = "1"}), "ok");
  EXPECT_EQ(ErrorOf({.limit = "1000"}), "ok");
  EXPECT_EQ(ErrorOf({.sort_order = "UP"}), "sortOrder must be ASCENDING or DESCENDING");
  EXPECT_EQ(ErrorOf({.sort_order = "descending"}), "ok");
  for (const char* after : {"-1", "abc", "1.5", "1234567890123456789"}) {
    EXPECT_EQ(ErrorOf({.after = after}), "after is not a valid cursor") << after;
  }
  EXPECT_EQ(ErrorOf({.filter = "eventType eq"}),
            "filter: expected a value (a \"string\", a number, true, false or null) after 'eq' "
            "at position 12, found the end of the filter");
  EXPECT_EQ(ErrorOf({.q = "a b c d e f g h i j k"}), "q must have at most 10 keywords");
}

TEST_F(LogQueryTest, DefaultsToTheLastSevenDaysOldestFirstAndOneHundredEvents) {
  Append(kAcme, "user.lifecycle.create");  // 8 days before the query: outside the window
  clock_.Advance(absl::Hours(24 * 2));
  std::vector<std::string> expected;
  for (int i = 0; i < 120; ++i) {
    expected.push_back(Append(kAcme, "user.account.update_profile"));
    Append(kOther, "user.account.update_profile");
    clock_.Advance(absl::Minutes(1));
  }
  clock_.Advance(absl::Hours(24 * 6));

  LogPage first = Run({});
  ASSERT_EQ(first.events.size(), 100u);
  EXPECT_THAT(Uuids(first),
              ElementsAreArray(std::vector<std::string>(expected.begin(), expected.begin() + 100)));
  ASSERT_FALSE(first.next_after.empty());

  LogPage second = Run({.after = first.next_after});
  EXPECT_THAT(Uuids(second),
              ElementsAreArray(std::vector<std::string>(expected.begin() + 100, expected.end())));
  EXPECT_FALSE(second.next_after.empty()) << "a polling request always has a next page";
}

TEST_F(LogQueryTest, PollingReturnsEveryEventExactlyOnceWhileEventsKeepArriving) {
  std::vector<std::string> appended;
  std::vector<std::string> received;
  std::string cursor;
  for (int round = 0; round < 40; ++round) {
    int new_events = (round * 7) % 6;  // 0..5, including rounds with nothing new
    for (int i = 0; i < new_events; ++i) {
      appended.push_back(Append(kAcme, "user.session.start"));
      Append(kOther, "user.session.start");
      clock_.Advance(absl::Milliseconds(300));
    }
    LogPage page = Run({.after = cursor, .limit = "3"});
    for (const std::string& uuid : Uuids(page)) received.push_back(uuid);
    ASSERT_FALSE(page.next_after.empty()) << "round " << round;
    if (page.events.empty() && !cursor.empty()) {
      EXPECT_EQ(page.next_after, cursor);
    }
    cursor = page.next_after;
    clock_.Advance(absl::Seconds(5));
  }
  // Drain what the limit left behind.
  for (int i = 0; i < 100; ++i) {
    LogPage page = Run({.after = cursor, .limit = "3"});
    if (page.events.empty()) break;
    for (const std::string& uuid : Uuids(page)) received.push_back(uuid);
    cursor = page.next_after;
  }
  EXPECT_GT(appended.size(), 60u);
  EXPECT_THAT(received, ElementsAreArray(appended));
}

TEST_F(LogQueryTest, FirstPollWithNothingInTheWindowStillGivesACursorThatSkipsOldEvents) {
  Append(kAcme, "user.lifecycle.create");
  Append(kAcme, "user.lifecycle.activate");
  clock_.Advance(absl::Hours(1));
  LogPage first = Run({.since = FormatRfc3339(clock_.Now())});
  EXPECT_THAT(first.events, IsEmpty());
  ASSERT_FALSE(first.next_after.empty());

  std::string fresh = Append(kAcme, "user.session.start");
  LogPage second = Run({.after = first.next_after});
  EXPECT_THAT(Uuids(second), ElementsAreArray({fresh}));
}

TEST_F(LogQueryTest, FirstPollOfAnEmptyLogGetsACursorFromTheStart) {
  LogPage first = Run({});
  EXPECT_THAT(first.events, IsEmpty());
  ASSERT_FALSE(first.next_after.empty());
  std::string fresh = Append(kAcme, "user.session.start");
  EXPECT_THAT(Uuids(Run({.after = first.next_after})), ElementsAreArray({fresh}));
}

TEST_F(LogQueryTest, PollerThatPausesLongerThanTheDefaultWindowLosesNothing) {
  Append(kAcme, "user.session.start");
  LogPage first = Run({});
  ASSERT_EQ(first.events.size(), 1u);
  std::string missed = Append(kAcme, "user.session.end");
  clock_.Advance(absl::Hours(24 * 10));
  EXPECT_THAT(Uuids(Run({.after = first.next_after})), ElementsAreArray({missed}));
}

TEST_F(LogQueryTest, DescendingPagesNewestFirstAndEndsWithoutNextLink) {
  absl::Time start = clock_.Now();
  std::vector<std::string> all;
  for (int i = 0; i < 10; ++i) {
    all.push_back(Append(kAcme, "group.user_membership.add"));
    clock_.Advance(absl::Minutes(1));
  }
  std::vector<std::string> newest_first(all.rbegin(), all.rend());

  LogQueryParams params{.since = FormatRfc3339(start),
                        .until = FormatRfc3339(clock_.Now()),
                        .limit = "4",
                        .sort_order = "DESCENDING"};
  std::vector<std::string> received;
  int pages = 0;
  while (true) {
    LogPage page = Run(params);
    ++pages;
    for (const std::string& uuid : Uuids(page)) received.push_back(uuid);
    if (page.next_after.empty()) break;
    params.after = page.next_after;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(received, ElementsAreArray(newest_first));

  // Without until, DESCENDING is not a polling request either: the last page has no next link.
  LogPage newest = Run({.limit = "20", .sort_order = "DESCENDING"});
  EXPECT_THAT(Uuids(newest), ElementsAreArray(newest_first));
  EXPECT_TRUE(newest.next_after.empty());
}

TEST_F(LogQueryTest, DescendingPagesWithoutSinceKeepTheWindowOfTheFirstPage) {
  std::vector<std::string> all;
  for (int i = 0; i < 6; ++i) {
    all.push_back(Append(kAcme, "group.user_membership.add"));
    clock_.Advance(absl::Hours(1));
  }
  // The first page's default window reaches back 7 days from now; the oldest event is 6 h in.
  clock_.Advance(absl::Hours(24 * 7) - absl::Hours(7));
  LogQueryParams params{.limit = "3", .sort_order = "DESCENDING"};
  LogPage first = Run(params);
  ASSERT_EQ(first.events.size(), 3u);
  ASSERT_FALSE(first.default_since.empty());
  // Hours later the client asks for the next page with the since the next link carried: the
  // window has not slid past the oldest events.
  clock_.Advance(absl::Hours(3));
  params.after = first.next_after;
  params.since = first.default_since;
  LogPage second = Run(params);
  EXPECT_EQ(second.events.size(), 3u);
  EXPECT_EQ(Uuids(second).back(), all.front());
}

TEST_F(LogQueryTest, UntilIsExclusiveAndBoundsTheWindow) {
  absl::Time start = clock_.Now();
  std::string a = Append(kAcme, "user.session.start");
  clock_.Advance(absl::Seconds(1));
  std::string b = Append(kAcme, "user.session.start");
  absl::Time b_time = clock_.Now();
  clock_.Advance(absl::Seconds(1));
  Append(kAcme, "user.session.start");
  LogPage page = Run({.since = FormatRfc3339(start), .until = FormatRfc3339(b_time)});
  EXPECT_THAT(Uuids(page), ElementsAreArray({a}));
  EXPECT_TRUE(page.next_after.empty());
  page = Run({.since = FormatRfc3339(b_time), .until = FormatRfc3339(clock_.Now())});
  EXPECT_THAT(Uuids(page), ElementsAreArray({b}));
}

TEST_F(LogQueryTest, FilterAndLimitPageAcrossManyNonMatchingEventsWithinTheScanBudget) {
  absl::Time start = clock_.Now();
  std::vector<std::string> matching;
  for (int i = 0; i < 1000; ++i) {
    if (i % 211 == 5) {
      matching.push_back(Append(kAcme, "user.session.start", "00utarget"));
    } else {
      Append(kAcme, i % 2 ? "user.session.start" : "user.account.lock", "00uother");
    }
    clock_.Advance(absl::Seconds(1));
  }
  ASSERT_EQ(matching.size(), 5u);

  LogQueryOptions options{.scan_budget = 150, .page_size = 64};
  LogQueryParams params{
      .since = FormatRfc3339(start),
      .until = FormatRfc3339(clock_.Now()),
      .limit = "3",
      .filter = R"(eventType eq "user.session.start" and target.id eq "00utarget")"};
  std::vector<std::string> received;
  int requests = 0;
  int empty_pages_with_next = 0;
  while (true) {
    int64_t read_before = store_.rows_read();
    LogPage page = Run(params, options);
    ++requests;
    EXPECT_LE(store_.rows_read() - read_before, 150) << "scan budget exceeded";
    EXPECT_LE(page.events.size(), 3u);
    for (const std::string& uuid : Uuids(page)) received.push_back(uuid);
    if (page.events.empty() && !page.next_after.empty()) ++empty_pages_with_next;
    if (page.next_after.empty()) break;
    params.after = page.next_after;
    ASSERT_LT(requests, 100);
  }
  EXPECT_THAT(received, ElementsAreArray(matching));
  EXPECT_GT(empty_pages_with_next, 0) << "budget-limited pages continue with a next link";
  EXPECT_GE(requests, 1000 / 150);
}

TEST_F(LogQueryTest, KeywordsAndFilterCombine) {
  std::string jane_lock = Append(kAcme, "user.account.lock", "00ujane");
  Append(kAcme, "user.account.lock", "00ubob");
  Append(kAcme, "user.account.unlock", "00ujane");
  Append(kOther, "user.account.lock", "00ujane");
  LogPage page = Run({.filter = R"(eventType ew ".lock")", .q = "JANE"});
  EXPECT_THAT(Uuids(page), ElementsAreArray({jane_lock}));
}

TEST_F(LogQueryTest, EventsAreTheStoredEntryWithTheirLogPositionAppended) {
  Append(kAcme, "user.session.start");
  LogPage page = Run({});
  ASSERT_EQ(page.events.size(), 1u);
  OrderedJson event = page.events[0];
  // The last member says where the event is in the log (not yet sequenced here: null index).
  EXPECT_EQ(std::prev(event.end()).key(), "custos");
  EXPECT_EQ(event["custos"]["log"]["index"], nullptr);
  EXPECT_EQ(event["custos"]["log"]["origin"], "id.example.com/t/acme");
  // Without it, the event is the stored text byte for byte: the entry the log hashed.
  event.erase("custos");
  EXPECT_EQ(DumpJson(event), stored_json_.back());
}

TEST_F(LogQueryTest, CorruptStoredEventIsAnInternalError) {
  store::EventRecord bad;
  bad.tenant_id = kAcme;
  bad.published = clock_.Now();
  bad.json = "{not json";
  ASSERT_TRUE(store_
                  .Write([&](store::Transaction& txn) -> absl::Status {
                    return txn.Events().Append(bad).status();
                  })
                  .ok());
  LogQuery query(store_, clock_);
  EXPECT_EQ(query.Run(kAcme, {}).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace custos::audit
