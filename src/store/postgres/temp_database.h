#pragma once

// Throwaway databases on the PostgreSQL server that the tests are given (scripts/with-postgres.sh
// sets CUSTOS_TEST_POSTGRES to the server's admin URL, e.g.
// postgresql://postgres@127.0.0.1:5433/postgres). For tests only.

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "store/store.h"

namespace custos::store::postgres {

// The admin URL from CUSTOS_TEST_POSTGRES, or nullopt when it is unset or empty.
std::optional<std::string> TestServerUrl();

// `url` with its database name replaced by `database` (query parameters kept).
std::string WithDatabase(const std::string& url, const std::string& database);

// A new, empty database with the C collation on the server at `admin_url`, named
// custos_<tag>_<pid>_<n>. Dropped (WITH (FORCE)) when the object is destroyed.
class TempDatabase {
 public:
  static absl::StatusOr<std::unique_ptr<TempDatabase>> Create(const std::string& admin_url,
                                                              const std::string& tag);
  ~TempDatabase();
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& url() const { return url_; }

 private:
  TempDatabase(std::string admin_url, std::string name)
      : admin_url_(std::move(admin_url)),
        name_(std::move(name)),
        url_(WithDatabase(admin_url_, name_)) {}

  std::string admin_url_;
  std::string name_;
  std::string url_;
};

// A PostgreSQL store on a new TempDatabase that drops the database when the store is destroyed.
absl::StatusOr<std::unique_ptr<Store>> OpenTempPostgresStore(const std::string& admin_url,
                                                             int connections = 8);

}  // namespace custos::store::postgres
