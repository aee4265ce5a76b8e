// The Notifier over a real store with a fake clock: what gets delivered, with which webhook-id
// and signature, when it is tried again, when it gives up, and what the logs say. Webhook and
// mail transports are fakes here (their libcurl paths are tested in webhook_test.cc and
// mailer_test.cc against real local listeners).

#include "incident/notifier.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "incident/contacts.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::incident {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

const TenantId kProvider{std::string(store::kProviderLogId)};

// Answers with the scripted results in turn (the last one repeats), and records each request.
class FakeWebhookSender final : public WebhookSender {
 public:
  DeliveryResult Post(const WebhookRequest& request) override {
    std::function<void()> during;
    DeliveryResult result;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      result = script_.empty() ? Ok() : script_.front();
      if (script_.size() > 1) script_.erase(script_.begin());
      during = during_;
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
    }
    if (during) during();
    if (block_until_cancelled_ && request.cancel != nullptr) {
      while (!request.cancel->load()) absl::SleepFor(absl::Milliseconds(5));
      result = {
          .outcome = DeliveryOutcome::kCancelled, .error = "cancelled", .reason = "cancelled"};
    }
    absl::MutexLock lock(&mu_);
    --in_flight_;
    return result;
  }

  static DeliveryResult Ok() {
    return {.outcome = DeliveryOutcome::kDelivered, .reason = "delivered", .status = 200};
  }
  static DeliveryResult Status(int status) {
    return {.outcome = status == 410 ? DeliveryOutcome::kPermanentFailure : DeliveryOutcome::kRetry,
            .error = fmt::format("HTTP {}", status),
            .reason = fmt::format("http_{}", status),
            .status = status};
  }

  void Script(std::vector<DeliveryResult> script) {
    absl::MutexLock lock(&mu_);
    script_ = std::move(script);
  }
  void During(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    during_ = std::move(fn);
  }
  std::vector<WebhookRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }
  std::atomic<bool> block_until_cancelled_{false};

 private:
  absl::Mutex mu_;
  std::vector<DeliveryResult> script_ ABSL_GUARDED_BY(mu_);
  std::function<void()> during_ ABSL_GUARDED_BY(mu_);
  std::vector<WebhookRequest> requests_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeMailSender final : public MailSender {
 public:
  DeliveryResult Send(const MailMessage& message) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(message);
    return FakeWebhookSender::Ok();
  }
  std::vector<MailMessage> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  absl::Mutex mu_;
  std::vector<MailMessage> sent_ ABSL_GUARDED_BY(mu_);
};

std::map<std::string, std::string> HeaderMap(const WebhookRequest& r) {
  return {r.headers.begin(), r.headers.end()};
}

