#include "incident/incidents.h"

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/note.h"
#include "audit/sequencer.h"
#include "common/clock.h"
#include "common/errors.h"
#include "common/time_format.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "incident/evidence.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/plane.h"

namespace custos::incident {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr std::string_view kHost = "id.example.com";
const TenantId kProvider{std::string(store::kProviderLogId)};
const absl::Time kT0 = absl::FromUnixSeconds(1'767'225'600);  // 2026-01-01, FakeClock's start

absl::Time At(int minutes) { return kT0 + absl::Minutes(minutes); }

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// An incident over minutes 0..200 whose compromise is minutes 95..125: vendor vnd1 is suspect,
// its engineer's device dev1 was taken over, from 203.0.113.0/24.
Json Definition() {
  return {{"title", "Support workstation dev1 taken over"},
          {"indicators",
           {{"vendorIds", {"vnd1"}}, {"deviceIds", {"dev1"}}, {"ipRanges", {"203.0.113.0/24"}}}},
          {"window", {{"start", FormatRfc3339(At(0))}, {"end", FormatRfc3339(At(200))}}},
          {"compromiseWindow", {{"start", FormatRfc3339(At(95))}, {"end", FormatRfc3339(At(125))}}},
          {"notes", "Reported by the contractor's SOC"}};
}

class IncidentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    ASSERT_TRUE(support::EnsureProviderTenant(store(), clock_, random_).ok());
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    keys_ = std::make_unique<audit::LogKeys>(store(), *sealer_, clock_, random_);
    ASSERT_TRUE(keys_->EnsureKey(kHost).ok());
    reader_ = std::make_unique<audit::LogReader>(store());
    for (const char* name : {"acme", "globex", "initech", "umbrella"}) {
      store::TenantRecord tenant{
          .id = TenantId(std::string("00o") + name), .name = name, .created = clock_.Now()};
      ASSERT_TRUE(
          store().Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
      tenants_[name] = tenant;
    }
    incidents_ = MakeIncidents(absl::Seconds(20));
    admin_.actor = {"00Tsecops", "ApiToken", "secops", "secops"};
    admin_.request_id = "req-secops";
    admin_.ip_address = "198.51.100.9";
  }

  void TearDown() override {
    if (sequencer_) sequencer_->Stop();
  }

  std::unique_ptr<Incidents> MakeIncidents(absl::Duration evidence_timeout) {
    return std::make_unique<Incidents>(
        store(), clock_, random_, *reader_, *keys_,
        IncidentsOptions{.evidence_timeout = evidence_timeout,
                         .evidence_poll_interval = absl::Milliseconds(5)});
  }

  store::Store& store() { return temp_->store(); }

  // One support event of an operator in `tenant`'s log (and the provider log), written as the
  // support plane writes it, at `minute`.
  void Reach(const std::string& tenant, int minute, const std::string& op,
             const std::string& device, const std::string& session, const std::string& ip,
             std::string event_type = "support.view", std::string outcome = "SUCCESS",
             std::string vendor = "vnd1") {
    clock_.Set(At(minute));
    audit::RequestContext ctx;
    ctx.actor = {op, "User", op + "@vendor.example", op};
    ctx.ip_address = ip;
    ctx.external_session_id = session;
    ctx.request_id = fmt::format("req-{}", minute);
    support::SupportFacts facts{.operator_id = op,
                                .vendor_id = std::move(vendor),
                                .device_id = device,
                                .case_id = "cas-" + tenant,
                                .grant_id = "sgr-" + tenant};
    audit::EventSpec spec{.event_type = std::move(event_type),
                          .outcome = outcome,
                          .reason = outcome == "DENY" ? "scope_missing" : ""};
    if (spec.event_type == "support.view") {
      spec.debug_data = {{"resource", "users"}, {"fields", "id,profile.email (masked)"}};
    }
    ASSERT_TRUE(store()
                    .Write([&](store::Transaction& tx) {
                      return support::AppendTransparencyEvents(tx, clock_, random_,
                                                               &tenants_[tenant], ctx, facts, spec);
                    })
                    .ok());
  }

  // Five days of ordinary work and the 25 minutes of the compromise.
  void Activity() {
    Reach("acme", 10, "op1", "dev1", "s1", "10.0.0.1");
    Reach("globex", 20, "op1", "dev1", "s1", "10.0.0.1");
    Reach("initech", 30, "op2", "dev2", "s2", "10.0.0.2");
    Reach("umbrella", 40, "op9", "dev9", "s9", "10.9.9.9", "support.view", "SUCCESS", "vnd9");
    Reach("acme", 100, "op1", "dev1", "s7", "203.0.113.5");
    Reach("acme", 105, "op1", "dev1", "s7", "203.0.113.5", "support.action.password_reset", "DENY");
    Reach("globex", 110, "op1", "dev1", "s7", "203.0.113.5");
    clock_.Set(At(300));
  }

  void AddContact(const std::string& tenant, const std::string& id, std::string_view type) {
    store::SecurityContactRecord contact{.id = id,
                                         .tenant_id = tenants_[tenant].id,
                                         .type = std::string(type),
                                         .name = "SOC",
                                         .address = type == store::kContactEmail
                                                        ? "soc@" + tenant + ".example"
                                                        : "https://hooks." + tenant + ".example/x",
                                         .created = clock_.Now()};
    ASSERT_TRUE(
        store()
            .Write([&](store::Transaction& tx) { return tx.Incidents().InsertContact(contact); })
            .ok());
  }

  store::IncidentRecord Declared() {
    auto incident = incidents_->Declare(admin_, Definition());
    EXPECT_TRUE(incident.ok()) << incident.status();
    return incident.value_or(store::IncidentRecord{});
  }

  store::IncidentRecord Stored(const std::string& id) {
    auto incident = incidents_->Get(id);
    EXPECT_TRUE(incident.ok()) << incident.status();
    return incident.value_or(store::IncidentRecord{});
  }

  // The provider log's events of `type`, as JSON, oldest first.
  std::vector<Json> ProviderEvents(std::string_view type) {
    std::vector<Json> out;
    auto events = store::ReadResult(store(), [&](store::Transaction& tx) {
      return tx.Events().Query(kProvider, store::EventQuery{.limit = 100000});
    });
    EXPECT_TRUE(events.ok()) << events.status();
    for (const store::EventRecord& e : events.value_or(std::vector<store::EventRecord>{})) {
      if (e.event_type == type) out.push_back(Json::parse(e.json));
    }
    return out;
  }

  std::vector<store::NotificationRecord> Outbox(const std::string& incident_id) {
    auto rows = store::ReadResult(store(), [&](store::Transaction& tx) {
      return tx.Incidents().ListNotifications(incident_id);
    });
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.value_or(std::vector<store::NotificationRecord>{});
  }

  std::vector<store::StatusNoticeRecord> Notices() {
    auto notices = store::ReadResult(
        store(), [&](store::Transaction& tx) { return tx.Incidents().ListNotices(100); });
    EXPECT_TRUE(notices.ok()) << notices.status();
    return notices.value_or(std::vector<store::StatusNoticeRecord>{});
  }

  std::vector<audit::note::VerifierKey> Trusted() {
    std::vector<audit::note::VerifierKey> out;
    const std::vector<std::string> vkeys = keys_->VerifierKeys().value();
    for (const std::string& vkey : vkeys) {
      out.push_back(audit::note::ParseVerifierKey(vkey).value());
    }
    return out;
  }

  FakeClock clock_;
  crypto::SeededRandom random_{7};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<audit::LogKeys> keys_;
  std::unique_ptr<audit::LogReader> reader_;
  std::unique_ptr<audit::Sequencer> sequencer_;
  std::map<std::string, store::TenantRecord> tenants_;
  std::unique_ptr<Incidents> incidents_;
  audit::RequestContext admin_;
};

TEST_F(IncidentsTest, DeclareStoresTheIncidentAndLogsIt) {
  const store::IncidentRecord incident = Declared();
  EXPECT_TRUE(incident.id.starts_with("inc")) << incident.id;
  EXPECT_EQ(incident.status, "DECLARED");
  EXPECT_EQ(incident.window_start, At(0));
  EXPECT_EQ(incident.compromise_end, At(125));
  EXPECT_EQ(incident.created_by, "00Tsecops");
  EXPECT_EQ(Stored(incident.id).title, "Support workstation dev1 taken over");

  const Json view = IncidentView(incident);
  EXPECT_EQ(view["indicators"]["deviceIds"], Json::array({"dev1"}));
  EXPECT_EQ(view["compromiseWindow"]["start"], FormatRfc3339(At(95)));
  EXPECT_EQ(view["scope"], nullptr);

  std::vector<Json> events = ProviderEvents("security.incident.declare");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(events[0]["actor"]["id"], "00Tsecops");
  EXPECT_EQ(events[0]["target"][0]["id"], incident.id);
  const Json& debug = events[0]["debugContext"]["debugData"];
  EXPECT_EQ(debug["incidentId"], incident.id);
  EXPECT_EQ(debug["deviceIds"], "1");
  EXPECT_EQ(debug["operatorIds"], "0");
}

TEST_F(IncidentsTest, TheCompromiseWindowDefaultsToTheWindow) {
  Json definition = Definition();
  definition.erase("compromiseWindow");
  auto incident = incidents_->Declare(admin_, definition);
  ASSERT_TRUE(incident.ok()) << incident.status();
  EXPECT_EQ(incident->compromise_start, At(0));
  EXPECT_EQ(incident->compromise_end, At(200));
}

TEST_F(IncidentsTest, DeclareRefusesBadInputNamingTheFieldAndRecordsTheRefusal) {
  struct Case {
    const char* field;
    std::function<void(Json&)> edit;
  };
  const std::vector<Case> cases = {
      {"title", [](Json& d) { d["title"] = ""; }},
      {"title", [](Json& d) { d["title"] = std::string(201, 'x'); }},
      {"title", [](Json& d) { d.erase("title"); }},
      {"indicators", [](Json& d) { d["indicators"] = Json::object(); }},
      {"indicators", [](Json& d) { d["indicators"]["ipRanges"] = {"10.0.0.1/8"}; }},
      {"window", [](Json& d) { d["window"]["end"] = FormatRfc3339(At(0)); }},
      {"window", [](Json& d) { d["window"]["start"] = "yesterday"; }},
      {"window", [](Json& d) { d["window"]["end"] = FormatRfc3339(At(367 * 24 * 60)); }},
      {"compromiseWindow", [](Json& d) { d["compromiseWindow"] = "all day"; }},
      {"notes", [](Json& d) { d["notes"] = 42; }},
      {"severity", [](Json& d) { d["severity"] = "high"; }},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    Json definition = Definition();
    cases[i].edit(definition);
    auto incident = incidents_->Declare(admin_, definition);
    ASSERT_TRUE(absl::IsInvalidArgument(incident.status())) << i << ": " << incident.status();
    EXPECT_EQ(ErrorCodeOf(incident.status()), "E0000001");
    EXPECT_EQ(Message(incident.status()), fmt::format("Api validation failed: {}", cases[i].field))
        << i;
    ASSERT_FALSE(ErrorCausesOf(incident.status()).empty());
    EXPECT_THAT(ErrorCausesOf(incident.status())[0], HasSubstr(cases[i].field)) << i;
    std::vector<Json> events = ProviderEvents("security.incident.declare");
    ASSERT_EQ(events.size(), i + 1);
    EXPECT_EQ(events.back()["outcome"]["result"], "FAILURE");
    EXPECT_EQ(events.back()["outcome"]["reason"], "invalid_input");
  }
  EXPECT_THAT(incidents_->List(10).value(), IsEmpty());
  // The window may be exactly 366 days.
  Json longest = Definition();
  longest["window"]["end"] = FormatRfc3339(At(366 * 24 * 60));
  EXPECT_TRUE(incidents_->Declare(admin_, longest).ok());
}

TEST_F(IncidentsTest, ScopeFindsPotentialAndConfirmedTenantsAndStoresTheResult) {
  Activity();
  const store::IncidentRecord incident = Declared();
  EXPECT_TRUE(absl::IsNotFound(incidents_->LastScope(incident.id).status()));

  auto scope = incidents_->Scope(admin_, incident.id);
  ASSERT_TRUE(scope.ok()) << scope.status();
  EXPECT_THAT(scope->PotentialTenantIds(), ElementsAre("00oacme", "00oglobex", "00oinitech"));
  EXPECT_THAT(scope->ConfirmedTenantIds(), ElementsAre("00oacme", "00oglobex"));
  const TenantScope& acme = scope->tenants[0];
  EXPECT_EQ(acme.tenant_name, "acme");
  EXPECT_EQ(acme.views, 2);
  EXPECT_EQ(acme.attempts, 1);
  EXPECT_EQ(acme.refusals, 1);
  ASSERT_EQ(acme.timeline.size(), 3u);
  EXPECT_EQ(acme.timeline[0].fields, "id,profile.email (masked)");

  const store::IncidentRecord stored = Stored(incident.id);
  EXPECT_EQ(stored.status, "SCOPED");
  EXPECT_EQ(IncidentView(stored)["scope"], (Json{{"potential", 3}, {"confirmed", 2}}));
  auto last = incidents_->LastScope(incident.id);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ((*last)["tenants"][0]["timeline"].size(), 3u);
  // What is stored reads back as what was found.
  auto reread = ParseStoredScope(stored.scope_json);
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(reread->ToJson(), scope->ToJson());

  std::vector<Json> events = ProviderEvents("security.incident.scope");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["potential"], "3");
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["confirmed"], "2");
}

