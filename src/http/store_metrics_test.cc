#include "http/store_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::http {
namespace {

using ::testing::HasSubstr;

TEST(StoreMetricsTest, RecordsDurationsAndFailuresByKind) {
  Metrics metrics;
  StoreMetrics observer(metrics);
  store::StoreObserver& as_observer = observer;
  as_observer.OnTransaction("write", absl::Milliseconds(3), true);
  as_observer.OnTransaction("write", absl::Milliseconds(700), false);
  as_observer.OnTransaction("read", absl::Microseconds(200), true);

  std::string text = metrics.TextExposition();
  EXPECT_THAT(text, HasSubstr("custos_store_transaction_seconds_count{kind=\"write\"} 2\n"));
  EXPECT_THAT(
      text, HasSubstr("custos_store_transaction_seconds_bucket{kind=\"write\",le=\"0.005\"} 1\n"));
  EXPECT_THAT(
      text, HasSubstr("custos_store_transaction_seconds_bucket{kind=\"read\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("custos_store_transaction_errors_total{kind=\"write\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("custos_store_transaction_errors_total{kind=\"read\"}")));
}

}  // namespace
}  // namespace custos::http