constexpr std::string_view kPayload =
    R"({"type":"security.incident.notification","timestamp":"2026-01-01T00:00:00.000Z",)"
    R"("data":{"notificationId":"ntfX","incidentId":"incX","title":"Support workstation taken )"
    R"(over","tenant":{"id":"00oacme","name":"acme"},"confirmed":true,)"
    R"("window":{"start":"2025-12-27T00:00:00Z","end":"2026-01-01T00:00:00Z"},)"
    R"("compromiseWindow":{"start":"2025-12-31T23:00:00Z","end":"2025-12-31T23:25:00Z"},)"
    R"("summary":{"views":12,"attempts":3,"refusals":3,"successes":0,"grantsUsed":1},)"
    R"("evidence":"/t/acme/api/v1/security/incidents/incX/evidence",)"
    R"("acknowledge":"/t/acme/api/v1/security/notifications/ntfX/acknowledge"}})";

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    sealer_ = crypto::Sealer::FromKey(std::string(32, 's'));
    contacts_ =
        std::make_unique<SecurityContacts>(store(), *sealer_, clock_, random_, ContactOptions{});
    admin_.actor = {"00Tadmin", "ApiToken", "admin", "admin"};
    for (store::TenantRecord t : {acme_, globex_}) {
      t.created = clock_.Now();
      ASSERT_TRUE(
          store().Write([&](store::Transaction& tx) { return tx.Tenants().Insert(t); }).ok());
    }
    incident_ = store::IncidentRecord{.id = "incX",
                                      .title = "Support workstation taken over",
                                      .status = std::string(store::kIncidentNotified),
                                      .indicators_json = "{}",
                                      .window_start = clock_.Now() - absl::Hours(120),
                                      .window_end = clock_.Now(),
                                      .compromise_start = clock_.Now() - absl::Minutes(60),
                                      .compromise_end = clock_.Now() - absl::Minutes(35),
                                      .created = clock_.Now(),
                                      .updated = clock_.Now(),
                                      .created_by = "secops"};
    ASSERT_TRUE(store()
                    .Write([&](store::Transaction& tx) { return tx.Incidents().Insert(incident_); })
                    .ok());
  }

  store::Store& store() { return temp_->store(); }

  std::unique_ptr<Notifier> MakeNotifier(NotifierOptions options = {}, MailSender* mail = nullptr) {
    return std::make_unique<Notifier>(store(), *sealer_, clock_, random_, webhooks_, mail,
                                      std::move(options));
  }

  // A webhook contact of the tenant; returns {contact id, secret}.
  std::pair<std::string, std::string> Webhook(const store::TenantRecord& tenant) {
    auto created = contacts_->Create(
        tenant.id, admin_, {"webhook", "SOC", "https://soc." + tenant.name + ".example/in"});
    EXPECT_TRUE(created.ok()) << created.status();
    return {created->contact.id, *created->secret};
  }

  // One outbox row, due now, as the incidents service's notify step makes it.
  store::NotificationRecord Outbox(const store::TenantRecord& tenant, const std::string& contact_id,
                                   std::string_view channel = store::kContactWebhook) {
    store::NotificationRecord n{.id = random_.Id(store::kNotificationIdPrefix),
                                .incident_id = incident_.id,
                                .tenant_id = tenant.id,
                                .contact_id = contact_id,
                                .channel = std::string(channel),
                                .payload_json = std::string(kPayload),
                                .status = std::string(store::kNotificationPending),
                                .next_attempt = clock_.Now(),
                                .created = clock_.Now()};
    EXPECT_TRUE(
        store()
            .Write([&](store::Transaction& tx) { return tx.Incidents().InsertNotification(n); })
            .ok());
    return n;
  }

  store::NotificationRecord Row(const store::NotificationRecord& n) {
    return store::ReadResult(store(),
                             [&](store::Transaction& tx) {
                               return tx.Incidents().GetNotification(n.tenant_id, n.id);
                             })
        .value();
  }

  std::vector<store::EventRecord> DeliverEvents(const TenantId& log) {
    std::vector<store::EventRecord> all =
        store::ReadResult(store(), [&](store::Transaction& tx) {
          return tx.Events().Query(log, store::EventQuery{.limit = 1000});
        }).value();
    std::vector<store::EventRecord> out;
    for (auto& e : all) {
      if (e.event_type == "security.notification.deliver") out.push_back(std::move(e));
    }
    return out;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{5};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<SecurityContacts> contacts_;
  FakeWebhookSender webhooks_;
  audit::RequestContext admin_;
  store::TenantRecord acme_{.id = TenantId("00oacme"), .name = "acme"};
  store::TenantRecord globex_{.id = TenantId("00oglobex"), .name = "globex"};
  store::IncidentRecord incident_;
};

TEST(BackoffTest, DoublesFromTheBaseUpToTheCap) {
  EXPECT_EQ(Backoff(0, absl::Seconds(1), absl::Hours(1)), absl::Seconds(1));
  EXPECT_EQ(Backoff(1, absl::Seconds(1), absl::Hours(1)), absl::Seconds(2));
  EXPECT_EQ(Backoff(11, absl::Seconds(1), absl::Hours(1)), absl::Seconds(2048));
  EXPECT_EQ(Backoff(12, absl::Seconds(1), absl::Hours(1)), absl::Hours(1));
  EXPECT_EQ(Backoff(100000, absl::Seconds(1), absl::Hours(1)), absl::Hours(1));
}

