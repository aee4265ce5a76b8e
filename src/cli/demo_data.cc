#include "cli/demo_data.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/status_macros.h"
#include "directory/tenants.h"

namespace custos::cli {
namespace {

constexpr char kTenant[] = "acme";
constexpr char kLogin[] = "ada@acme.example";
// Demo only: printed at start, so it is no secret. Passes the password policy.
constexpr char kPassword[] = "lovelace-analytical-engine";

absl::Status WriteOwnerOnly(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::InternalError(fmt::format("cannot write {}", path));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(fmt::format("cannot write {}", path));
}

}  // namespace

absl::StatusOr<DemoData> SeedDemoData(api::Services& services, directory::Directory& directory) {
  DemoData demo{kTenant, "", kLogin, kPassword};
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  ctx.request_id = "demo-seed";
  ctx.user_agent = "custos-demo";
  directory::Tenants tenants(services.store, services.clock, services.random);
  std::string token_path = services.config.data_dir + "/demo-api-token";
  const std::string provider_token_path = services.config.data_dir + "/demo-provider-token";
  if (std::ifstream in(provider_token_path); in) {
    std::getline(in, demo.provider_token);
  } else {
    ASSIGN_OR_RETURN(directory::IssuedApiToken provider,
                     tenants.CreateApiToken(ctx, "provider", "demo provider administrator"));
    demo.provider_token = provider.token;
    RETURN_IF_ERROR(WriteOwnerOnly(provider_token_path, provider.token + "\n"));
  }
  absl::StatusOr<store::TenantRecord> tenant = tenants.Get(kTenant);
  if (tenant.ok()) {
    std::ifstream in(token_path);
    std::getline(in, demo.api_token);
    return demo;
  }
  ASSIGN_OR_RETURN(store::TenantRecord created, tenants.Create(ctx, kTenant));
  ASSIGN_OR_RETURN(directory::IssuedApiToken token,
                   tenants.CreateApiToken(ctx, kTenant, "demo administrator"));
  demo.api_token = token.token;
  RETURN_IF_ERROR(WriteOwnerOnly(token_path, token.token + "\n"));
  Json profile = {
      {"login", kLogin}, {"email", kLogin}, {"firstName", "Ada"}, {"lastName", "Lovelace"}};
  RETURN_IF_ERROR(
      directory.CreateUser(created.id, ctx, profile, std::string(kPassword), true).status());
  for (auto [first, last] : {std::pair{"Grace", "Hopper"},
                             {"Alan", "Turing"},
                             {"Katherine", "Johnson"},
                             {"Edsger", "Dijkstra"}}) {
    std::string login = fmt::format("{}.{}@acme.example", first, last);
    for (char& c : login) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    Json p = {{"login", login}, {"email", login}, {"firstName", first}, {"lastName", last}};
    RETURN_IF_ERROR(directory.CreateUser(created.id, ctx, p, std::nullopt, true).status());
  }
  auto group = directory.CreateGroup(created.id, ctx,
                                     {{"name", "Engineering"}, {"description", "Demo group"}});
  RETURN_IF_ERROR(group.status());
  return demo;
}

}  // namespace custos::cli
