#include "cli/runtime.h"

#include <sys/stat.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"
#include "support/plane.h"

namespace custos::cli {

absl::StatusOr<Config> ResolveConfig(const ConfigFlags& flags) {
  std::string path = flags.config_path;
  if (path.empty() && std::filesystem::exists("custos.toml")) path = "custos.toml";
  ASSIGN_OR_RETURN(Config config, LoadConfig(path));
  if (!flags.data_dir.empty()) config.data_dir = flags.data_dir;
  for (const std::string& set : flags.sets) {
    size_t eq = set.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("--set takes key=value (e.g. server.port=0), got '{}'", set));
    }
    RETURN_IF_ERROR(SetConfigValue(config, set.substr(0, eq), set.substr(eq + 1)));
  }
  RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

Runtime::~Runtime() {
  if (store) store->Close();
}

absl::StatusOr<std::unique_ptr<Runtime>> OpenRuntime(const Config& config) {
  std::error_code ec;
  bool created = std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        fmt::format("cannot create data directory {}: {}", config.data_dir, ec.message()));
  }
  // Only a directory made here is narrowed to its owner; an existing one is the operator's.
  if (created) ::chmod(config.data_dir.c_str(), 0700);
  auto runtime = std::make_unique<Runtime>();
  runtime->config = config;
  ASSIGN_OR_RETURN(runtime->sealer, crypto::Sealer::OpenOrCreate(config.data_dir + "/seal.key"));
  if (store::IsPostgresUrl(config.store_url)) {
    ASSIGN_OR_RETURN(runtime->store,
                     store::OpenPostgresStore(
                         {.conninfo = config.store_url, .connections = config.store_connections}));
  } else {
    store::SqliteOptions options;
    options.path = config.data_dir + "/custos.db";
    options.synchronous_full = config.store_synchronous == "full";
    ASSIGN_OR_RETURN(runtime->store, store::OpenSqliteStore(options));
  }
  // The provider realm (operators of the support plane) exists in every store.
  RETURN_IF_ERROR(
      support::EnsureProviderTenant(*runtime->store, SystemClock::Get(), crypto::SystemRandom()));
  return runtime;
}

}  // namespace custos::cli