TEST_F(NotifierTest, DeliversASignedWebhookWithTheNotificationIdAndLogsIt) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  auto notifier = MakeNotifier();
  ASSERT_EQ(*notifier->RunOnce(), 1);

  std::vector<WebhookRequest> sent = webhooks_.requests();
  ASSERT_THAT(sent, SizeIs(1));
  EXPECT_EQ(sent[0].url, "https://soc.acme.example/in");
  EXPECT_EQ(sent[0].body, kPayload);
  auto h = HeaderMap(sent[0]);
  EXPECT_EQ(h["webhook-id"], n.id);
  EXPECT_EQ(h["webhook-timestamp"], std::to_string(absl::ToUnixSeconds(clock_.Now())));
  EXPECT_TRUE(VerifyWebhook(secret, n.id, absl::ToUnixSeconds(clock_.Now()), sent[0].body,
                            h["webhook-signature"]));

  store::NotificationRecord row = Row(n);
  EXPECT_EQ(row.status, store::kNotificationDelivered);
  EXPECT_EQ(row.attempts, 1);
  EXPECT_EQ(row.delivered, clock_.Now());
  EXPECT_FALSE(row.lease_until.has_value());
  EXPECT_EQ(*notifier->RunOnce(), 0);  // nothing left

  std::vector<store::EventRecord> tenant_events = DeliverEvents(acme_.id);
  ASSERT_THAT(tenant_events, SizeIs(1));
  EXPECT_THAT(tenant_events[0].json, HasSubstr(R"("result":"SUCCESS")"));
  EXPECT_THAT(tenant_events[0].json, HasSubstr(n.id));
  EXPECT_THAT(tenant_events[0].json, Not(HasSubstr("whsec_")));
  std::vector<store::EventRecord> provider_events = DeliverEvents(kProvider);
  ASSERT_THAT(provider_events, SizeIs(1));
  EXPECT_THAT(provider_events[0].json, HasSubstr(R"("tenantId":"00oacme")"));
}

TEST_F(NotifierTest, RetriesWithBackoffUnderTheSameIdThenGivesUp) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  webhooks_.Script({FakeWebhookSender::Status(503)});
  auto notifier = MakeNotifier(
      {.backoff_base = absl::Seconds(1), .backoff_cap = absl::Seconds(3), .max_attempts = 4});

  // Attempt 1 at t=0; the next is due 1 s later, then 2 s, then 3 s (the cap).
  const std::vector<absl::Duration> waits = {absl::Seconds(1), absl::Seconds(2), absl::Seconds(3)};
  ASSERT_EQ(*notifier->RunOnce(), 1);
  for (size_t i = 0; i < waits.size(); ++i) {
    store::NotificationRecord row = Row(n);
    EXPECT_EQ(row.status, store::kNotificationPending);
    EXPECT_EQ(row.attempts, static_cast<int>(i + 1));
    EXPECT_EQ(row.next_attempt, clock_.Now() + waits[i]);
    EXPECT_EQ(row.last_error, "HTTP 503");
    EXPECT_THAT(DeliverEvents(acme_.id), IsEmpty()) << "retries are not logged one by one";
    clock_.Advance(waits[i] - absl::Milliseconds(1));
    EXPECT_EQ(*notifier->RunOnce(), 0) << "not due yet";
    clock_.Advance(absl::Milliseconds(1));
    ASSERT_EQ(*notifier->RunOnce(), 1);
  }
  store::NotificationRecord row = Row(n);
  EXPECT_EQ(row.status, store::kNotificationFailed);
  EXPECT_EQ(row.attempts, 4);
  EXPECT_EQ(row.last_error, "HTTP 503");
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(*notifier->RunOnce(), 0) << "a FAILED row is never tried again";

  // Every attempt carried the same webhook-id, each signed for its own timestamp.
  std::vector<WebhookRequest> sent = webhooks_.requests();
  ASSERT_THAT(sent, SizeIs(4));
  std::set<std::string> timestamps;
  for (const WebhookRequest& r : sent) {
    auto h = HeaderMap(r);
    EXPECT_EQ(h["webhook-id"], n.id);
    EXPECT_TRUE(VerifyWebhook(secret, n.id, std::stoll(h["webhook-timestamp"]), r.body,
                              h["webhook-signature"]));
    timestamps.insert(h["webhook-timestamp"]);
  }
  EXPECT_THAT(timestamps, SizeIs(4));

  for (const TenantId& log : {acme_.id, kProvider}) {
    std::vector<store::EventRecord> events = DeliverEvents(log);
    ASSERT_THAT(events, SizeIs(1));
    EXPECT_THAT(events[0].json, HasSubstr(R"("result":"FAILURE")"));
    EXPECT_THAT(events[0].json, HasSubstr(R"("reason":"max_attempts")"));
    EXPECT_THAT(events[0].json, HasSubstr(R"("attempts":"4")"));
  }
}

TEST_F(NotifierTest, SucceedsOnARetry) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  webhooks_.Script({FakeWebhookSender::Status(500), FakeWebhookSender::Ok()});
  auto notifier = MakeNotifier();
  ASSERT_EQ(*notifier->RunOnce(), 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(*notifier->RunOnce(), 1);
  store::NotificationRecord row = Row(n);
  EXPECT_EQ(row.status, store::kNotificationDelivered);
  EXPECT_EQ(row.attempts, 2);
  EXPECT_TRUE(row.last_error.empty());
  std::vector<store::EventRecord> events = DeliverEvents(acme_.id);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_THAT(events[0].json, HasSubstr(R"("attempts":"2")"));
}

