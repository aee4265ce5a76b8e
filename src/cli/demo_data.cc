#include "cli/demo_data.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "authn/totp_factor.h"
#include "common/status_macros.h"
#include "crypto/encoding.h"
#include "crypto/totp.h"
#include "directory/tenants.h"

namespace custos::cli {
namespace {

constexpr char kTenant[] = "acme";
constexpr char kLogin[] = "ada@acme.example";
// Demo only: printed at start, so it is no secret. Passes the password policy.
constexpr char kPassword[] = "lovelace-analytical-engine";

// The console admins, by tenant. Demo only: printed at start, so no secret. The passwords pass
// the password policy.
struct ConsoleAdminSpec {
  const char* tenant;
  const char* login;
  const char* first_name;
  const char* last_name;
  const char* password;
};
constexpr ConsoleAdminSpec kConsoleAdmins[] = {
    {"acme", "admin@acme.example", "Margaret", "Hamilton", "hamilton-apollo-guidance"},
    {"provider", "security@provider.example", "Radia", "Perlman", "perlman-spanning-tree"},
};

absl::Status WriteOwnerOnly(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return absl::InternalError(fmt::format("cannot write {}", path));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(fmt::format("cannot write {}", path));
}

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// True when the store holds nothing but the built-in provider tenant, and no user in it: a data
// directory that nothing but this demo has used.
absl::StatusOr<bool> StoreIsNew(store::Store& store) {
  return store::ReadResult(store, [](store::Transaction& tx) -> absl::StatusOr<bool> {
    ASSIGN_OR_RETURN(std::vector<store::TenantRecord> tenants, tx.Tenants().List());
    for (const store::TenantRecord& tenant : tenants) {
      if (tenant.id.value() != store::kProviderLogId) return false;
      ASSIGN_OR_RETURN(int64_t users, tx.Users().Count(tenant.id));
      if (users > 0) return false;
    }
    return true;
  });
}

// Whether the data directory is the demo's (demo_data.h). Records a new store as the demo's, so
// that later runs, which find the demo's own users in it, still know.
absl::StatusOr<bool> DataDirIsTheDemos(api::Services& services) {
  const std::string dir = services.config.data_dir;
  const std::string serve_marker = fmt::format("{}/{}", dir, kServeDemoMarkerFile);
  if (FileExists(fmt::format("{}/{}", dir, kDemoMarkerFile)) || FileExists(serve_marker)) {
    return true;
  }
  ASSIGN_OR_RETURN(bool fresh, StoreIsNew(services.store));
  if (!fresh) return false;
  RETURN_IF_ERROR(WriteOwnerOnly(
      serve_marker,
      "custos serve --demo found a new store in this data directory: it makes its console admins "
      "(well-known passwords) here. Remove this file to stop that.\n"));
  return true;
}

// The group named `name`, created when the tenant has none.
absl::StatusOr<store::GroupRecord> EnsureGroup(directory::Directory& directory,
                                               const audit::RequestContext& ctx,
                                               const TenantId& tenant, const std::string& name) {
  directory::ListQuery query{.limit = 200, .q = name};
  while (true) {
    ASSIGN_OR_RETURN(directory::ListResult<store::GroupRecord> page,
                     directory.ListGroups(tenant, query));
    for (const store::GroupRecord& g : page.items) {
      if (g.name == name) return g;
    }
    if (page.next_after.empty()) break;
    query.after = page.next_after;
  }
  return directory.CreateGroup(
      tenant, ctx,
      {{"name", name}, {"description", "Console admins (docs/console.md), made by the demo"}});
}

// The user's active TOTP factor, enrolled and activated when there is none; returns its secret
// (raw bytes).
absl::StatusOr<std::string> EnsureTotp(api::Services& services, directory::Directory& directory,
                                       const audit::RequestContext& ctx,
                                       const store::TenantRecord& tenant,
                                       const store::UserRecord& user) {
  auto open = [&](const store::FactorRecord& f) -> absl::StatusOr<std::string> {
    return services.sealer.Open(f.sealed_secret, authn::TotpAssociatedData(f));
  };
  ASSIGN_OR_RETURN(std::vector<store::FactorRecord> factors,
                   directory.ListFactors(tenant.id, user.id.value()));
  for (const store::FactorRecord& f : factors) {
    if (f.factor_type == authn::kTotpFactorType && f.status == store::kFactorActive) return open(f);
  }
  ASSIGN_OR_RETURN(
      directory::FactorEnrollment enrolled,
      directory.EnrollFactor(tenant.id, ctx, user.id.value(), authn::kTotpFactorType,
                             authn::kTotpProvider, fmt::format("Custos ({})", tenant.name)));
  ASSIGN_OR_RETURN(std::string secret, open(enrolled.factor));
  // Activated with the previous step's code where the skew allows, so that the code an
  // authenticator shows right now still signs in (a step is accepted once).
  const int64_t step =
      crypto::TotpStep(services.clock.Now()) - std::min(services.config.totp_skew_steps, 1);
  RETURN_IF_ERROR(directory
                      .ActivateFactor(tenant.id, ctx, user.id.value(), enrolled.factor.id.value(),
                                      crypto::TotpCode(secret, step))
                      .status());
  return secret;
}

// A console admin as `spec` describes: user, membership of the admin group, TOTP factor.
absl::StatusOr<DemoConsoleAdmin> EnsureConsoleAdmin(api::Services& services,
                                                    directory::Directory& directory,
                                                    directory::Tenants& tenants,
                                                    const audit::RequestContext& ctx,
                                                    const ConsoleAdminSpec& spec) {
  ASSIGN_OR_RETURN(store::TenantRecord tenant, tenants.Get(spec.tenant));
  absl::StatusOr<store::UserRecord> user = directory.GetUser(tenant.id, spec.login);
  if (absl::IsNotFound(user.status())) {
    Json profile = {{"login", spec.login},
                    {"email", spec.login},
                    {"firstName", spec.first_name},
                    {"lastName", spec.last_name}};
    user = directory.CreateUser(tenant.id, ctx, profile, std::string(spec.password), true);
  }
  RETURN_IF_ERROR(user.status());
  ASSIGN_OR_RETURN(store::GroupRecord group,
                   EnsureGroup(directory, ctx, tenant.id, services.config.console_admin_group));
  ASSIGN_OR_RETURN(std::vector<GroupId> groups,
                   store::ReadResult(services.store, [&](store::Transaction& tx) {
                     return tx.Groups().ListGroupsOfUser(tenant.id, user->id);
                   }));
  if (std::find(groups.begin(), groups.end(), group.id) == groups.end()) {
    RETURN_IF_ERROR(directory.AddMember(tenant.id, ctx, group.id.value(), user->id.value()));
  }
  ASSIGN_OR_RETURN(std::string secret, EnsureTotp(services, directory, ctx, tenant, *user));
  const std::string issuer = fmt::format("Custos ({})", tenant.name);
  return DemoConsoleAdmin{.tenant = tenant.name,
                          .login = spec.login,
                          .password = spec.password,
                          .totp_secret = crypto::Base32Encode(secret),
                          .totp_uri = crypto::TotpUri(issuer, spec.login, secret)};
}

// The demo tenant: its admin token (kept in `token_path`), users and a group.
absl::Status SeedTenant(directory::Directory& directory, directory::Tenants& tenants,
                        const audit::RequestContext& ctx, const std::string& token_path,
                        DemoData& demo) {
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
  return group.status();
}

}  // namespace

absl::StatusOr<DemoData> SeedDemoData(api::Services& services, directory::Directory& directory) {
  DemoData demo{kTenant, "", kLogin, kPassword};
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  ctx.request_id = "demo-seed";
  ctx.user_agent = "custos-demo";
  directory::Tenants tenants(services.store, services.clock, services.random);
  // Decided before anything below adds to the store.
  ASSIGN_OR_RETURN(const bool demo_dir, DataDirIsTheDemos(services));
  std::string token_path = fmt::format("{}/{}", services.config.data_dir, kDemoApiTokenFile);
  // An earlier run created the demo tenant when its token file is there.
  bool demo_tenant = demo_dir || FileExists(token_path);
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
  } else {
    RETURN_IF_ERROR(SeedTenant(directory, tenants, ctx, token_path, demo));
    demo_tenant = true;
  }
  for (const ConsoleAdminSpec& spec : kConsoleAdmins) {
    // Never an admin with a printed password, nor a promotion of an existing user, in a tenant
    // someone else made.
    const bool ours = std::string_view(spec.tenant) == kTenant ? demo_tenant : demo_dir;
    if (!ours) {
      demo.skipped_console_admins.push_back(fmt::format(
          "{} ({}): not made, {}", spec.login, spec.tenant,
          std::string_view(spec.tenant) == kTenant
              ? "the tenant acme in this data directory was not made by the demo"
              : "this data directory was not made by the demo (custos demo, or custos serve "
                "--demo on a new data directory)"));
      continue;
    }
    ASSIGN_OR_RETURN(DemoConsoleAdmin admin,
                     EnsureConsoleAdmin(services, directory, tenants, ctx, spec));
    demo.console_admins.push_back(std::move(admin));
  }
  return demo;
}

}  // namespace custos::cli
