#include "incident/contacts.h"

#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "incident/webhook.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

class ContactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    contacts_ =
        std::make_unique<SecurityContacts>(store(), *sealer_, clock_, random_, ContactOptions{});
    ctx_.actor = {"00Tadmintoken", "ApiToken", "admin", "admin"};
    for (const store::TenantRecord& t : {acme_, globex_}) {
      store::TenantRecord record = t;
      record.created = clock_.Now();
      ASSERT_TRUE(
          store().Write([&](store::Transaction& tx) { return tx.Tenants().Insert(record); }).ok());
    }
  }

  store::Store& store() { return temp_->store(); }

  std::vector<store::EventRecord> Events(const TenantId& log) {
    return store::ReadResult(store(),
                             [&](store::Transaction& tx) {
                               return tx.Events().Query(log, store::EventQuery{.limit = 1000});
                             })
        .value();
  }

  // An incident and one outbox row for acme, as the incidents service's notify step makes them.
  store::NotificationRecord MakeNotification(const std::string& contact_id) {
    store::IncidentRecord incident{.id = random_.Id(store::kIncidentIdPrefix),
                                   .title = "Workstation compromised",
                                   .status = std::string(store::kIncidentNotified),
                                   .indicators_json = "{}",
                                   .window_start = clock_.Now() - absl::Hours(1),
                                   .window_end = clock_.Now(),
                                   .compromise_start = clock_.Now() - absl::Hours(1),
                                   .compromise_end = clock_.Now(),
                                   .created = clock_.Now(),
                                   .updated = clock_.Now(),
                                   .created_by = "secops"};
    store::NotificationRecord n{.id = random_.Id(store::kNotificationIdPrefix),
                                .incident_id = incident.id,
                                .tenant_id = acme_.id,
                                .contact_id = contact_id,
                                .channel = std::string(store::kContactWebhook),
                                .payload_json = R"({"type":"security.incident.notification"})",
                                .status = std::string(store::kNotificationPending),
                                .next_attempt = clock_.Now(),
                                .created = clock_.Now()};
    EXPECT_TRUE(store()
                    .Write([&](store::Transaction& tx) -> absl::Status {
                      absl::Status st = tx.Incidents().Insert(incident);
                      if (!st.ok()) return st;
                      return tx.Incidents().InsertNotification(n);
                    })
                    .ok());
    return n;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{42};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<SecurityContacts> contacts_;
  audit::RequestContext ctx_;
  store::TenantRecord acme_{.id = TenantId("00oacme"), .name = "acme"};
  store::TenantRecord globex_{.id = TenantId("00oglobex"), .name = "globex"};
};

TEST_F(ContactsTest, WebhookSecretIsShownOnceAndSealedAtRest) {
  auto created = contacts_->Create(
      acme_.id, ctx_, {.type = "webhook", .name = "SOC", .address = "https://soc.acme.example/in"});
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(created->secret.has_value());
  EXPECT_THAT(*created->secret, StartsWith("whsec_"));
  EXPECT_THAT(created->contact.id, StartsWith("sct"));
  Json shown = ContactView(created->contact, created->secret);
  EXPECT_EQ(shown["secret"], *created->secret);
  EXPECT_EQ(shown["url"], "https://soc.acme.example/in");

  auto listed = contacts_->List(acme_.id);
  ASSERT_TRUE(listed.ok());
  ASSERT_THAT(*listed, SizeIs(1));
  const store::SecurityContactRecord& stored = listed->front();
  EXPECT_EQ(stored.sealed_secret.find(*created->secret), std::string::npos);
  EXPECT_FALSE(ContactView(stored).contains("secret"));
  // Sealed for this contact only: the same bytes do not open as another contact's secret.
  EXPECT_EQ(*sealer_->Open(stored.sealed_secret, ContactSecretAad(acme_.id, stored.id)),
            *created->secret);
  EXPECT_FALSE(sealer_->Open(stored.sealed_secret, ContactSecretAad(acme_.id, "sctother")).ok());
  EXPECT_FALSE(sealer_->Open(stored.sealed_secret, ContactSecretAad(globex_.id, stored.id)).ok());

  std::vector<store::EventRecord> events = Events(acme_.id);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].event_type, "security.contact.create");
  EXPECT_THAT(events[0].json, HasSubstr("https://soc.acme.example"));
  EXPECT_THAT(events[0].json, Not(HasSubstr("/in")));
  EXPECT_THAT(events[0].json, Not(HasSubstr("whsec_")));
}

TEST_F(ContactsTest, EmailContactHasNoSecret) {
  auto created = contacts_->Create(
      acme_.id, ctx_, {.type = "email", .name = "Security team", .address = "sec@acme.example"});
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->secret.has_value());
  EXPECT_TRUE(created->contact.sealed_secret.empty());
  EXPECT_EQ(ContactView(created->contact)["address"], "sec@acme.example");
  // The log names the domain, not the mailbox.
  std::vector<store::EventRecord> events = Events(acme_.id);
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_THAT(events[0].json, HasSubstr("@acme.example"));
  EXPECT_THAT(events[0].json, Not(HasSubstr("sec@acme.example")));
}

TEST_F(ContactsTest, InvalidContactsAreRefusedNamingTheField) {
  struct Case {
    NewContact contact;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{"webhook", "x", "http://soc.acme.example/in"}, "url"},
      {{"webhook", "x", "ftp://soc.acme.example/in"}, "url"},
      {{"webhook", "x", "soc.acme.example/in"}, "url"},
      {{"webhook", "x", "https://user:pw@soc.acme.example/in"}, "url"},
      {{"webhook", "x", "https://soc.acme.example/in#frag"}, "url"},
      {{"webhook", "x", "https://soc.acme.example/" + std::string(2048, 'a')}, "url"},
      {{"email", "x", "not an address"}, "address"},
      {{"email", "x", "sec@acme.example\r\nBcc: x@y.example"}, "address"},
      {{"sms", "x", "+15555550100"}, "type"},
      {{"email", "", "sec@acme.example"}, "name"},
      {{"email", std::string(201, 'n'), "sec@acme.example"}, "name"},
      {{"email", "line\nbreak", "sec@acme.example"}, "name"},
  };
  for (const Case& c : cases) {
    auto created = contacts_->Create(acme_.id, ctx_, c.contact);
    ASSERT_FALSE(created.ok()) << c.contact.address;
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorCodeOf(created.status()), kErrValidation);
    ASSERT_THAT(ErrorCausesOf(created.status()), SizeIs(1));
    EXPECT_THAT(ErrorCausesOf(created.status())[0], StartsWith(c.field + ":")) << c.contact.address;
  }
  EXPECT_THAT(*contacts_->List(acme_.id), IsEmpty());
  EXPECT_THAT(Events(acme_.id), IsEmpty());
}

TEST_F(ContactsTest, HttpOnlyToLoopbackUnlessAllowed) {
  for (std::string url :
       {"http://127.0.0.1:9000/sink", "http://localhost/sink", "http://[::1]/x"}) {
    EXPECT_TRUE(contacts_->Create(acme_.id, ctx_, {"webhook", "local", url}).ok()) << url;
  }
  EXPECT_FALSE(contacts_->Create(acme_.id, ctx_, {"webhook", "lan", "http://10.0.0.5/x"}).ok());
  SecurityContacts lenient(store(), *sealer_, clock_, random_,
                           ContactOptions{.allow_http_webhooks = true});
  EXPECT_TRUE(lenient.Create(acme_.id, ctx_, {"webhook", "lan", "http://10.0.0.5/x"}).ok());
}

TEST_F(ContactsTest, AtMostTwentyPerTenant) {
  for (int i = 0; i < kMaxContactsPerTenant; ++i) {
    ASSERT_TRUE(contacts_
                    ->Create(acme_.id, ctx_,
                             {"email", fmt::format("c{}", i), fmt::format("c{}@acme.example", i)})
                    .ok());
  }
  auto one_more = contacts_->Create(acme_.id, ctx_, {"email", "extra", "x@acme.example"});
  EXPECT_EQ(one_more.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(one_more.status().message()), HasSubstr("contacts"));
  // Another tenant has its own twenty.
  EXPECT_TRUE(contacts_->Create(globex_.id, ctx_, {"email", "g", "sec@globex.example"}).ok());
}

TEST_F(ContactsTest, DeleteIsPerTenantAndLogged) {
  auto created = contacts_->Create(acme_.id, ctx_, {"email", "Sec", "sec@acme.example"});
  ASSERT_TRUE(created.ok());
  absl::Status other = contacts_->Delete(globex_.id, ctx_, created->contact.id);
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorCodeOf(other), kErrNotFound);
  ASSERT_TRUE(contacts_->Delete(acme_.id, ctx_, created->contact.id).ok());
  EXPECT_THAT(*contacts_->List(acme_.id), IsEmpty());
  EXPECT_EQ(contacts_->Delete(acme_.id, ctx_, created->contact.id).code(),
            absl::StatusCode::kNotFound);
  std::vector<store::EventRecord> events = Events(acme_.id);
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[1].event_type, "security.contact.delete");
}

TEST_F(ContactsTest, AcknowledgeKeepsTheFirstTimeAndLogsInBothLogs) {
  store::NotificationRecord n = MakeNotification("sct1");
  const absl::Time first = clock_.Now();
  auto acked = contacts_->Acknowledge(acme_.id, ctx_, n.id);
  ASSERT_TRUE(acked.ok()) << acked.status();
  EXPECT_EQ(acked->acknowledged, first);
  EXPECT_EQ(acked->acknowledged_by, "00Tadmintoken");

  clock_.Advance(absl::Minutes(5));
  audit::RequestContext other = ctx_;
  other.actor.id = "00Tsecondtoken";
  auto again = contacts_->Acknowledge(acme_.id, other, n.id);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->acknowledged, first);
  EXPECT_EQ(again->acknowledged_by, "00Tadmintoken");

  Json view = NotificationView(*contacts_->Notifications(acme_.id).value().begin());
  EXPECT_EQ(view["acknowledged"], "2026-01-01T00:00:00.000Z");
  EXPECT_EQ(view["status"], "PENDING");
  EXPECT_EQ(view["payload"]["type"], "security.incident.notification");

  auto count = [&](const TenantId& log) {
    int n = 0;
    for (const auto& e : Events(log)) n += e.event_type == "security.notification.acknowledge";
    return n;
  };
  EXPECT_EQ(count(acme_.id), 1);
  EXPECT_EQ(count(TenantId(std::string(store::kProviderLogId))), 1);

  // Another tenant cannot see or acknowledge it.
  EXPECT_EQ(contacts_->Acknowledge(globex_.id, ctx_, n.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(*contacts_->Notifications(globex_.id), IsEmpty());
}

}  // namespace
}  // namespace custos::incident