TEST_F(IncidentsTest, AStepOnAnUnknownIncidentIsNotFoundAndRecorded) {
  EXPECT_TRUE(absl::IsNotFound(incidents_->Scope(admin_, "incnope").status()));
  EXPECT_TRUE(
      absl::IsNotFound(incidents_->Notify(admin_, "incnope", Audience::kPotential).status()));
  EXPECT_TRUE(absl::IsNotFound(incidents_->Close(admin_, "incnope", "").status()));
  EXPECT_TRUE(absl::IsNotFound(incidents_->Evidence(admin_, "incnope", "acme").status()));
  EXPECT_TRUE(absl::IsNotFound(incidents_->Report("incnope", ReportFormat::kMarkdown).status()));
  for (const char* type : {"security.incident.scope", "security.incident.notify",
                           "security.incident.close", "security.incident.evidence"}) {
    std::vector<Json> events = ProviderEvents(type);
    ASSERT_EQ(events.size(), 1u) << type;
    EXPECT_EQ(events[0]["outcome"]["reason"], "not_found") << type;
  }
}

TEST_F(IncidentsTest, TheLifecycleOnlyMovesForwardAndNothingWorksAfterClose) {
  Activity();
  AddContact("acme", "sct1", store::kContactWebhook);
  const store::IncidentRecord incident = Declared();

  // Before scoping: no evidence, no notification.
  auto early = incidents_->Notify(admin_, incident.id, Audience::kPotential);
  ASSERT_TRUE(absl::IsAborted(early.status())) << early.status();
  EXPECT_EQ(ReasonOf(early.status()), "incident_not_scoped");
  EXPECT_EQ(ErrorCodeOf(early.status()), "E0000038");
  EXPECT_EQ(ReasonOf(incidents_->Evidence(admin_, incident.id, "acme").status()),
            "incident_not_scoped");
  EXPECT_THAT(Outbox(incident.id), IsEmpty());
  EXPECT_THAT(Notices(), IsEmpty());
  EXPECT_EQ(Stored(incident.id).status, "DECLARED");

  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  EXPECT_EQ(Stored(incident.id).status, "SCOPED");
  ASSERT_TRUE(incidents_->Notify(admin_, incident.id, Audience::kPotential).ok());
  EXPECT_EQ(Stored(incident.id).status, "NOTIFIED");
  // Re-scoping is allowed and does not move the status back.
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  EXPECT_EQ(Stored(incident.id).status, "NOTIFIED");

  clock_.Advance(absl::Hours(1));
  auto closed = incidents_->Close(admin_, incident.id, "Contract ended.");
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->status, "CLOSED");
  EXPECT_EQ(closed->notes, "Reported by the contractor's SOC\n\nContract ended.");
  const store::IncidentRecord after_close = Stored(incident.id);
  EXPECT_EQ(after_close.status, "CLOSED");
  EXPECT_EQ(
      ProviderEvents("security.incident.close")[0]["debugContext"]["debugData"]["previousStatus"],
      "NOTIFIED");

  clock_.Advance(absl::Hours(1));
  std::vector<absl::Status> refused = {
      incidents_->Scope(admin_, incident.id).status(),
      incidents_->Notify(admin_, incident.id, Audience::kConfirmed).status(),
      incidents_->Evidence(admin_, incident.id, "acme").status(),
      incidents_->Close(admin_, incident.id, "again").status()};
  for (const absl::Status& st : refused) {
    EXPECT_TRUE(absl::IsAborted(st)) << st;
    EXPECT_EQ(ReasonOf(st), "incident_closed") << st;
  }
  const store::IncidentRecord untouched = Stored(incident.id);
  EXPECT_EQ(untouched.updated, after_close.updated);
  EXPECT_EQ(untouched.notes, after_close.notes);
  EXPECT_EQ(untouched.scope_json, after_close.scope_json);
  EXPECT_EQ(Outbox(incident.id).size(), 1u);
  for (const char* type : {"security.incident.scope", "security.incident.notify",
                           "security.incident.evidence", "security.incident.close"}) {
    std::vector<Json> events = ProviderEvents(type);
    ASSERT_FALSE(events.empty()) << type;
    EXPECT_EQ(events.back()["outcome"]["result"], "FAILURE") << type;
    EXPECT_EQ(events.back()["outcome"]["reason"], "incident_closed") << type;
  }
}