TEST_F(NotifierTest, GoneAndDeletedContactsFailAtOnce) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord gone = Outbox(acme_, contact);
  webhooks_.Script({FakeWebhookSender::Status(410)});
  auto notifier = MakeNotifier();
  ASSERT_EQ(*notifier->RunOnce(), 1);
  EXPECT_EQ(Row(gone).status, store::kNotificationFailed);
  EXPECT_EQ(Row(gone).attempts, 1);

  auto [other, other_secret] = Webhook(globex_);
  store::NotificationRecord orphan = Outbox(globex_, other);
  ASSERT_TRUE(contacts_->Delete(globex_.id, admin_, other).ok());
  ASSERT_EQ(*notifier->RunOnce(), 1);
  EXPECT_EQ(Row(orphan).status, store::kNotificationFailed);
  EXPECT_EQ(Row(orphan).last_error, "the security contact was deleted");
  EXPECT_THAT(webhooks_.requests(), SizeIs(1));

  EXPECT_THAT(DeliverEvents(acme_.id)[0].json, HasSubstr(R"("reason":"http_410")"));
  EXPECT_THAT(DeliverEvents(globex_.id)[0].json, HasSubstr(R"("reason":"contact_deleted")"));
}

TEST_F(NotifierTest, ARowLeasedByACrashedProcessIsDeliveredAgainAfterTheLeaseLapses) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  // The process that crashed: it leased the row (and perhaps delivered it) and died.
  ASSERT_TRUE(store()
                  .Write([&](store::Transaction& tx) {
                    return tx.Incidents()
                        .LeaseDue(clock_.Now(), clock_.Now() + absl::Seconds(30), 10)
                        .status();
                  })
                  .ok());
  auto notifier = MakeNotifier({.lease = absl::Seconds(30)});
  EXPECT_EQ(*notifier->RunOnce(), 0) << "still leased to the dead process";
  clock_.Advance(absl::Seconds(31));
  ASSERT_EQ(*notifier->RunOnce(), 1);
  ASSERT_THAT(webhooks_.requests(), SizeIs(1));
  EXPECT_EQ(HeaderMap(webhooks_.requests()[0])["webhook-id"], n.id);
  EXPECT_EQ(Row(n).status, store::kNotificationDelivered);
}

TEST_F(NotifierTest, AnAcknowledgementDuringDeliveryIsKept) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  // The receiver acknowledges through the API before answering the webhook.
  webhooks_.During([&] { ASSERT_TRUE(contacts_->Acknowledge(acme_.id, admin_, n.id).ok()); });
  auto notifier = MakeNotifier();
  ASSERT_EQ(*notifier->RunOnce(), 1);
  store::NotificationRecord row = Row(n);
  EXPECT_EQ(row.status, store::kNotificationDelivered);
  EXPECT_TRUE(row.acknowledged.has_value());
  EXPECT_EQ(row.acknowledged_by, "00Tadmin");
}

TEST_F(NotifierTest, DeliversSeveralRowsAtOnce) {
  auto [contact, secret] = Webhook(acme_);
  for (int i = 0; i < 20; ++i) Outbox(acme_, contact);
  std::atomic<int> arrived{0};
  webhooks_.During([&] {
    ++arrived;
    // Holds each delivery until all four of the round are in flight (or a second passes).
    for (int i = 0; i < 100 && arrived.load() < 4; ++i) absl::SleepFor(absl::Milliseconds(10));
  });
  auto notifier = MakeNotifier({.workers = 4});
  EXPECT_EQ(*notifier->RunOnce(), 4);
  EXPECT_EQ(webhooks_.max_in_flight(), 4);
  webhooks_.During(nullptr);
  int total = 4;
  while (int n = *notifier->RunOnce()) total += n;
  EXPECT_EQ(total, 20);
  EXPECT_THAT(webhooks_.requests(), SizeIs(20));
  EXPECT_THAT(DeliverEvents(acme_.id), SizeIs(20));
}

