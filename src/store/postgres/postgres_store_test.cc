// The store conformance suite (store/store_test_suite.h) on a real PostgreSQL server: each test
// gets a new database on the server named by CUSTOS_TEST_POSTGRES (scripts/with-postgres.sh
// starts one; `make test` runs these under it). Without the variable the tests are skipped.

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/postgres/temp_database.h"
#include "store/store_test_suite.h"

namespace custos::store {
namespace {

std::unique_ptr<Store> OpenForSuite(int connections) {
  const std::optional<std::string> url = postgres::TestServerUrl();
  if (!url.has_value()) {
    ADD_FAILURE() << "CUSTOS_TEST_POSTGRES is not set";
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Store>> store = postgres::OpenTempPostgresStore(*url, connections);
  if (!store.ok()) {
    ADD_FAILURE() << store.status();
    return nullptr;
  }
  return std::move(store).value();
}

std::string NoServer() {
  return postgres::TestServerUrl().has_value()
             ? ""
             : "CUSTOS_TEST_POSTGRES is not set: no PostgreSQL server to test on "
               "(scripts/with-postgres.sh starts one)";
}

// The default pool, and the smallest, so that transactions queue for a connection.
using conformance::StoreConformanceTest;
INSTANTIATE_TEST_SUITE_P(
    Postgres, StoreConformanceTest,
    ::testing::Values(
        conformance::StoreTestParam{.name = "postgres",
                                    .factory = [](const std::string&) { return OpenForSuite(8); },
                                    .unavailable = NoServer},
        conformance::StoreTestParam{.name = "postgres_two_connections",
                                    .factory = [](const std::string&) { return OpenForSuite(2); },
                                    .unavailable = NoServer}),
    conformance::StoreTestParamName);

}  // namespace
}  // namespace custos::store