TEST_F(IncidentsTest, NotifyQueuesOneRowPerTenantAndContactOnceAndPublishesOneNotice) {
  Activity();
  AddContact("acme", "sct-acme-hook", store::kContactWebhook);
  AddContact("acme", "sct-acme-mail", store::kContactEmail);
  AddContact("globex", "sct-globex-hook", store::kContactWebhook);
  const store::IncidentRecord incident = Declared();
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());

  clock_.Set(At(400));
  auto first = incidents_->Notify(admin_, incident.id, Audience::kPotential);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->created, 3);
  EXPECT_EQ(first->existing, 0);
  EXPECT_EQ(first->without_contacts, 1);  // initech
  ASSERT_EQ(first->tenants.size(), 3u);
  EXPECT_EQ(first->tenants[2].tenant_name, "initech");
  EXPECT_EQ(first->tenants[2].contacts, 0);
  EXPECT_EQ(first->incident.status, "NOTIFIED");
  const Json summary = first->ToJson();
  EXPECT_EQ(summary["tenants"], 3);
  EXPECT_EQ(summary["notifications"], 3);
  EXPECT_EQ(summary["tenantsWithoutContacts"], 1);

  std::vector<store::NotificationRecord> rows = Outbox(incident.id);
  ASSERT_EQ(rows.size(), 3u);
  std::set<std::string> pairs;
  for (const store::NotificationRecord& row : rows) {
    pairs.insert(row.tenant_id.value() + "/" + row.contact_id);
    EXPECT_TRUE(row.id.starts_with("ntf")) << row.id;
    EXPECT_EQ(row.status, "PENDING");
    EXPECT_EQ(row.next_attempt, At(400));
    EXPECT_EQ(row.attempts, 0);
    EXPECT_EQ(row.channel, row.contact_id.ends_with("mail") ? "email" : "webhook");
  }
  EXPECT_THAT(pairs, ElementsAre("00oacme/sct-acme-hook", "00oacme/sct-acme-mail",
                                 "00oglobex/sct-globex-hook"));
  // The payload the receiver gets (Standard Webhooks body).
  const store::NotificationRecord& acme_row =
      rows[0].tenant_id.value() == "00oacme" ? rows[0] : rows[1];
  const Json payload = Json::parse(acme_row.payload_json);
  EXPECT_EQ(payload["type"], "security.incident.notification");
  EXPECT_EQ(payload["timestamp"], FormatRfc3339(At(400)));
  const Json& data = payload["data"];
  EXPECT_EQ(data["notificationId"], acme_row.id);
  EXPECT_EQ(data["incidentId"], incident.id);
  EXPECT_EQ(data["title"], incident.title);
  EXPECT_EQ(data["tenant"], (Json{{"id", "00oacme"}, {"name", "acme"}}));
  EXPECT_EQ(data["confirmed"], true);
  EXPECT_EQ(data["compromiseWindow"]["end"], FormatRfc3339(At(125)));
  EXPECT_EQ(
      data["summary"],
      (Json{{"views", 2}, {"attempts", 1}, {"refusals", 1}, {"successes", 2}, {"grantsUsed", 1}}));
  EXPECT_EQ(data["evidence"],
            fmt::format("/t/acme/api/v1/security/incidents/{}/evidence", incident.id));
  EXPECT_EQ(data["acknowledge"],
            fmt::format("/t/acme/api/v1/security/notifications/{}/acknowledge", acme_row.id));

  // One public notice, naming no tenant.
  std::vector<store::StatusNoticeRecord> notices = Notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].kind, "security");
  EXPECT_EQ(notices[0].incident_id, incident.id);
  for (const char* name : {"acme", "globex", "initech"}) {
    EXPECT_THAT(notices[0].title + notices[0].body, Not(HasSubstr(name)));
  }
  EXPECT_THAT(notices[0].body, HasSubstr("notified the 3 affected customer(s)"));

  // Again: nothing new; the notice is updated, not duplicated.
  clock_.Set(At(500));
  auto second = incidents_->Notify(admin_, incident.id, Audience::kPotential);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->created, 0);
  EXPECT_EQ(second->existing, 3);
  EXPECT_EQ(Outbox(incident.id).size(), 3u);
  notices = Notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].published, At(400));
  EXPECT_EQ(notices[0].updated, At(500));
  EXPECT_EQ(ProviderEvents("status.notice.publish").size(), 1u);
  EXPECT_EQ(ProviderEvents("status.notice.update").size(), 1u);

  // A contact added later is notified by the next call, and only it.
  AddContact("initech", "sct-initech-mail", store::kContactEmail);
  auto third = incidents_->Notify(admin_, incident.id, Audience::kPotential);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->created, 1);
  EXPECT_EQ(third->without_contacts, 0);
  EXPECT_EQ(Outbox(incident.id).size(), 4u);

  std::vector<Json> events = ProviderEvents("security.incident.notify");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["notificationsCreated"], "3");
  EXPECT_EQ(events[1]["debugContext"]["debugData"]["notificationsCreated"], "0");
  EXPECT_EQ(events[1]["debugContext"]["debugData"]["notificationsExisting"], "3");
}

