#include "cli/admin.h"

#include <cstdio>

#include <fmt/format.h>

#include "audit/event.h"
#include "audit/log_keys.h"
#include "crypto/random.h"
#include "directory/tenants.h"

namespace custos::cli {
namespace {

audit::RequestContext CliContext() {
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  ctx.request_id = "cli-" + crypto::SystemRandom().Token(9);
  ctx.user_agent = "custos-cli";
  return ctx;
}

int Fail(const absl::Status& status) {
  fmt::print(stderr, "custos: {}\n", std::string(status.message()));
  return absl::IsInvalidArgument(status) ? 2 : 1;
}

}  // namespace

int CreateTenant(const ConfigFlags& flags, const std::string& name) {
  absl::StatusOr<Config> config = ResolveConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) return Fail(runtime.status());
  directory::Tenants tenants(*(*runtime)->store, SystemClock::Get(), crypto::SystemRandom());
  absl::StatusOr<store::TenantRecord> tenant = tenants.Create(CliContext(), name);
  if (!tenant.ok()) return Fail(tenant.status());
  fmt::print("{}\n", tenant->id.value());
  return 0;
}

int CreateApiToken(const ConfigFlags& flags, const std::string& tenant,
                   const std::string& token_name, const std::string& scope) {
  absl::StatusOr<Config> config = ResolveConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) return Fail(runtime.status());
  directory::Tenants tenants(*(*runtime)->store, SystemClock::Get(), crypto::SystemRandom());
  auto issued = tenants.CreateApiToken(CliContext(), tenant, token_name, scope);
  if (!issued.ok()) return Fail(issued.status());
  fmt::print("{}\n", issued->token);
  return 0;
}

int CreateProviderToken(const ConfigFlags& flags, const std::string& token_name) {
  absl::StatusOr<Config> config = ResolveConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) return Fail(runtime.status());
  directory::Tenants tenants(*(*runtime)->store, SystemClock::Get(), crypto::SystemRandom());
  absl::StatusOr<std::string> token = tenants.CreateProviderToken(CliContext(), token_name);
  if (!token.ok()) return Fail(token.status());
  fmt::print("{}\n", *token);
  return 0;
}

int RotateLogKey(const ConfigFlags& flags, const std::string& name) {
  absl::StatusOr<Config> config = ResolveConfig(flags);
  if (!config.ok()) return Fail(config.status());
  auto runtime = OpenRuntime(*config);
  if (!runtime.ok()) return Fail(runtime.status());
  audit::LogKeys keys(*(*runtime)->store, *(*runtime)->sealer, SystemClock::Get(),
                      crypto::SystemRandom());
  std::string key_name = name;
  if (key_name.empty()) {
    absl::StatusOr<audit::LogSigner> current = keys.Current();
    if (!current.ok()) return Fail(current.status());
    key_name = current->name;
  }
  absl::StatusOr<std::string> vkey = keys.Rotate(key_name, CliContext());
  if (!vkey.ok()) return Fail(vkey.status());
  fmt::print("{}\n", *vkey);
  return 0;
}

}  // namespace custos::cli
