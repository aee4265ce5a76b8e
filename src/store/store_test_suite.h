#pragma once

// The conformance suite that every store::Store implementation passes: each repository
// method, unique keys, tenant isolation, paging, event queries, the verifiable-log outbox and its
// tiles, states, checkpoints and keys, rollback, snapshot reads under concurrent writes, and
// Close. A backend instantiates it once in its own test binary, with a
// factory that opens a fresh, empty store in a given new directory:
//
//   INSTANTIATE_TEST_SUITE_P(
//       Sqlite, StoreConformanceTest,
//       ::testing::Values(StoreTestParam{"sqlite", [](const std::string& dir) {
//         return OpenMyStore(dir);  // a new empty store, or nullptr after ADD_FAILURE()
//       }}),
//       StoreTestParamName);
//
// and links custos_store_testing.

#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "common/ids.h"
#include "gtest/gtest.h"
#include "store/store.h"

namespace custos::store::conformance {

// Opens a new, empty store that keeps its files (if any) under `temp_dir`, an empty directory
// that the suite creates before and removes after each test.
using StoreFactory = std::function<std::unique_ptr<Store>(const std::string& temp_dir)>;

struct StoreTestParam {
  std::string name;  // appears in test names: letters, digits and underscores
  StoreFactory factory;
  // When set and it returns a non-empty reason, every test of this backend is skipped with it
  // (a backend that needs a server the environment does not provide).
  std::function<std::string()> unavailable = nullptr;
};

void PrintTo(const StoreTestParam& param, std::ostream* os);
std::string StoreTestParamName(const ::testing::TestParamInfo<StoreTestParam>& info);

// Each test starts with a new store holding two tenants, tenant_a() and tenant_b().
class StoreConformanceTest : public ::testing::TestWithParam<StoreTestParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  Store& store() { return *store_; }
  const std::string& temp_dir() const { return temp_dir_; }
  const TenantId& tenant_a() const { return tenant_a_; }
  const TenantId& tenant_b() const { return tenant_b_; }

 private:
  std::string temp_dir_;
  std::unique_ptr<Store> store_;
  TenantId tenant_a_;
  TenantId tenant_b_;
};

}  // namespace custos::store::conformance