TEST_F(IncidentsTest, TheConfirmedAudienceIsOnlyTheConfirmedTenants) {
  Activity();
  AddContact("acme", "sct1", store::kContactWebhook);
  AddContact("initech", "sct2", store::kContactWebhook);
  const store::IncidentRecord incident = Declared();
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  auto notified = incidents_->Notify(admin_, incident.id, Audience::kConfirmed);
  ASSERT_TRUE(notified.ok()) << notified.status();
  ASSERT_EQ(notified->tenants.size(), 2u);
  EXPECT_EQ(notified->tenants[0].tenant_name, "acme");
  EXPECT_EQ(notified->tenants[1].tenant_name, "globex");
  EXPECT_EQ(notified->without_contacts, 1);
  std::vector<store::NotificationRecord> rows = Outbox(incident.id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].tenant_id.value(), "00oacme");
  EXPECT_EQ(ParseAudience("everyone").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IncidentsTest, NotificationsAndTheTenantsViewShowTheOutboxPerTenant) {
  Activity();
  AddContact("acme", "sct1", store::kContactWebhook);
  const store::IncidentRecord incident = Declared();
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  ASSERT_TRUE(incidents_->Notify(admin_, incident.id, Audience::kPotential).ok());

  auto view = incidents_->Notifications(incident.id);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->size(), 3u);
  EXPECT_EQ((*view)[0].tenant_name, "acme");
  EXPECT_TRUE((*view)[0].confirmed);
  ASSERT_EQ((*view)[0].rows.size(), 1u);
  EXPECT_EQ(TenantNotificationsView((*view)[0])["notifications"][0]["status"], "PENDING");
  EXPECT_EQ((*view)[2].tenant_name, "initech");
  EXPECT_TRUE((*view)[2].in_scope);
  EXPECT_FALSE((*view)[2].confirmed);
  EXPECT_THAT((*view)[2].rows, IsEmpty());

  auto acme = incidents_->TenantIncidents(tenants_["acme"].id);
  ASSERT_TRUE(acme.ok()) << acme.status();
  ASSERT_EQ(acme->size(), 1u);
  const Json shown = TenantIncidentView((*acme)[0], "acme");
  EXPECT_EQ(shown["id"], incident.id);
  EXPECT_EQ(shown["confirmed"], true);
  EXPECT_EQ(shown["summary"]["refusals"], 1);
  EXPECT_FALSE(shown.contains("indicators"));
  EXPECT_THAT(incidents_->TenantIncidents(tenants_["globex"].id).value(), IsEmpty());

  // A tenant that was not notified does not see the incident at all.
  auto globex = incidents_->TenantEvidence(admin_, tenants_["globex"], incident.id);
  EXPECT_TRUE(absl::IsNotFound(globex.status())) << globex.status();
}

