#pragma once

// What every subcommand that touches the data directory needs: the configuration, the store
// and the sealing key, opened in the right order and closed cleanly.

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "crypto/sealer.h"
#include "store/store.h"

namespace custos::cli {

// Settings given on the command line, applied over the file and the environment.
struct ConfigFlags {
  std::string config_path;  // empty: ./custos.toml when it exists
  std::string data_dir;
  std::vector<std::string> sets;  // "key=value"
};

absl::StatusOr<Config> ResolveConfig(const ConfigFlags& flags);

struct Runtime {
  Config config;
  std::unique_ptr<crypto::Sealer> sealer;
  std::unique_ptr<store::Store> store;

  ~Runtime();
};

// Creates the data directory (0700) when missing, opens the sealing key and the store
// (applying migrations).
absl::StatusOr<std::unique_ptr<Runtime>> OpenRuntime(const Config& config);

}  // namespace custos::cli
