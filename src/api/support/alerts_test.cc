#include "api/support/alerts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/time_format.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::api::support {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> HeadersOf(const Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& [k, v] : r.headers) {
    if (k == name) out.push_back(v);
  }
  return out;
}

class AlertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    hasher_ = std::make_unique<crypto::PasswordHasher>(crypto::Argon2Params{8, 1});
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    services_ = std::make_unique<Services>(
        Services{temp_->store(), config_, clock_, random_, *hasher_, *sealer_});
    ASSERT_TRUE(temp_->store()
                    .Write([&](store::Transaction& tx) -> absl::Status {
                      store::VendorRecord vendor{.id = "ven1",
                                                 .name = "Harbourline Support",
                                                 .employing_entity = "Harbourline Ltd",
                                                 .country = "GB",
                                                 .status = std::string(store::kStatusActive),
                                                 .created = clock_.Now(),
                                                 .status_changed = clock_.Now()};
                      if (auto st = tx.Support().InsertVendor(vendor); !st.ok()) return st;
                      for (const auto& [id, status] : {std::pair{"00uop1", store::kStatusActive},
                                                       {"00uop2", store::kStatusSuspended}}) {
                        store::OperatorRecord op{.user_id = UserId(id),
                                                 .vendor_id = "ven1",
                                                 .status = std::string(status),
                                                 .created = clock_.Now(),
                                                 .status_changed = clock_.Now()};
                        if (auto st = tx.Support().InsertOperator(op); !st.ok()) return st;
                      }
                      return absl::OkStatus();
                    })
                    .ok());
  }

  // Appends an event to the provider log at the clock's time, then moves the clock on.
  void Append(std::string_view type, const std::string& operator_id, const std::string& rule,
              std::map<std::string, std::string> extra = {}) {
    audit::RequestContext ctx;
    ctx.actor = {operator_id, "User", operator_id + "@contractor.example", "An Operator"};
    ctx.ip_address = "203.0.113.9";
    audit::EventSpec spec{.event_type = std::string(type),
                          .display_message = "Support anomaly rule fired",
                          .severity = "WARN",
                          .reason = rule,
                          .debug_data = {{"rule", rule},
                                         {"detail", "reached 6 tenants in 60m (limit 5)"},
                                         {"operatorId", operator_id},
                                         {"operatorLogin", operator_id + "@contractor.example"},
                                         {"vendorId", "ven1"},
                                         {"vendorName", "Harbourline Support"},
                                         {"employingEntity", "Harbourline Ltd"},
                                         {"country", "GB"},
                                         {"deviceId", "dev7"}}};
    spec.debug_data.merge(extra);
    store::EventRecord event =
        audit::MakeEvent(TenantId(std::string(store::kProviderLogId)), ctx, spec, clock_, random_);
    ASSERT_TRUE(
        temp_->store()
            .Write([&](store::Transaction& tx) { return tx.Events().Append(event).status(); })
            .ok());
    uuids_.push_back(event.uuid);
    clock_.Advance(absl::Minutes(1));
  }

  Response List(absl::flat_hash_map<std::string, std::string> query = {}) {
    Request request;
    request.method = "GET";
    request.path = "/provider/api/v1/alerts";
    request.target = request.path;
    request.base_url = "https://id.example";
    request.query = std::move(query);
    return Respond(request, ListAlerts(*services_, request));
  }

  static Json Body(const Response& r) {
    absl::StatusOr<Json> j = ParseJson(r.body);
    return j.ok() ? *j : Json();
  }
  static std::vector<std::string> Uuids(const Response& r) {
    std::vector<std::string> out;
    for (const Json& a : Body(r)) out.push_back(a.value("uuid", ""));
    return out;
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{5};
  std::unique_ptr<crypto::PasswordHasher> hasher_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<Services> services_;
  std::vector<std::string> uuids_;  // of every appended event, in order
};