TEST_F(IncidentsTest, EvidenceHoldsTheTenantsTimelineAndVerifies) {
  Activity();
  const store::IncidentRecord incident = Declared();
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  sequencer_ = std::make_unique<audit::Sequencer>(
      store(), *keys_, clock_,
      audit::SequencerOptions{.host = std::string(kHost), .interval = absl::Milliseconds(5)});
  sequencer_->Start();

  auto file = incidents_->Evidence(admin_, incident.id, "acme");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->file_name, fmt::format("evidence-{}-acme.json", incident.id));
  EXPECT_EQ(file->events, 3u);
  EXPECT_EQ(file->tenant.name, "acme");
  auto package = ParseEvidenceFile(file->bytes);
  ASSERT_TRUE(package.ok()) << package.status();
  EvidenceSummary summary;
  ASSERT_TRUE(VerifyEvidence(*package, Trusted(), &summary).ok());
  EXPECT_EQ(summary.tenant_name, "acme");
  EXPECT_EQ(summary.incident_id, incident.id);
  EXPECT_EQ(summary.event_count, 3u);
  EXPECT_EQ(summary.first_event, At(10));
  EXPECT_EQ(summary.last_event, At(105));
  // A flipped byte fails.
  std::string edited = file->bytes;
  edited[edited.find("support.view") + 8] ^= 1;
  auto reparsed = ParseEvidenceFile(edited);
  EXPECT_TRUE(!reparsed.ok() || !VerifyEvidence(*reparsed, Trusted(), nullptr).ok());

  std::vector<Json> events = ProviderEvents("security.incident.evidence");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["outcome"]["result"], "SUCCESS");
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["tenantName"], "acme");
  EXPECT_EQ(events[0]["debugContext"]["debugData"]["events"], "3");

  // Umbrella was reached only by another vendor: not in scope. An unknown tenant neither.
  for (const char* name : {"umbrella", "nosuch"}) {
    auto refused = incidents_->Evidence(admin_, incident.id, name);
    EXPECT_TRUE(absl::IsNotFound(refused.status())) << name << ": " << refused.status();
  }
  events = ProviderEvents("security.incident.evidence");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2]["outcome"]["result"], "FAILURE");

  // The tenant's own route gives the same content once the tenant was notified.
  AddContact("globex", "sct1", store::kContactEmail);
  ASSERT_TRUE(incidents_->Notify(admin_, incident.id, Audience::kConfirmed).ok());
  audit::RequestContext tenant_admin;
  tenant_admin.actor = {"00Tglobexadmin", "ApiToken", "globex-admin", "globex-admin"};
  auto own = incidents_->TenantEvidence(tenant_admin, tenants_["globex"], incident.id);
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(own->events, 2u);
  auto own_package = ParseEvidenceFile(own->bytes);
  ASSERT_TRUE(own_package.ok());
  EXPECT_TRUE(VerifyEvidence(*own_package, Trusted(), nullptr).ok());
}

