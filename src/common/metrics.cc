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

MetricFamily::MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
                           std::string_view type)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      type_(type) {}

void MetricFamily::CheckArity(const LabelValues& labels) const {
  if (labels.size() != label_names_.size()) {
    Die(fmt::format("{} takes {} label values, got {}", name_, label_names_.size(), labels.size()));
  }
}

void MetricFamily::AppendHeader(std::string& out) const {
  out += "# HELP ";
  out += name_;
  out += ' ';
  AppendEscaped(out, help_, /*escape_quote=*/false);
  out += "\n# TYPE ";
  out += name_;
  out += ' ';
  out += type_;
  out += '\n';
}

bool MetricFamily::SameShape(const MetricFamily& other) const {
  return label_names_ == other.label_names_;
}

double ValueFamily::Value(const LabelValues& labels) const {
  absl::MutexLock lock(&mu_);
  auto it = values_.find(labels);
  return it == values_.end() ? 0 : it->second;
}

void ValueFamily::Update(const LabelValues& labels, double value, bool add) {
  CheckArity(labels);
  absl::MutexLock lock(&mu_);
  if (add) {
    values_[labels] += value;
  } else {
    values_[labels] = value;
  }
}

void ValueFamily::AppendText(std::string& out) const {
  AppendHeader(out);
  absl::MutexLock lock(&mu_);
  for (const auto& [labels, value] : values_) {
    out += name_;
    AppendLabels(out, label_names_, labels);
    out += ' ';
    out += FormatValue(value);
    out += '\n';
  }
}

Counter::Counter(std::string name, std::string help, std::vector<std::string> label_names)
    : ValueFamily(std::move(name), std::move(help), std::move(label_names), "counter") {}

void Counter::Increment(const LabelValues& labels, double amount) {
  if (!(amount >= 0)) {
    CheckArity(labels);
    return;
  }
  Update(labels, amount, /*add=*/true);
}

Gauge::Gauge(std::string name, std::string help, std::vector<std::string> label_names)
    : ValueFamily(std::move(name), std::move(help), std::move(label_names), "gauge") {}

void Gauge::Set(const LabelValues& labels, double value) { Update(labels, value, /*add=*/false); }

Histogram::Histogram(std::string name, std::string help, std::vector<std::string> label_names,
                     std::vector<double> bounds)
    : MetricFamily(std::move(name), std::move(help), std::move(label_names), "histogram"),
      bounds_(std::move(bounds)) {}

bool Histogram::SameShape(const MetricFamily& other) const {
  const auto* histogram = dynamic_cast<const Histogram*>(&other);
  return MetricFamily::SameShape(other) && histogram != nullptr && histogram->bounds_ == bounds_;
}

void Histogram::Observe(const LabelValues& labels, double value) {
  CheckArity(labels);
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
  AppendHeader(out);
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

std::vector<double> Metrics::DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

template <typename F>
F& Metrics::Register(std::unique_ptr<F> family) {
  absl::MutexLock lock(&mu_);
  for (const auto& f : families_) {
    if (f->name_ != family->name_) continue;
    auto* same = dynamic_cast<F*>(f.get());
    if (same == nullptr) Die(fmt::format("{} is already a {}", f->name_, f->type_));
    if (!same->SameShape(*family)) {
      Die(fmt::format("{} registered with other labels or buckets", f->name_));
    }
    return *same;
  }
  families_.push_back(std::move(family));
  return static_cast<F&>(*families_.back());
}

Counter& Metrics::AddCounter(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names) {
  CheckNames(name, label_names, /*histogram=*/false);
  return Register(std::unique_ptr<Counter>(
      new Counter(std::string(name), std::string(help), std::move(label_names))));
}

Histogram& Metrics::AddHistogram(std::string_view name, std::string_view help,
                                 std::vector<std::string> label_names, std::vector<double> bounds) {
  CheckNames(name, label_names, /*histogram=*/true);
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Die(fmt::format("{}: bucket bounds must be finite and strictly increasing", name));
    }
  }
  return Register(std::unique_ptr<Histogram>(new Histogram(
      std::string(name), std::string(help), std::move(label_names), std::move(bounds))));
}

Gauge& Metrics::AddGauge(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names) {
  CheckNames(name, label_names, /*histogram=*/false);
  return Register(std::unique_ptr<Gauge>(
      new Gauge(std::string(name), std::string(help), std::move(label_names))));
}

std::string Metrics::TextExposition() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& family : families_) family->AppendText(out);
  return out;
}

}  // namespace custos
