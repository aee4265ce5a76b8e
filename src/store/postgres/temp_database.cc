#include "store/postgres/temp_database.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <utility>

#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/postgres/pg.h"
#include "store/postgres/postgres_store.h"

namespace custos::store::postgres {
namespace {

std::atomic<int> next_database{0};

absl::Status AdminExec(const std::string& admin_url, const std::string& sql) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(admin_url));
  return conn->Exec(sql);
}

// Forwards to the store it owns, then drops the database once the store has closed.
class OwningStore final : public Store {
 public:
  OwningStore(std::unique_ptr<TempDatabase> database, std::unique_ptr<Store> store)
      : database_(std::move(database)), store_(std::move(store)) {}
  ~OwningStore() override {
    store_.reset();
    database_.reset();
  }
  absl::Status Write(absl::FunctionRef<absl::Status(Transaction&)> fn) override {
    return store_->Write(fn);
  }
  absl::Status Read(absl::FunctionRef<absl::Status(Transaction&)> fn) override {
    return store_->Read(fn);
  }
  absl::Status Ping() override { return store_->Ping(); }
  void Close() override { store_->Close(); }
  void SetObserver(StoreObserver* observer) override { store_->SetObserver(observer); }
  absl::StatusOr<std::unique_ptr<LeaderLease>> TryLead(std::string_view name) override {
    return store_->TryLead(name);
  }

 private:
  std::unique_ptr<TempDatabase> database_;
  std::unique_ptr<Store> store_;
};

}  // namespace

std::optional<std::string> TestServerUrl() {
  const char* url = std::getenv("CUSTOS_TEST_POSTGRES");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

std::string WithDatabase(const std::string& url, const std::string& database) {
  const size_t query = url.find('?');
  const std::string base = url.substr(0, query);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  const size_t scheme = base.find("://");
  const size_t slash = base.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return (slash == std::string::npos ? base : base.substr(0, slash)) + "/" + database + rest;
}

absl::StatusOr<std::unique_ptr<TempDatabase>> TempDatabase::Create(const std::string& admin_url,
                                                                   const std::string& tag) {
  std::string name = fmt::format("custos_{}_{}_{}", tag, ::getpid(), next_database++);
  RETURN_IF_ERROR(
      AdminExec(admin_url, fmt::format("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                                       "LC_COLLATE 'C' LC_CTYPE 'C'",
                                       name)));
  return std::unique_ptr<TempDatabase>(new TempDatabase(admin_url, std::move(name)));
}

TempDatabase::~TempDatabase() {
  AdminExec(admin_url_, fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", name_))
      .IgnoreError();
}

absl::StatusOr<std::unique_ptr<Store>> OpenTempPostgresStore(const std::string& admin_url,
                                                             int connections) {
  ASSIGN_OR_RETURN(std::unique_ptr<TempDatabase> database, TempDatabase::Create(admin_url, "t"));
  ASSIGN_OR_RETURN(std::unique_ptr<Store> store,
                   OpenPostgresStore({.conninfo = database->url(), .connections = connections}));
  return std::make_unique<OwningStore>(std::move(database), std::move(store));
}

}  // namespace custos::store::postgres