TEST_F(IncidentsTest, EvidenceWithoutASequencerTimesOutAndSaysSo) {
  Activity();
  incidents_ = MakeIncidents(absl::Milliseconds(200));
  const store::IncidentRecord incident = Declared();
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  auto file = incidents_->Evidence(admin_, incident.id, "acme");
  ASSERT_TRUE(absl::IsDeadlineExceeded(file.status())) << file.status();
  EXPECT_THAT(Message(file.status()), HasSubstr("not sequenced"));
  std::vector<Json> events = ProviderEvents("security.incident.evidence");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["outcome"]["result"], "FAILURE");
  EXPECT_EQ(events[0]["outcome"]["reason"], "not_sequenced");
}

TEST_F(IncidentsTest, TheReportComesFromTheStoredScope) {
  Activity();
  const store::IncidentRecord incident = Declared();
  auto before = incidents_->Report(incident.id, ReportFormat::kMarkdown);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_THAT(*before, HasSubstr("Not scoped yet."));
  ASSERT_TRUE(incidents_->Scope(admin_, incident.id).ok());
  auto md = incidents_->Report(incident.id, ReportFormat::kMarkdown);
  ASSERT_TRUE(md.ok()) << md.status();
  EXPECT_THAT(*md, HasSubstr("| acme | yes | 2 | 1 | 1 | 2 | 1 |"));
  EXPECT_THAT(*md, HasSubstr("| initech | no | 1 | 0 | 0 | 1 | 1 |"));
  EXPECT_THAT(*md, HasSubstr("### globex (00oglobex)"));
  auto html = incidents_->Report(incident.id, ReportFormat::kHtml);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_THAT(*html, HasSubstr("<h3>globex (00oglobex)</h3>"));
}

TEST_F(IncidentsTest, ListIsNewestFirst) {
  const store::IncidentRecord first = Declared();
  clock_.Advance(absl::Minutes(1));
  const store::IncidentRecord second = Declared();
  auto list = incidents_->List(10);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id, second.id);
  EXPECT_EQ((*list)[1].id, first.id);
  EXPECT_TRUE(absl::IsInvalidArgument(incidents_->List(0).status()));
}

}  // namespace
}  // namespace custos::incident
