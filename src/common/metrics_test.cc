#include "common/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, CounterExposition) {
  Metrics metrics;
  Counter& requests =
      metrics.AddCounter("custos_http_requests_total", "HTTP requests.", {"route", "status"});
  requests.Increment({"/b", "200"});
  requests.Increment({"/a", "404"}, 2);
  requests.Increment({"/b", "200"});
  EXPECT_EQ(metrics.TextExposition(),
            "# HELP custos_http_requests_total HTTP requests.\n"
            "# TYPE custos_http_requests_total counter\n"
            "custos_http_requests_total{route=\"/a\",status=\"404\"} 2\n"
            "custos_http_requests_total{route=\"/b\",status=\"200\"} 2\n");
  EXPECT_EQ(requests.Value({"/b", "200"}), 2);
  EXPECT_EQ(requests.Value({"/c", "200"}), 0);
}

TEST(MetricsTest, CounterNeverGoesDown) {
  Metrics metrics;
  Counter& c = metrics.AddCounter("c_total", "c", {});
  c.Increment({}, 3);
  c.Increment({}, -1);
  EXPECT_EQ(c.Value({}), 3);
  EXPECT_THAT(metrics.TextExposition(), HasSubstr("\nc_total 3\n"));
}

TEST(MetricsTest, HistogramExpositionIsCumulativeWithInf) {
  Metrics metrics;
  Histogram& h = metrics.AddHistogram("custos_store_transaction_seconds", "Store transactions.",
                                      {"kind"}, {0.25, 1});
  h.Observe({"write"}, 0.125);
  h.Observe({"write"}, 0.25);  // On a bound: counted in le="0.25".
  h.Observe({"write"}, 0.5);
  h.Observe({"write"}, 7);
  EXPECT_EQ(metrics.TextExposition(),
            "# HELP custos_store_transaction_seconds Store transactions.\n"
            "# TYPE custos_store_transaction_seconds histogram\n"
            "custos_store_transaction_seconds_bucket{kind=\"write\",le=\"0.25\"} 2\n"
            "custos_store_transaction_seconds_bucket{kind=\"write\",le=\"1\"} 3\n"
            "custos_store_transaction_seconds_bucket{kind=\"write\",le=\"+Inf\"} 4\n"
            "custos_store_transaction_seconds_sum{kind=\"write\"} 7.875\n"
            "custos_store_transaction_seconds_count{kind=\"write\"} 4\n");
  EXPECT_EQ(h.Count({"write"}), 4u);
  EXPECT_DOUBLE_EQ(h.Sum({"write"}), 7.875);
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Metrics metrics;
  Counter& c = metrics.AddCounter("x_total", "a \\ b\nc", {"v"});
  c.Increment({"q\"uo\\te\nnl"});
  EXPECT_EQ(metrics.TextExposition(),
            "# HELP x_total a \\\\ b\\nc\n"
            "# TYPE x_total counter\n"
            "x_total{v=\"q\\\"uo\\\\te\\nnl\"} 1\n");
}

TEST(MetricsTest, FamiliesInRegistrationOrderAndReRegistrationReturnsSame) {
  Metrics metrics;
  metrics.AddHistogram("b_seconds", "b", {});
  Counter& a1 = metrics.AddCounter("a_total", "a", {"x"});
  Counter& a2 = metrics.AddCounter("a_total", "a", {"x"});
  EXPECT_EQ(&a1, &a2);
  std::string text = metrics.TextExposition();
  EXPECT_LT(text.find("b_seconds"), text.find("a_total"));
}

TEST(MetricsDeathTest, MisuseAborts) {
  Metrics metrics;
  Counter& c = metrics.AddCounter("a_total", "a", {"x"});
  EXPECT_DEATH(c.Increment({"1", "2"}), "takes 1 label values");
  EXPECT_DEATH(metrics.AddHistogram("a_total", "a", {"x"}), "already a counter");
  EXPECT_DEATH(metrics.AddCounter("bad-name", "a", {}), "invalid metric name");
  EXPECT_DEATH(metrics.AddHistogram("h", "h", {"le"}), "invalid label name");
  EXPECT_DEATH(metrics.AddHistogram("h", "h", {}, {1, 1}), "strictly increasing");
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics metrics;
  Counter& c = metrics.AddCounter("n_total", "n", {"t"});
  Histogram& h = metrics.AddHistogram("d_seconds", "d", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        c.Increment({"x"});
        h.Observe({"x"}, 0.001);
        if (i % 100 == 0) metrics.TextExposition();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value({"x"}), 4000);
  EXPECT_EQ(h.Count({"x"}), 4000u);
}

TEST(MetricsTest, GaugeGoesUpAndDown) {
  Metrics metrics;
  Gauge& g = metrics.AddGauge("leader", "Leads.", {});
  g.Set({}, 1);
  EXPECT_EQ(metrics.TextExposition(), "# HELP leader Leads.\n# TYPE leader gauge\nleader 1\n");
  g.Set({}, 0);
  EXPECT_EQ(g.Value({}), 0);
  EXPECT_EQ(metrics.TextExposition(), "# HELP leader Leads.\n# TYPE leader gauge\nleader 0\n");
  EXPECT_EQ(&metrics.AddGauge("leader", "Leads.", {}), &g);
}

}  // namespace
}  // namespace custos
