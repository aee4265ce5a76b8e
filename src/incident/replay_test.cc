#include "incident/replay.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/password_hasher.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "incident/scope.h"
#include "store/sqlite/temp_sqlite_store.h"
#include "support/plane.h"

namespace custos::incident {
namespace {

using ::testing::SizeIs;

ReplayOptions Small(uint64_t seed = 7) {
  return ReplayOptions{.tenants = 40, .engineers = 6, .staff = 1, .days = 2, .seed = seed};
}

// A step as text, to compare plans.
std::string Describe(const PlannedStep& s) {
  return fmt::format(
      "{} {} op={} attacker={} tenant={} case={} view={} user={} action={} ip={} "
      "refusal={}",
      absl::FormatTime(s.at, absl::UTCTimeZone()), StepKindName(s.kind), s.op, s.attacker, s.tenant,
      s.case_index, static_cast<int>(s.view), s.user, s.action, s.ip, s.refusal);
}

std::vector<std::string> Describe(const ReplayPlan& plan) {
  std::vector<std::string> out;
  for (const PlannedTenant& t : plan.tenants) {
    out.push_back(fmt::format("tenant {} {} {}", t.name, t.policy, t.users.size()));
  }
  for (const PlannedOperator& op : plan.operators) out.push_back("operator " + op.login);
  for (const PlannedStep& s : plan.steps) out.push_back(Describe(s));
  return out;
}

TEST(ReplayPlanTest, TheSameSeedGivesTheSamePlan) {
  absl::StatusOr<ReplayPlan> first = MakeReplayPlan(Small(7));
  absl::StatusOr<ReplayPlan> again = MakeReplayPlan(Small(7));
  absl::StatusOr<ReplayPlan> other = MakeReplayPlan(Small(8));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(Describe(*first), Describe(*again));
  EXPECT_EQ(first->compromised, again->compromised);
  EXPECT_EQ(first->compromised_tenants, again->compromised_tenants);
  EXPECT_EQ(first->compromise.start, again->compromise.start);
  EXPECT_NE(Describe(*first), Describe(*other));
}

TEST(ReplayPlanTest, TellsTheStoryItPromises) {
  absl::StatusOr<ReplayPlan> plan = MakeReplayPlan(ReplayOptions{});
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->tenants, SizeIs(400));
  EXPECT_EQ(plan->compromise.end - plan->compromise.start, absl::Minutes(25));
  EXPECT_EQ(plan->window.end - plan->window.start, absl::Hours(24 * 5));
  // The contractor's engineers reach "up to 366" tenants, the takeover two.
  const std::vector<int> potential = plan->TenantsReached(plan->window, [&](const PlannedStep& s) {
    return plan->operators[static_cast<size_t>(s.op)].contractor;
  });
  EXPECT_GE(potential.size(), 300u) << plan->cases.size() << " cases";
  EXPECT_LE(potential.size(), 380u) << plan->cases.size() << " cases";
  const std::vector<int> confirmed = plan->TenantsReached(
      plan->compromise, [&](const PlannedStep& s) { return s.op == plan->compromised; });
  EXPECT_EQ(confirmed, (std::vector<int>{
                           std::min(plan->compromised_tenants[0], plan->compromised_tenants[1]),
                           std::max(plan->compromised_tenants[0], plan->compromised_tenants[1])}));
}

TEST(ReplayPlanTest, RefusesOptionsOutOfRange) {
  ReplayOptions options = Small();
  options.tenants = 1;
  EXPECT_EQ(MakeReplayPlan(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Small();
  options.days = 0;
  EXPECT_EQ(MakeReplayPlan(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Small();
  options.engineers = 0;
  EXPECT_EQ(MakeReplayPlan(options).status().code(), absl::StatusCode::kInvalidArgument);
}

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    ASSERT_TRUE(support::EnsureProviderTenant(temp_->store(), clock_, random_).ok());
  }

  std::unique_ptr<store::TempSqliteStore> temp_;
  Config config_;
  FakeClock clock_;
  crypto::SeededRandom random_{11};
  // The cheapest Argon2id libsodium allows: the test is about support work, not hashing.
  crypto::PasswordHasher hasher_{crypto::Argon2Params{.memory_kib = 8, .iterations = 1}};
  std::unique_ptr<crypto::Sealer> sealer_ = crypto::Sealer::FromKey(std::string(32, 's'));
};

TEST_F(ReplayTest, ScopesOfTheReplayAreExact) {
  absl::StatusOr<ReplayPlan> made = MakeReplayPlan(Small());
  ASSERT_TRUE(made.ok()) << made.status();
  const ReplayPlan plan = *made;
  Replay replay(temp_->store(), config_, clock_, random_, hasher_, *sealer_, plan);
  int hooked = 0;
  ReplayProgress last;
  absl::StatusOr<ReplayResult> result = replay.Run(
      [&](const store::TenantRecord&, const audit::RequestContext& admin) {
        EXPECT_EQ(admin.actor.type, "ApiToken");
        ++hooked;
        return absl::OkStatus();
      },
      [&](const ReplayProgress& p) { last = p; });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(hooked, 40);
  EXPECT_EQ(last.day, 2);
  EXPECT_EQ(last.steps_done, plan.steps.size());

  absl::StatusOr<ScopeResult> scope =
      ScopeIncident(temp_->store(), result->indicators, result->window, result->compromise);
  ASSERT_TRUE(scope.ok()) << scope.status();

  // Expected, from the plan alone: a reach is an operator's step on a tenant.
  auto tenant_ids = [&](const std::set<int>& indexes) {
    std::set<std::string> ids;
    for (int i : indexes) ids.insert(result->tenant_ids[static_cast<size_t>(i)]);
    return std::vector<std::string>(ids.begin(), ids.end());
  };
  auto within = [](const Window& w, absl::Time t) { return t >= w.start && t < w.end; };
  std::set<int> potential, confirmed, staff_only;
  for (const PlannedStep& step : plan.steps) {
    if (step.op < 0 || step.tenant < 0) continue;
    const PlannedOperator& op = plan.operators[static_cast<size_t>(step.op)];
    if (op.contractor && within(plan.window, step.at)) potential.insert(step.tenant);
    if (!op.contractor) staff_only.insert(step.tenant);
    // The taken-over device is the compromised engineer's.
    if (step.op == plan.compromised && within(plan.compromise, step.at)) {
      confirmed.insert(step.tenant);
    }
  }
  for (int t : potential) staff_only.erase(t);
  ASSERT_FALSE(potential.empty());
  EXPECT_LT(potential.size(), plan.tenants.size());
  EXPECT_EQ(scope->PotentialTenantIds(), tenant_ids(potential));
  EXPECT_EQ(scope->potential, static_cast<int>(potential.size()));
  ASSERT_THAT(confirmed, SizeIs(2));
  EXPECT_EQ(confirmed,
            (std::set<int>(plan.compromised_tenants.begin(), plan.compromised_tenants.end())));
  EXPECT_EQ(scope->ConfirmedTenantIds(), tenant_ids(confirmed));
  // Tenants only the provider's own staff reached are not in the contractor's scope.
  for (const std::string& id : tenant_ids(staff_only)) {
    EXPECT_THAT(scope->PotentialTenantIds(), ::testing::Not(::testing::Contains(id)));
  }

  std::map<std::string, const TenantScope*> by_id;
  for (const TenantScope& t : scope->tenants) by_id[t.tenant_id.value()] = &t;
  // Every refused attempt of the contractor's engineers (and of the attacker) is in its
  // tenant's timeline, as a refusal with the planned reason, at its time.
  int refusals = 0;
  for (const PlannedStep& step : plan.steps) {
    if (step.refusal.empty() || step.op < 0 || step.tenant < 0 ||
        !plan.operators[static_cast<size_t>(step.op)].contractor) {
      continue;
    }
    ++refusals;
    const std::string id = result->tenant_ids[static_cast<size_t>(step.tenant)];
    ASSERT_TRUE(by_id.contains(id)) << Describe(step);
    bool found = false;
    for (const TimelineEntry& e : by_id[id]->timeline) {
      found = found || (e.time == step.at && e.reason == step.refusal &&
                        (e.outcome == "DENY" || e.outcome == "FAILURE"));
    }
    EXPECT_TRUE(found) << Describe(step);
  }
  EXPECT_GT(refusals, 5);

  // What the attacker saw in each confirmed tenant: exactly the planned views, in the window.
  for (int t : confirmed) {
    int planned_views = 0;
    for (const PlannedStep& step : plan.steps) {
      planned_views += step.attacker && step.tenant == t && step.kind == StepKind::kView;
    }
    const TenantScope& scoped = *by_id[result->tenant_ids[static_cast<size_t>(t)]];
    int seen = 0;
    for (const TimelineEntry& e : scoped.timeline) {
      seen += e.confirmed && e.event_type == "support.view" && e.outcome == "SUCCESS";
      if (e.confirmed) {
        EXPECT_TRUE(within(plan.compromise, e.time));
      }
    }
    EXPECT_EQ(seen, planned_views) << scoped.tenant_name;
    EXPECT_GT(scoped.refusals, 0) << scoped.tenant_name;
  }
}

}  // namespace
}  // namespace custos::incident
