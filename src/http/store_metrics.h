#pragma once

// Feeds store transaction timings into the metrics registry:
// custos_store_transaction_seconds{kind} (histogram) and
// custos_store_transaction_errors_total{kind} (transactions that did not commit).
//
//   StoreMetrics store_metrics(metrics);
//   store.SetObserver(&store_metrics);  // store_metrics must outlive that registration

#include <string_view>

#include "absl/time/time.h"
#include "common/metrics.h"
#include "store/store.h"

namespace custos::http {

// Thread-safe: the store calls it from any thread.
class StoreMetrics final : public store::StoreObserver {
 public:
  // `metrics` must outlive this object.
  explicit StoreMetrics(Metrics& metrics);

  void OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) override;

 private:
  Histogram& seconds_;
  Counter& errors_;
};

}  // namespace custos::http
