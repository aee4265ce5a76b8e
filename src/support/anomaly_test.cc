#include "support/anomaly.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::support {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1795976562);

absl::Time At(int minutes) { return kStart + absl::Minutes(minutes); }

// max_tenants 3 and max_refused_actions 2 within 60 minutes.
AnomalyRules SmallRules() {
  return {.max_tenants = 3, .window = absl::Minutes(60), .max_refused_actions = 2};
}

std::string Tenant(int i) { return "tenant" + std::to_string(i); }

TEST(TenantSpreadTest, FiresOnTheFirstTenantOverTheLimit) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(1), At(0)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(2), At(1)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(3), At(2)));
  const std::optional<Alert> alert = detector.OnTenantAccess("op1", Tenant(4), At(3));
  ASSERT_TRUE(alert.has_value());
  EXPECT_EQ(alert->rule, "tenant_spread");
  EXPECT_EQ(alert->detail, "reached 4 tenants in 60m (limit 3)");
}

TEST(TenantSpreadTest, RepeatsOfOneTenantDoNotCount) {
  AnomalyDetector detector(SmallRules());
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(1 + i % 3), At(i % 60)));
  }
}

TEST(TenantSpreadTest, AccessesThatSlidOutOfTheWindowDoNotCount) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(1), At(0)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(2), At(10)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(3), At(20)));
  // Tenant 1 is exactly one window old: out.
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(4), At(60)));
  // Tenant 2 is still in (59 minutes), so this is the fourth.
  EXPECT_TRUE(detector.OnTenantAccess("op1", Tenant(5), At(69)));
}

TEST(TenantSpreadTest, ARepeatKeepsATenantInTheWindow) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(1), At(0)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(2), At(10)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(3), At(20)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(1), At(50)));
  EXPECT_TRUE(detector.OnTenantAccess("op1", Tenant(4), At(65)));
}

TEST(TenantSpreadTest, FiresAgainOnlyAfterDroppingBelowTheLimit) {
  AnomalyDetector detector(SmallRules());
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(i), At(i)));
  EXPECT_TRUE(detector.OnTenantAccess("op1", Tenant(4), At(4)));
  // Still over the limit: no new alert, however many more tenants.
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(5), At(5)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(6), At(30)));
  // At 64 tenants 1..4 are out; 5 and 6 remain (2 <= 3), so the rule re-arms.
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(7), At(64)));
  EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(7), At(64)));
  const std::optional<Alert> again = detector.OnTenantAccess("op1", Tenant(8), At(64));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->detail, "reached 4 tenants in 60m (limit 3)");
}

TEST(TenantSpreadTest, OperatorsAreIndependent) {
  AnomalyDetector detector(SmallRules());
  for (int i = 1; i <= 3; ++i) {
    EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(i), At(i)));
    EXPECT_FALSE(detector.OnTenantAccess("op2", Tenant(i + 10), At(i)));
  }
  EXPECT_TRUE(detector.OnTenantAccess("op1", Tenant(4), At(4)));
  EXPECT_FALSE(detector.OnTenantAccess("op2", Tenant(11), At(5)));
  EXPECT_TRUE(detector.OnTenantAccess("op2", Tenant(14), At(6)));
}

TEST(TenantSpreadTest, ZeroTurnsTheRuleOff) {
  AnomalyRules rules = SmallRules();
  rules.max_tenants = 0;
  AnomalyDetector detector(rules);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(detector.OnTenantAccess("op1", Tenant(i), At(0)));
  // The other rule still works.
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(0)));
  EXPECT_TRUE(detector.OnRefusedAction("op1", At(1)));
}

TEST(RefusedActionsTest, FiresAtTheLimit) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(0)));
  const std::optional<Alert> alert = detector.OnRefusedAction("op1", At(1));
  ASSERT_TRUE(alert.has_value());
  EXPECT_EQ(alert->rule, "refused_actions");
  EXPECT_EQ(alert->detail, "2 guarded actions refused in 60m (limit 2)");
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(2)));
}

TEST(RefusedActionsTest, OldRefusalsSlideOutAndTheRuleRearms) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(0)));
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(60)));  // the first is out
  EXPECT_TRUE(detector.OnRefusedAction("op1", At(61)));
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(62)));  // still at the limit
  // At 121 only the refusal of 62 is in the window: below the limit, so it fires again.
  EXPECT_TRUE(detector.OnRefusedAction("op1", At(121)));
}

TEST(RefusedActionsTest, OperatorsAreIndependentAndZeroIsOff) {
  AnomalyDetector detector(SmallRules());
  EXPECT_FALSE(detector.OnRefusedAction("op1", At(0)));
  EXPECT_FALSE(detector.OnRefusedAction("op2", At(0)));
  EXPECT_TRUE(detector.OnRefusedAction("op1", At(1)));
  EXPECT_TRUE(detector.OnRefusedAction("op2", At(1)));

  AnomalyRules rules = SmallRules();
  rules.max_refused_actions = 0;
  AnomalyDetector off(rules);
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(off.OnRefusedAction("op1", At(i)));
}

TEST(RefusedActionsTest, DetailShowsAWindowThatIsNotWholeMinutes) {
  AnomalyRules rules = SmallRules();
  rules.window = absl::Seconds(90);
  rules.max_refused_actions = 1;
  AnomalyDetector detector(rules);
  const std::optional<Alert> alert = detector.OnRefusedAction("op1", At(0));
  ASSERT_TRUE(alert.has_value());
  EXPECT_EQ(alert->detail, "1 guarded actions refused in 1m30s (limit 1)");
}

TEST(NetworkOfTest, Ipv4IsItsSlash24) {
  EXPECT_EQ(NetworkOf("203.0.113.77"), "203.0.113.0/24");
  EXPECT_EQ(NetworkOf("10.1.2.3"), "10.1.2.0/24");
  EXPECT_EQ(NetworkOf("::ffff:203.0.113.77"), "203.0.113.0/24");
}

TEST(NetworkOfTest, Ipv6IsItsCanonicalSlash64) {
  EXPECT_EQ(NetworkOf("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
  EXPECT_EQ(NetworkOf("2001:0DB8:0001:0002:0000:0000:0000:0001"), "2001:db8:1:2::/64");
  EXPECT_EQ(NetworkOf("2001:db8::1"), "2001:db8::/64");
  EXPECT_EQ(NetworkOf("2001:db8:0:5::9"), "2001:db8:0:5::/64");
  EXPECT_EQ(NetworkOf("::1"), "::/64");
}

TEST(NetworkOfTest, AnythingElseIsItself) {
  EXPECT_EQ(NetworkOf("not an address"), "not an address");
  EXPECT_EQ(NetworkOf("203.0.113.7:443"), "203.0.113.7:443");
  EXPECT_EQ(NetworkOf("300.1.1.1"), "300.1.1.1");
  EXPECT_EQ(NetworkOf(""), "");
  EXPECT_EQ(NetworkOf(std::string_view("1.2.3.4\0x", 9)), std::string("1.2.3.4\0x", 9));
}

}  // namespace
}  // namespace custos::support
