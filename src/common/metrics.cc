#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

namespace custos {
namespace {

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "metrics: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckNames(std::string_view name, const std::vector<std::string>& label_names,
                bool histogram) {
  if (!ValidName(name, /*allow_colon=*/true)) Die(fmt::format("invalid metric name '{}'", name));
  for (const std::string& l : label_names) {
    if (!ValidName(l, /*allow_colon=*/false) || l.starts_with("__") || (histogram && l == "le")) {
      Die(fmt::format("invalid label name '{}' on {}", l, name));
    }
  }
}

void CheckArity(const std::string& name, const std::vector<std::string>& label_names,
                const LabelValues& labels) {
  if (labels.size() != label_names.size()) {
    Die(fmt::format("{} takes {} label values, got {}", name, label_names.size(), labels.size()));
  }
}

// Go's strconv.ParseFloat, which Prometheus uses, reads fmt's shortest round-trip form; only
// the special values need spelling out.
std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void AppendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void AppendHeader(std::string& out, const std::string& name, const std::string& help,
                  std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  AppendEscaped(out, help, /*escape_quote=*/false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// `{a="x",b="y"}`, with an optional extra label (the histogram's `le`) last; empty when there
// are no labels at all.
void AppendLabels(std::string& out, const std::vector<std::string>& names,
                  const LabelValues& values, std::string_view extra_name = {},
                  std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  auto one = [&](std::string_view n, std::string_view v) {
    if (!first) out += ',';
    first = false;
    out += n;
    out += "=\"";
    AppendEscaped(out, v, /*escape_quote=*/true);
    out += '"';
  };
  for (size_t i = 0; i < names.size(); ++i) one(names[i], values[i]);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out += '}';
}

}  // namespace

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Counter::Increment(const LabelValues& labels, double amount) {
  CheckArity(name_, label_names_, labels);
  if (!(amount >= 0)) return;
  absl::MutexLock lock(&mu_);
  values_[labels] += amount;
}

double Counter::Value(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void Counter::AppendText(std::string& out) const {
  AppendHeader(out, name_, help_, "counter");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) {
    out += name_;
    AppendLabels(out, label_names_, labels);
    out += ' ';
    out += FormatValue(value);
    out += '\n';
  }
}

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      bounds_(std::move(bounds)) {}

void Histogram::Observe(const LabelValues& labels, double value) {
  CheckArity(name_, label_names_, labels);
  // The first bound >= value: Prometheus buckets count observations `<= le`.
  size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  absl::MutexLock lock(&mu_);
  Series& s = series_[labels];
  if (s.bucket_counts.empty()) s.bucket_counts.resize(bounds_.size() + 1);
  ++s.bucket_counts[bucket];
  s.sum += value;
  ++s.count;
}

uint64_t Histogram::Count(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.count;
}

double Histogram::Sum(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = series_.find(labels);
  return it == series_.end() ? 0 : it->second.sum;
}

void Histogram::AppendText(std::string& out) const {
  AppendHeader(out, name_, help_, "histogram");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, s] : series_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.bucket_counts[i];
      out += name_;
      out += "_bucket";
      AppendLabels(out, label_names_, labels, "le",
                   i < bounds_.size() ? FormatValue(bounds_[i]) : "+Inf");
      out += ' ';
      out += std::to_string(cumulative);
      out += '\n';
    }
    out += name_;
    out += "_sum";
    AppendLabels(out, label_names_, labels);
    out += ' ';
    out += FormatValue(s.sum);
    out += '\n';
    out += name_;
    out += "_count";
    AppendLabels(out, label_names_, labels);
    out += ' ';
    out += std::to_string(s.count);
    out += '\n';
  }
}

Gauge::Gauge(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}

void Gauge::Set(const LabelValues& labels, double value) {
  CheckArity(name_, label_names_, labels);
  absl::MutexLock lock(&mu_);
  values_[labels] = value;
}

double Gauge::Value(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void Gauge::AppendText(std::string& out) const {
  AppendHeader(out, name_, help_, "gauge");
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) {
    out += name_;
    AppendLabels(out, label_names_, labels);
    out += ' ';
    out += FormatValue(value);
    out += '\n';
  }
}

std::vector<double> Metrics::DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Counter& Metrics::AddCounter(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names) {
  CheckNames(name, label_names, /*histogram=*/false);
  absl::MutexLock lock(&mu_);
  for (const auto& c : counters_) {
    if (c->name_ != name) continue;
    if (c->label_names_ != label_names) Die(fmt::format("{} registered with other labels", name));
    return *c;
  }
  for (const auto& h : histograms_) {
    if (h->name_ == name) Die(fmt::format("{} is already a histogram", name));
  }
  for (const auto& g : gauges_) {
    if (g->name_ == name) Die(fmt::format("{} is already a gauge", name));
  }
  counters_.push_back(std::unique_ptr<Counter>(
      new Counter(std::string(name), std::string(help), std::move(label_names))));
  order_.emplace_back(0, counters_.size() - 1);
  return *counters_.back();
}

Histogram& Metrics::AddHistogram(std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names, std::vector<double> bounds) {
  CheckNames(name, label_names, /*histogram=*/true);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Die(fmt::format("{}: bucket bounds must be finite and strictly increasing", name));
    }
  }
  absl::MutexLock lock(&mu_);
  for (const auto& h : histograms_) {
    if (h->name_ != name) continue;
    if (h->label_names_ != label_names || h->bounds_ != bounds) {
      Die(fmt::format("{} registered with other labels or buckets", name));
    }
    return *h;
  }
  for (const auto& c : counters_) {
    if (c->name_ == name) Die(fmt::format("{} is already a counter", name));
  }
  for (const auto& g : gauges_) {
    if (g->name_ == name) Die(fmt::format("{} is already a gauge", name));
  }
  histograms_.push_back(std::unique_ptr<Histogram>(new Histogram(
      std::string(name), std::string(help), std::move(label_names), std::move(bounds))));
  order_.emplace_back(1, histograms_.size() - 1);
  return *histograms_.back();
}

Gauge& Metrics::AddGauge(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names) {
  CheckNames(name, label_names, /*histogram=*/false);
  absl::MutexLock lock(&mu_);
  for (const auto& g : gauges_) {
    if (g->name_ != name) continue;
    if (g->label_names_ != label_names) Die(fmt::format("{} registered with other labels", name));
    return *g;
  }
  for (const auto& c : counters_) {
    if (c->name_ == name) Die(fmt::format("{} is already a counter", name));
  }
  for (const auto& h : histograms_) {
    if (h->name_ == name) Die(fmt::format("{} is already a histogram", name));
  }
  gauges_.push_back(std::unique_ptr<Gauge>(
      new Gauge(std::string(name), std::string(help), std::move(label_names))));
  order_.emplace_back(2, gauges_.size() - 1);
  return *gauges_.back();
}

std::string Metrics::TextExposition() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [kind, index] : order_) {
    if (kind == 0) {
      counters_[index]->AppendText(out);
    } else if (kind == 1) {
      histograms_[index]->AppendText(out);
    } else {
      gauges_[index]->AppendText(out);
    }
  }
  return out;
}

}  // namespace custos