TEST_F(NotifierTest, EmailCarriesTheFactsAndAStableMessageId) {
  auto created = contacts_->Create(acme_.id, admin_, {"email", "Sec", "sec@acme.example"});
  ASSERT_TRUE(created.ok());
  store::NotificationRecord n = Outbox(acme_, created->contact.id, store::kContactEmail);

  // No relay configured: the row waits (and fails in the end) rather than vanishing.
  auto without = MakeNotifier({.max_attempts = 2});
  ASSERT_EQ(*without->RunOnce(), 1);
  EXPECT_EQ(Row(n).status, store::kNotificationPending);
  EXPECT_THAT(Row(n).last_error, HasSubstr("notify.smtp_url"));
  without.reset();

  FakeMailSender mail;
  auto notifier = MakeNotifier(
      {.mail_from = "security@custos.example", .base_url = "https://id.custos.example"}, &mail);
  clock_.Advance(absl::Seconds(1));
  ASSERT_EQ(*notifier->RunOnce(), 1);
  EXPECT_EQ(Row(n).status, store::kNotificationDelivered);
  std::vector<MailMessage> sent = mail.sent();
  ASSERT_THAT(sent, SizeIs(1));
  const MailMessage& m = sent[0];
  EXPECT_EQ(m.to, "sec@acme.example");
  EXPECT_EQ(m.from, "security@custos.example");
  EXPECT_EQ(m.subject, "[Custos security] Support workstation taken over");
  EXPECT_EQ(m.message_id, n.id + "@custos.example");
  EXPECT_THAT(m.body, HasSubstr("CONFIRMED affected"));
  EXPECT_THAT(m.body, HasSubstr("12 views, 3 attempted"));
  EXPECT_THAT(m.body,
              HasSubstr("https://id.custos.example/t/acme/api/v1/security/notifications/ntfX/"
                        "acknowledge"));
  EXPECT_TRUE(FormatMail(m).ok());
  EXPECT_THAT(webhooks_.requests(), IsEmpty());
}

TEST_F(NotifierTest, BackgroundWorkersDeliverEveryTenantAndStopCleanly) {
  std::vector<store::NotificationRecord> rows;
  for (const auto& tenant : {acme_, globex_}) {
    auto [contact, secret] = Webhook(tenant);
    for (int i = 0; i < 5; ++i) rows.push_back(Outbox(tenant, contact));
  }
  auto notifier = MakeNotifier({.workers = 3, .poll_interval = absl::Milliseconds(20)});
  EXPECT_EQ(notifier->RunOnce().status().code(), absl::StatusCode::kOk);
  notifier->Start();
  EXPECT_EQ(notifier->RunOnce().status().code(), absl::StatusCode::kFailedPrecondition);
  notifier->Wake();
  auto all_delivered = [&] {
    return std::all_of(rows.begin(), rows.end(), [&](const auto& n) {
      return Row(n).status == store::kNotificationDelivered;
    });
  };
  for (int i = 0; i < 500 && !all_delivered(); ++i) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(all_delivered());
  notifier->Stop();
  EXPECT_THAT(webhooks_.requests(), SizeIs(10)) << "each row exactly once";
}

TEST_F(NotifierTest, StopCancelsADeliveryInFlightWithoutCountingIt) {
  auto [contact, secret] = Webhook(acme_);
  store::NotificationRecord n = Outbox(acme_, contact);
  webhooks_.block_until_cancelled_ = true;
  auto notifier = MakeNotifier({.workers = 2, .poll_interval = absl::Milliseconds(10)});
  notifier->Start();
  for (int i = 0; i < 500 && webhooks_.requests().empty(); ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_THAT(webhooks_.requests(), SizeIs(1));
  notifier->Stop();
  store::NotificationRecord row = Row(n);
  EXPECT_EQ(row.status, store::kNotificationPending);
  EXPECT_EQ(row.attempts, 0);
  EXPECT_FALSE(row.lease_until.has_value()) << "given back: the next start takes it at once";

  webhooks_.block_until_cancelled_ = false;
  ASSERT_EQ(*notifier->RunOnce(), 1);
  EXPECT_EQ(Row(n).status, store::kNotificationDelivered);
}

TEST(NotificationMailTest, FallsBackWhenThePayloadLacksFacts) {
  store::NotificationRecord n{.id = "ntf1", .incident_id = "inc1", .tenant_id = TenantId("00ot")};
  n.payload_json = "not json";
  auto m = NotificationMail(n, "a@b.example", "c@d.example", "", absl::UnixEpoch());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->subject, "[Custos security] Security incident");
  EXPECT_THAT(m->body, HasSubstr("inc1"));
  EXPECT_TRUE(FormatMail(*m).ok());
  EXPECT_FALSE(NotificationMail(n, "a@b.example", "not-an-address", "", absl::UnixEpoch()).ok());
}

}  // namespace
}  // namespace custos::incident
