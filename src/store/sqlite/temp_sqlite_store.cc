#include "store/sqlite/temp_sqlite_store.h"

#include <stdlib.h>

#include <filesystem>

#include "common/status_macros.h"
#include "store/sqlite/sqlite_store.h"

namespace custos::store {

absl::StatusOr<std::unique_ptr<TempSqliteStore>> TempSqliteStore::Open() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "custos_store_XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError("cannot create a temporary directory for the test store");
  }
  SqliteOptions options;
  options.path = tmpl + "/custos.db";
  options.synchronous_full = false;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(options);
  if (!store.ok()) {
    std::filesystem::remove_all(tmpl);
    return store.status();
  }
  return std::unique_ptr<TempSqliteStore>(new TempSqliteStore(tmpl, *std::move(store)));
}

TempSqliteStore::~TempSqliteStore() {
  store_->Close();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace custos::store
