#include "http/store_metrics.h"

#include <string>

namespace custos::http {

StoreMetrics::StoreMetrics(Metrics& metrics)
    : seconds_(metrics.AddHistogram(
          "custos_store_transaction_seconds",
          "Store transaction time, including the wait for the write lock.", {"kind"},
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      errors_(metrics.AddCounter("custos_store_transaction_errors_total",
                                 "Store transactions that did not commit.", {"kind"})) {}

void StoreMetrics::OnTransaction(std::string_view kind, absl::Duration elapsed, bool ok) {
  std::string label(kind);
  seconds_.Observe({label}, absl::ToDoubleSeconds(elapsed));
  if (!ok) errors_.Increment({label});
}

}  // namespace custos::http
