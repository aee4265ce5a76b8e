#pragma once

// For tests: a SQLite store in a new private temporary directory, unique per process and call,
// so that tests running in parallel never share files. Not thread-safe itself; the store is.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/store.h"

namespace custos::store {

class TempSqliteStore {
 public:
  // Opens the store with synchronous=NORMAL (tests need no power-loss durability).
  static absl::StatusOr<std::unique_ptr<TempSqliteStore>> Open();
  // Closes the store, then removes the directory.
  ~TempSqliteStore();

  Store& store() { return *store_; }
  const std::string& dir() const { return dir_; }

 private:
  TempSqliteStore(std::string dir, std::unique_ptr<Store> store)
      : dir_(std::move(dir)), store_(std::move(store)) {}

  std::string dir_;
  std::unique_ptr<Store> store_;
};

}  // namespace custos::store
