#include "incident/status_feed.h"

#include <memory>
#include <string>
#include <vector>

#include "common/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class StatusFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    feed_ = std::make_unique<StatusFeed>(temp_->store(), clock_, random_);
    ctx_.actor = {"00Tprovideradmin", "ApiToken", "secops", "secops"};
  }

  std::vector<std::string> ProviderEventTypes() {
    const std::vector<store::EventRecord> events =
        store::ReadResult(temp_->store(), [](store::Transaction& tx) {
          return tx.Events().Query(TenantId(std::string(store::kProviderLogId)),
                                   store::EventQuery{.limit = 100});
        }).value();
    std::vector<std::string> types;
    for (const auto& e : events) types.push_back(e.event_type);
    return types;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{9};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<StatusFeed> feed_;
  audit::RequestContext ctx_;
};

TEST_F(StatusFeedTest, PublishUpdateAndListNewestFirst) {
  auto first = feed_->Publish(ctx_, {"availability", "Sign-in slow in eu-1", "Investigating."});
  ASSERT_TRUE(first.ok()) << first.status();
  clock_.Advance(absl::Hours(1));
  auto second = feed_->Publish(ctx_, {"security", "Support workstation compromised", "Details."});
  ASSERT_TRUE(second.ok());
  clock_.Advance(absl::Hours(1));
  auto updated = feed_->Update(ctx_, first->id, {"availability", "Sign-in slow", "Resolved."});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->published, first->published);
  EXPECT_EQ(updated->updated, clock_.Now());
  EXPECT_EQ(updated->body, "Resolved.");

  auto listed = feed_->List(10);
  ASSERT_TRUE(listed.ok());
  ASSERT_THAT(*listed, SizeIs(2));
  EXPECT_EQ((*listed)[0].id, second->id);  // by published, newest first
  Json json = FeedJson(*listed);
  EXPECT_EQ(json["notices"][1]["title"], "Sign-in slow");
  EXPECT_EQ(json["notices"][1]["published"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(json["notices"][1]["updated"], "2026-01-01T02:00:00.000Z");
  EXPECT_EQ(json["notices"][1].size(), 6u);

  EXPECT_EQ(ProviderEventTypes(),
            (std::vector<std::string>{"status.notice.publish", "status.notice.publish",
                                      "status.notice.update"}));
  EXPECT_EQ(feed_->Update(ctx_, "stnmissing", {"security", "t", "b"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(StatusFeedTest, InvalidNoticesAreRefused) {
  for (const NoticeDraft& d : std::vector<NoticeDraft>{
           {"outage", "t", "b"},
           {"security", "", "b"},
           {"security", std::string(201, 't'), "b"},
           {"security", "two\nlines", "b"},
           {"security", "t", ""},
           {"security", "t", std::string(10001, 'b')},
           {"security", "t", std::string("bell\x07", 5)},
       }) {
    auto published = feed_->Publish(ctx_, d);
    EXPECT_EQ(published.status().code(), absl::StatusCode::kInvalidArgument) << d.title;
    EXPECT_EQ(ErrorCodeOf(published.status()), kErrValidation);
  }
  EXPECT_TRUE(feed_->Publish(ctx_, {"security", "t", "line one\n\tline two"}).ok());
}

TEST_F(StatusFeedTest, AtomIsEscapedAndUpdatedIsTheNewest) {
  auto a = feed_->Publish(ctx_, {"security", "Tom & Jerry <script>", "x < y & \"q\" 'a'"});
  clock_.Advance(absl::Minutes(30));
  auto b = feed_->Publish(ctx_, {"availability", "Later", "Body"});
  clock_.Advance(absl::Minutes(30));
  ASSERT_TRUE(feed_->Update(ctx_, a->id, {"security", "Tom & Jerry <script>", "fixed"}).ok());
  std::vector<store::StatusNoticeRecord> notices = *feed_->List(10);

  const std::string atom = FeedAtom(notices, "http://127.0.0.1:8080", clock_.Now());
  EXPECT_THAT(atom, HasSubstr("<feed xmlns=\"http://www.w3.org/2005/Atom\">"));
  // The feed's updated is the newest notice's (the update an hour in), not the newest published.
  EXPECT_THAT(atom, HasSubstr("\n  <updated>2026-01-01T01:00:00Z</updated>\n"));
  EXPECT_THAT(atom, HasSubstr("<title type=\"text\">Tom &amp; Jerry &lt;script&gt;</title>"));
  EXPECT_THAT(atom, Not(HasSubstr("<script>")));
  EXPECT_THAT(atom, HasSubstr("<id>http://127.0.0.1:8080/status.json#" + b->id + "</id>"));
  EXPECT_THAT(atom, HasSubstr("<category term=\"availability\"/>"));
  EXPECT_THAT(atom, HasSubstr("<link rel=\"self\" type=\"application/atom+xml\" "
                              "href=\"http://127.0.0.1:8080/status.atom\"/>"));
  EXPECT_THAT(atom, HasSubstr("<author><name>Custos</name></author>"));
  size_t entries = 0;
  for (size_t p = atom.find("<entry>"); p != std::string::npos; p = atom.find("<entry>", p + 1)) {
    ++entries;
  }
  EXPECT_EQ(entries, 2u);

  // No notices: the feed is still valid, updated now.
  const std::string empty = FeedAtom({}, "http://h", clock_.Now());
  EXPECT_THAT(empty, HasSubstr("<updated>2026-01-01T01:00:00Z</updated>"));
  EXPECT_THAT(empty, Not(HasSubstr("<entry>")));
}

TEST_F(StatusFeedTest, PublishInsideAnotherTransaction) {
  absl::Status st = temp_->store().Write([&](store::Transaction& tx) -> absl::Status {
    auto notice = PublishNotice(tx, clock_, random_, ctx_, {"security", "t", "b"}, "incabc");
    return notice.status();
  });
  ASSERT_TRUE(st.ok()) << st;
  auto listed = feed_->List(10);
  ASSERT_THAT(*listed, SizeIs(1));
  EXPECT_EQ((*listed)[0].incident_id, "incabc");
  // A failed transaction leaves no notice behind.
  st = temp_->store().Write([&](store::Transaction& tx) -> absl::Status {
    auto notice = PublishNotice(tx, clock_, random_, ctx_, {"security", "t2", "b"});
    if (!notice.ok()) return notice.status();
    return absl::AbortedError("rolled back");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(*feed_->List(10), SizeIs(1));
}

}  // namespace
}  // namespace custos::incident
