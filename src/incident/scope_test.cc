#include "incident/scope.h"

#include <memory>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::incident {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

absl::Time At(int minutes) { return kT0 + absl::Minutes(minutes); }

class ScopeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    for (const char* name : {"acme", "globex", "initech", "umbrella", "hooli"}) {
      ASSERT_TRUE(
          store()
              .Write([&](store::Transaction& tx) {
                return tx.Tenants().Insert(store::TenantRecord{
                    .id = TenantId(std::string("ten") + name), .name = name, .created = kT0});
              })
              .ok());
    }
  }

  store::Store& store() { return temp_->store(); }

  // One support event of `op` (vendor vnd1 unless said) on `tenant` at `minute`.
  void Reach(const std::string& tenant, int minute, const std::string& op,
             const std::string& device, const std::string& session, const std::string& ip,
             std::string event_type = "support.view", std::string outcome = "SUCCESS",
             bool by_operator = true, std::string vendor = "vnd1", std::string resource = "") {
    store::SupportActivityRecord row{.published = At(minute),
                                     .tenant_id = TenantId("ten" + tenant),
                                     .tenant_event_uuid = fmt::format("uuid-{}", ++count_),
                                     .provider_event_uuid = fmt::format("puuid-{}", count_),
                                     .event_type = std::move(event_type),
                                     .outcome = std::move(outcome),
                                     .actor_id = by_operator ? op : "00uadmin",
                                     .by_operator = by_operator,
                                     .operator_id = op,
                                     .vendor_id = std::move(vendor),
                                     .device_id = device,
                                     .session_id = session,
                                     .ip = ip,
                                     .grant_id = "sgr-" + tenant,
                                     .resource = std::move(resource)};
    ASSERT_TRUE(store()
                    .Write([&](store::Transaction& tx) {
                      return tx.Incidents().InsertActivity(row).status();
                    })
                    .ok());
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  int count_ = 0;
};

TEST(IpRangeTest, ParsesAndMatchesBothFamilies) {
  auto v4 = IpRange::Parse("203.0.113.0/24");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_TRUE(v4->Contains("203.0.113.77"));
  EXPECT_FALSE(v4->Contains("203.0.114.1"));
  EXPECT_FALSE(v4->Contains("2001:db8::1"));
  EXPECT_FALSE(v4->Contains("not an ip"));
  auto one = IpRange::Parse("198.51.100.7");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->text(), "198.51.100.7/32");
  EXPECT_TRUE(one->Contains("198.51.100.7"));
  EXPECT_FALSE(one->Contains("198.51.100.8"));
  auto v6 = IpRange::Parse("2001:db8::/33");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_TRUE(v6->Contains("2001:db8:7fff::1"));
  EXPECT_FALSE(v6->Contains("2001:db8:8000::1"));
  auto all = IpRange::Parse("0.0.0.0/0");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->Contains("8.8.8.8"));
}

TEST(IpRangeTest, RefusesMalformedRangesNamingThem) {
  for (const char* bad : {"", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/08", "10.0.0.0/x", "10.0.0.1/8",
                          "host.example", "2001:db8::/129", "::1/-1"}) {
    auto range = IpRange::Parse(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(range.status())) << bad;
  }
  EXPECT_THAT(std::string(IpRange::Parse("10.0.0.1/8").status().message()),
              HasSubstr("beyond the /8 prefix"));
}