TEST_F(AlertsTest, ListsOnlyAlertsNewestFirstWithWhatTheEventHolds) {
  Append(kAnomalyAlertEvent, "00uop1", "tenant_spread");
  Append("support.gate.allow", "00uop1", "");
  Append(kAnomalyAlertEvent, "00uop2", "refused_actions",
         {{"tenantId", "00oacme"}, {"tenantName", "acme"}});

  Response r = List();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(Uuids(r), ElementsAre(uuids_[2], uuids_[0]));
  const Json newest = Body(r)[0];
  EXPECT_EQ(newest["rule"], "refused_actions");
  EXPECT_EQ(newest["detail"], "reached 6 tenants in 60m (limit 5)");
  EXPECT_EQ(newest["severity"], "WARN");
  EXPECT_EQ(newest["operator"], Json({{"id", "00uop2"}, {"login", "00uop2@contractor.example"}}));
  EXPECT_EQ(newest["vendor"]["name"], "Harbourline Support");
  EXPECT_EQ(newest["vendor"]["employingEntity"], "Harbourline Ltd");
  EXPECT_EQ(newest["vendor"]["country"], "GB");
  EXPECT_EQ(newest["deviceId"], "dev7");
  EXPECT_EQ(newest["ipAddress"], "203.0.113.9");
  EXPECT_EQ(newest["tenant"]["name"], "acme");
  EXPECT_EQ(newest["suspended"], true) << "operator 00uop2 is suspended";
  EXPECT_TRUE(newest["logIndex"].is_null()) << "not sequenced yet";
  const Json oldest = Body(r)[1];
  EXPECT_EQ(oldest["suspended"], false);
  EXPECT_FALSE(oldest.contains("tenant"));
}

TEST_F(AlertsTest, PagesFollowTheNextLink) {
  for (int i = 0; i < 3; ++i) Append(kAnomalyAlertEvent, "00uop1", "new_network");
  Response first = List({{"limit", "2"}});
  ASSERT_EQ(first.status, 200);
  EXPECT_THAT(Uuids(first), ElementsAre(uuids_[2], uuids_[1]));
  std::string next;
  for (const std::string& link : HeadersOf(first, "Link")) {
    if (link.ends_with("rel=\"next\"")) next = link;
  }
  ASSERT_THAT(next, HasSubstr("https://id.example/provider/api/v1/alerts?"));
  const size_t at = next.find("after=");
  ASSERT_NE(at, std::string::npos);
  const std::string cursor = next.substr(at + 6, next.find('>') - at - 6);

  Response second = List({{"limit", "2"}, {"after", cursor}});
  EXPECT_THAT(Uuids(second), ElementsAre(uuids_[0]));
  for (const std::string& link : HeadersOf(second, "Link")) {
    EXPECT_FALSE(link.ends_with("rel=\"next\"")) << "the last page has no next link";
  }
}

TEST_F(AlertsTest, SinceAndUntilBoundTheTime) {
  const absl::Time start = clock_.Now();
  for (int i = 0; i < 3; ++i) Append(kAnomalyAlertEvent, "00uop1", "new_device");
  EXPECT_THAT(Uuids(List({{"since", FormatRfc3339(start + absl::Minutes(1))}})),
              ElementsAre(uuids_[2], uuids_[1]));
  EXPECT_THAT(Uuids(List({{"until", FormatRfc3339(start + absl::Minutes(1))}})),
              ElementsAre(uuids_[0]));
  EXPECT_THAT(Uuids(List({{"since", FormatRfc3339(start + absl::Hours(1))}})), IsEmpty());
}

TEST_F(AlertsTest, BadParametersAre400) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"limit", "0"}, {"limit", "201"}, {"since", "yesterday"}, {"after", "x1"}}) {
    Response r = List({{key, value}});
    EXPECT_EQ(r.status, 400) << key << "=" << value;
    EXPECT_EQ(Body(r)["errorCode"], "E0000001") << key << "=" << value;
  }
}

}  // namespace
}  // namespace custos::api::support
