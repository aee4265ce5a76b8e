#pragma once

// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format 0.0.4 for GET /metrics.
//
//   Metrics metrics;
//   Counter& requests = metrics.AddCounter("custos_http_requests_total", "HTTP requests.",
//                                          {"route", "method", "status"});
//   requests.Increment({"/healthz", "GET", "200"});
//
// Misuse (an invalid metric or label name, a name registered twice with a different kind or
// labels, the wrong number of label values) is a programming error and aborts the process.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace custos {

using LabelValues = std::vector<std::string>;

// What every family has: a name, its help text, its label names and its Prometheus type.
// Owned by the Metrics that created it and valid as long as it.
class MetricFamily {
 public:
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

 protected:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::string_view type);
  // Aborts unless `labels` has one value per label name.
  void CheckArity(const LabelValues& labels) const;
  void AppendHeader(std::string& out) const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::string_view type_;  // "counter", "gauge", "histogram"

  // Whether a family registered again under this name is this one (same labels, buckets).
  virtual bool SameShape(const MetricFamily& other) const;

 private:
  friend class Metrics;
  virtual void AppendText(std::string& out) const = 0;
};

// One value per tuple of label values: what a counter and a gauge are. Thread-safe.
class ValueFamily : public MetricFamily {
 public:
  // 0 for a tuple never updated.
  double Value(const LabelValues& labels) const;

 protected:
  using MetricFamily::MetricFamily;
  // Adds `value` to the tuple's value, or replaces it.
  void Update(const LabelValues& labels, double value, bool add);

 private:
  void AppendText(std::string& out) const override;

  mutable absl::Mutex mu_;
  std::map<LabelValues, double> values_ ABSL_GUARDED_BY(mu_);
};

// A counter family: one monotonically increasing value per tuple of label values.
class Counter final : public ValueFamily {
 public:
  // `labels` holds one value per label name, in registration order. Negative amounts are
  // ignored: a counter never goes down.
  void Increment(const LabelValues& labels, double amount = 1);

 private:
  friend class Metrics;
  Counter(std::string name, std::string help, std::vector<std::string> label_names);
};

// A gauge family: one value per tuple of label values, set to whatever it now is (it may go
// down).
class Gauge final : public ValueFamily {
 public:
  void Set(const LabelValues& labels, double value);

 private:
  friend class Metrics;
  Gauge(std::string name, std::string help, std::vector<std::string> label_names);
};

// A histogram family: per tuple of label values, counts of observations at or below each
// bucket bound, their sum and their count. Thread-safe.
class Histogram final : public MetricFamily {
 public:
  void Observe(const LabelValues& labels, double value);
  uint64_t Count(const LabelValues& labels) const;
  double Sum(const LabelValues& labels) const;

 private:
  friend class Metrics;
  struct Series {
    std::vector<uint64_t> bucket_counts;  // per bound, not cumulative; last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Histogram(std::string name, std::string help, std::vector<std::string> label_names,
            std::vector<double> bounds);
  bool SameShape(const MetricFamily& other) const override;
  void AppendText(std::string& out) const override;

  const std::vector<double> bounds_;  // strictly increasing, without +Inf
  mutable absl::Mutex mu_;
  std::map<LabelValues, Series> series_ ABSL_GUARDED_BY(mu_);
};

// The registry. Thread-safe: families may be added and updated from any thread while another
// thread renders the exposition.
class Metrics {
 public:
  // The Content-Type of TextExposition().
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Prometheus' default buckets, in seconds: 0.005 ... 10.
  static std::vector<double> DefaultBuckets();

  // Registers a family, or returns the one already registered under `name` (which must have
  // the same kind and label names). `bounds` must be strictly increasing; +Inf is implied.
  Counter& AddCounter(std::string_view name, std::string_view help,
                      std::vector<std::string> label_names);
  Histogram& AddHistogram(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names,
                          std::vector<double> bounds = DefaultBuckets());
  Gauge& AddGauge(std::string_view name, std::string_view help,
                  std::vector<std::string> label_names);

  // Every family in registration order, series sorted by label values, with HELP and TYPE
  // lines. Families without series still show their HELP and TYPE.
  std::string TextExposition() const;

 private:
  // Adds `family`, or returns the one of its name already registered (aborting when that is
  // of another kind or shape).
  template <typename F>
  F& Register(std::unique_ptr<F> family);

  mutable absl::Mutex mu_;
  // In registration order. Families never move once created: references handed out stay valid.
  std::vector<std::unique_ptr<MetricFamily>> families_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos
