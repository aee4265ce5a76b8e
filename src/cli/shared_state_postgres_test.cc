// Two `custos serve` nodes on one PostgreSQL database, as two stores opened on one database in
// one process: what one node's DPoP replay cache and rate limits record, the other sees at once.
// Needs a server (CUSTOS_TEST_POSTGRES; scripts/with-postgres.sh starts one); skipped without it.

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/shared_state.h"
#include "common/clock.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "store/postgres/postgres_store.h"
#include "store/postgres/temp_database.h"
#include "support/device_key.h"
#include "support/dpop.h"

namespace custos::cli {
namespace {

constexpr std::string_view kUrl = "https://custos.example/provider/api/v1/support/tenants";

class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<std::string> admin = store::postgres::TestServerUrl();
    if (!admin.has_value()) {
      GTEST_SKIP() << "CUSTOS_TEST_POSTGRES is not set: no PostgreSQL server to test on "
                      "(scripts/with-postgres.sh starts one)";
    }
    absl::StatusOr<std::unique_ptr<store::postgres::TempDatabase>> db =
        store::postgres::TempDatabase::Create(*admin, "shared");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *std::move(db);
    for (std::unique_ptr<store::Store>* node : {&store_a_, &store_b_}) {
      absl::StatusOr<std::unique_ptr<store::Store>> opened =
          store::OpenPostgresStore({.conninfo = db_->url(), .connections = 4});
      ASSERT_TRUE(opened.ok()) << opened.status();
      *node = *std::move(opened);
    }
    config_.store_url = db_->url();
    ASSERT_TRUE(SharesStateThroughStore(config_));
  }

  void TearDown() override {
    for (std::unique_ptr<store::Store>* node : {&store_a_, &store_b_}) {
      if (*node != nullptr) (*node)->Close();
      node->reset();
    }
    db_.reset();
  }

  Config config_;
  FakeClock clock_{absl::FromUnixSeconds(1767225600)};
  std::unique_ptr<store::postgres::TempDatabase> db_;
  std::unique_ptr<store::Store> store_a_;
  std::unique_ptr<store::Store> store_b_;
};

TEST_F(TwoNodesTest, AProofAcceptedOnOneNodeIsAReplayOnTheOther) {
  const support::DpopOptions options = DpopOptionsOf(config_);
  std::unique_ptr<support::DpopReplayCache> cache_a =
      MakeDpopReplayCache(config_, *store_a_, clock_, kSupportDpopScope, options);
  std::unique_ptr<support::DpopReplayCache> cache_b =
      MakeDpopReplayCache(config_, *store_b_, clock_, kSupportDpopScope, options);
  support::DpopVerifier node_a(clock_, options, cache_a.get());
  support::DpopVerifier node_b(clock_, options, cache_b.get());

  const std::string dir = ::testing::TempDir() + fmt::format("/custos_two_nodes_{}", ::getpid());
  std::filesystem::remove_all(dir);
  absl::StatusOr<std::unique_ptr<support::FileDeviceKey>> key =
      support::FileDeviceKey::Create(dir + "/device.key");
  ASSERT_TRUE(key.ok()) << key.status();
  crypto::SeededRandom random(42);
  absl::StatusOr<std::string> proof =
      support::MakeDpopProof(**key, "GET", kUrl, std::nullopt, clock_.Now(), random);
  ASSERT_TRUE(proof.ok()) << proof.status();
  const support::DpopCheck check{.method = "GET", .url = std::string(kUrl)};

  absl::StatusOr<support::DpopResult> accepted = node_a.Verify(*proof, check);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  absl::StatusOr<support::DpopResult> replayed = node_b.Verify(*proof, check);
  ASSERT_FALSE(replayed.ok()) << "node B accepted a proof node A had already accepted";
  EXPECT_EQ(support::DpopErrorOf(replayed.status()), support::DpopError::kReplayed);
  EXPECT_EQ(support::DpopErrorOf(node_a.Verify(*proof, check).status()),
            support::DpopError::kReplayed);

  // A fresh proof is fine on either node; the OIDC cache is a scope of its own.
  absl::StatusOr<std::string> next =
      support::MakeDpopProof(**key, "GET", kUrl, std::nullopt, clock_.Now(), random);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(node_b.Verify(*next, check).ok());
  std::unique_ptr<support::DpopReplayCache> oidc_cache =
      MakeDpopReplayCache(config_, *store_a_, clock_, kOidcDpopScope, options);
  EXPECT_TRUE(support::DpopVerifier(clock_, options, oidc_cache.get()).Verify(*proof, check).ok());
  std::filesystem::remove_all(dir);
}

TEST_F(TwoNodesTest, ConcurrentProofsOnBothNodesAreAcceptedOnce) {
  const support::DpopOptions options = DpopOptionsOf(config_);
  std::unique_ptr<support::DpopReplayCache> cache_a =
      MakeDpopReplayCache(config_, *store_a_, clock_, kSupportDpopScope, options);
  std::unique_ptr<support::DpopReplayCache> cache_b =
      MakeDpopReplayCache(config_, *store_b_, clock_, kSupportDpopScope, options);
  support::DpopVerifier node_a(clock_, options, cache_a.get());
  support::DpopVerifier node_b(clock_, options, cache_b.get());
  constexpr int kJtis = 10;
  std::atomic<int> accepted{0};
  std::atomic<int> replayed{0};
  {
    std::vector<std::jthread> threads;
    for (support::DpopVerifier* node : {&node_a, &node_b, &node_a, &node_b}) {
      threads.emplace_back([&, node] {
        for (int i = 0; i < kJtis; ++i) {
          const absl::Status status =
              node->Record({.jkt = "jkt", .jti = fmt::format("jti-{}", i), .iat = clock_.Now()});
          if (status.ok()) ++accepted;
          if (support::DpopErrorOf(status) == support::DpopError::kReplayed) ++replayed;
        }
      });
    }
  }
  EXPECT_EQ(accepted.load(), kJtis);
  EXPECT_EQ(replayed.load(), 3 * kJtis);
}

TEST_F(TwoNodesTest, RateLimitsCountRequestsOnBothNodes) {
  const RateLimitOptions options{.rate_per_second = 1, .burst = 3};
  std::unique_ptr<RateLimit> node_a =
      MakeRateLimit(config_, *store_a_, clock_, kSignInLimitScope, options);
  std::unique_ptr<RateLimit> node_b =
      MakeRateLimit(config_, *store_b_, clock_, kSignInLimitScope, options);
  EXPECT_TRUE(node_a->Acquire("198.51.100.7").allowed);
  EXPECT_TRUE(node_b->Acquire("198.51.100.7").allowed);
  RateLimitDecision last = node_a->Acquire("198.51.100.7");
  EXPECT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0);
  EXPECT_FALSE(node_b->Acquire("198.51.100.7").allowed) << "the limit is 3 across both nodes";
  EXPECT_FALSE(node_a->Acquire("198.51.100.7").allowed);
  EXPECT_TRUE(node_b->Acquire("198.51.100.8").allowed) << "another address";

  // The refused-credentials limit is counted apart from the sign-in one.
  std::unique_ptr<RateLimit> refused =
      MakeRateLimit(config_, *store_b_, clock_, kRefusedAuthLimitScope, options);
  EXPECT_TRUE(refused->Acquire("198.51.100.7").allowed);

  clock_.Advance(absl::Seconds(3));  // the window of 3 requests at 1/s has passed
  EXPECT_TRUE(node_b->Acquire("198.51.100.7").allowed);
}

}  // namespace
}  // namespace custos::cli