TEST(IndicatorsTest, RoundTripsAndRefusesBadInput) {
  auto parsed = Indicators::FromJson(
      Json::parse(R"({"vendorIds":["vnd1","vnd1"],"ipRanges":["203.0.113.9/32"]})"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->vendor_ids, ElementsAre("vnd1"));  // duplicates folded
  EXPECT_EQ(parsed->ToJson()["ipRanges"], Json::array({"203.0.113.9/32"}));
  for (const char* bad :
       {R"({})", R"([])", R"({"vendorIds":"vnd1"})", R"({"vendorIds":[""]})",
        R"({"vendorIds":[1]})", R"({"hosts":["x"]})", R"({"ipRanges":["10.0.0.0/40"]})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(Indicators::FromJson(Json::parse(bad)).status())) << bad;
  }
}

TEST_F(ScopeTest, PotentialIsEveryTenantTheVendorReachedConfirmedWhatTheDeviceReached) {
  // Day-to-day work of two engineers of vnd1 and one of another vendor.
  Reach("acme", 10, "op1", "dev1", "s1", "10.0.0.1");
  Reach("globex", 20, "op2", "dev2", "s2", "10.0.0.2");
  Reach("initech", 30, "op2", "dev2", "s2", "10.0.0.2", "support.gate.deny", "DENY");
  Reach("hooli", 40, "op9", "dev9", "s9", "10.9.0.9", "support.view", "SUCCESS", true, "vnd9");
  // A tenant admin approving op1's request on umbrella is not op1 reaching umbrella.
  Reach("umbrella", 50, "op1", "", "", "192.0.2.1", "support.access.approve", "SUCCESS", false);
  // The compromise: dev1 taken over from 203.0.113.5 between minute 100 and 125.
  Reach("acme", 105, "op1", "dev1", "s7", "203.0.113.5");
  Reach("globex", 110, "op1", "dev1", "s7", "203.0.113.5");
  Reach("acme", 115, "op1", "dev1", "s7", "203.0.113.5", "support.action.refused", "DENY");
  // A reset refused already at the tenant check (the grant is read-only) is an attempt too.
  Reach("globex", 116, "op1", "dev1", "s7", "203.0.113.5", "support.gate.deny", "DENY", true,
        "vnd1", "password_reset");
  // Outside the window.
  Reach("hooli", 500, "op1", "dev1", "s1", "10.0.0.1");

  Indicators indicators{
      .vendor_ids = {"vnd1"}, .device_ids = {"dev1"}, .ip_ranges = {"203.0.113.0/24"}};
  auto result =
      ScopeIncident(store(), indicators, Window{At(0), At(200)}, Window{At(100), At(125)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->PotentialTenantIds(), ElementsAre("tenacme", "tenglobex", "teninitech"));
  EXPECT_THAT(result->ConfirmedTenantIds(), ElementsAre("tenacme", "tenglobex"));
  EXPECT_EQ(result->potential, 3);
  EXPECT_EQ(result->confirmed, 2);

  const TenantScope& acme = result->tenants[0];
  EXPECT_EQ(acme.tenant_name, "acme");
  EXPECT_EQ(acme.views, 2);
  EXPECT_EQ(acme.attempts, 1);
  EXPECT_EQ(acme.refusals, 1);
  EXPECT_EQ(acme.successes, 2);
  EXPECT_THAT(acme.grants_used, ElementsAre("sgr-acme"));
  ASSERT_EQ(acme.timeline.size(), 3u);
  EXPECT_FALSE(acme.timeline[0].confirmed);  // minute 10: before the compromise
  EXPECT_TRUE(acme.timeline[1].confirmed);
  EXPECT_EQ(acme.timeline[2].event_type, "support.action.refused");
  const TenantScope& globex = result->tenants[1];
  EXPECT_EQ(globex.attempts, 1);
  EXPECT_EQ(globex.refusals, 1);
  const TenantScope& initech = result->tenants[2];
  EXPECT_FALSE(initech.confirmed);
  EXPECT_EQ(initech.refusals, 1);

  Json json = result->ToJson();
  EXPECT_EQ(json["potential"], 3);
  EXPECT_EQ(json["tenants"][0]["timeline"][1]["ip"], "203.0.113.5");
  EXPECT_FALSE(result->ToJson(false)["tenants"][0].contains("timeline"));
}

TEST_F(ScopeTest, AnAddressRangeAloneFindsUnauthenticatedAttemptsToo) {
  Reach("acme", 10, "op1", "dev1", "s1", "10.0.0.1");
  Reach("umbrella", 12, "", "", "", "203.0.113.9", "support.gate.deny", "DENY", false, "");
  // "unknown" actor: an attempt nobody could be identified for.
  ASSERT_TRUE(store()
                  .Write([&](store::Transaction& tx) {
                    return tx.Incidents()
                        .InsertActivity({.published = At(13),
                                         .tenant_id = TenantId("tenhooli"),
                                         .tenant_event_uuid = "u-x",
                                         .provider_event_uuid = "p-x",
                                         .event_type = "support.gate.deny",
                                         .outcome = "DENY",
                                         .actor_id = "unknown",
                                         .ip = "203.0.113.10"})
                        .status();
                  })
                  .ok());
  auto result = ScopeIncident(store(), Indicators{.ip_ranges = {"203.0.113.0/24"}},
                              Window{At(0), At(60)}, Window{At(0), At(60)});
  ASSERT_TRUE(result.ok()) << result.status();
  // umbrella's row has no operator and is not by_operator with a known actor: not a reach.
  EXPECT_THAT(result->PotentialTenantIds(), ElementsAre("tenhooli"));
  EXPECT_THAT(result->ConfirmedTenantIds(), ElementsAre("tenhooli"));
}

TEST_F(ScopeTest, NothingMatchedIsAnEmptyScopeNotTheWholeWindow) {
  Reach("acme", 10, "op1", "dev1", "s1", "10.0.0.1");
  auto result = ScopeIncident(store(), Indicators{.ip_ranges = {"198.51.100.0/24"}},
                              Window{At(0), At(60)}, Window{At(0), At(60)});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->tenants, IsEmpty());
  auto by_op = ScopeIncident(store(), Indicators{.operator_ids = {"op-unknown"}},
                             Window{At(0), At(60)}, Window{At(0), At(60)});
  ASSERT_TRUE(by_op.ok());
  EXPECT_THAT(by_op->tenants, IsEmpty());
}

TEST_F(ScopeTest, PagesThroughManyRows) {
  for (int i = 0; i < 12000; i += 1) {
    // Written in a few big transactions: the test is about paging, not the store.
    if (i % 4000 == 0) {
      ASSERT_TRUE(store()
                      .Write([&](store::Transaction& tx) -> absl::Status {
                        for (int j = i; j < i + 4000; ++j) {
                          store::SupportActivityRecord row{
                              .published = kT0 + absl::Seconds(j),
                              .tenant_id = TenantId(j % 2 == 0 ? "tenacme" : "tenglobex"),
                              .tenant_event_uuid = fmt::format("u{}", j),
                              .provider_event_uuid = fmt::format("p{}", j),
                              .event_type = "support.view",
                              .outcome = "SUCCESS",
                              .actor_id = "op1",
                              .by_operator = true,
                              .operator_id = "op1"};
                          auto seq = tx.Incidents().InsertActivity(row);
                          if (!seq.ok()) return seq.status();
                        }
                        return absl::OkStatus();
                      })
                      .ok());
    }
  }
  auto result =
      ScopeIncident(store(), Indicators{.operator_ids = {"op1"}},
                    Window{kT0, kT0 + absl::Hours(10)}, Window{kT0, kT0 + absl::Seconds(1)});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->tenants.size(), 2u);
  EXPECT_EQ(result->tenants[0].views + result->tenants[1].views, 12000);
  EXPECT_EQ(result->confirmed, 0);  // no device, session or address indicated
}

TEST_F(ScopeTest, RefusesEmptyWindowsAndIndicators) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      ScopeIncident(store(), Indicators{}, Window{At(0), At(1)}, Window{At(0), At(1)}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ScopeIncident(store(), Indicators{.vendor_ids = {"v"}},
                                                    Window{At(1), At(1)}, Window{At(0), At(1)})
                                          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ScopeIncident(store(), Indicators{.vendor_ids = {"v"}},
                                                    Window{At(0), At(1)}, Window{At(2), At(1)})
                                          .status()));
}

}  // namespace
}  // namespace custos::incident
