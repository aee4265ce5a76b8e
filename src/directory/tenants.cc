#include "directory/tenants.h"

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "crypto/hash.h"

namespace custos::directory {
namespace {

bool ValidTenantName(std::string_view name) {
  if (name.size() < 2 || name.size() > 63) return false;
  if (name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

Tenants::Tenants(store::Store& store, const Clock& clock, crypto::Random& random)
    : store_(store), clock_(clock), random_(random) {}

absl::StatusOr<store::TenantRecord> Tenants::Create(const audit::RequestContext& ctx,
                                                    std::string_view name) {
  if (!ValidTenantName(name)) {
    return ValidationError(
        fmt::format("Invalid tenant name '{}'", name),
        {"name: 2 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'"});
  }
  store::TenantRecord tenant{TenantId(random_.Id(kTenantIdPrefix)), std::string(name),
                             clock_.Now()};
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    absl::Status inserted = tx.Tenants().Insert(tenant);
    if (absl::IsAlreadyExists(inserted)) {
      return absl::AlreadyExistsError(fmt::format("tenant '{}' already exists", name));
    }
    RETURN_IF_ERROR(inserted);
    audit::EventSpec spec{.event_type = "tenant.lifecycle.create",
                          .display_message = "Create tenant",
                          .targets = {{tenant.id.value(), "Tenant", tenant.name, tenant.name}}};
    return tx.Events().Append(audit::MakeEvent(tenant.id, ctx, spec, clock_, random_)).status();
  }));
  return tenant;
}

absl::StatusOr<store::TenantRecord> Tenants::Get(std::string_view name) {
  absl::StatusOr<store::TenantRecord> tenant;
  RETURN_IF_ERROR(store_.Read([&](store::Transaction& tx) {
    tenant = tx.Tenants().GetByName(name);
    return absl::OkStatus();
  }));
  if (absl::IsNotFound(tenant.status())) {
    return absl::NotFoundError(fmt::format("no tenant named '{}'", name));
  }
  return tenant;
}

absl::StatusOr<IssuedApiToken> Tenants::CreateApiToken(const audit::RequestContext& ctx,
                                                       std::string_view tenant_name,
                                                       std::string_view token_name,
                                                       std::string_view scope) {
  if (token_name.empty() || token_name.size() > 100) {
    return ValidationError("Invalid token name", {"name: 1 to 100 characters"});
  }
  if (scope != store::kScopeAdmin && scope != store::kScopeLogRead) {
    return ValidationError(
        "Invalid token scope",
        {fmt::format("scope: {} or {}", store::kScopeAdmin, store::kScopeLogRead)});
  }
  ASSIGN_OR_RETURN(store::TenantRecord tenant, Get(tenant_name));
  IssuedApiToken issued;
  issued.token = std::string(kApiTokenPrefix) + random_.Token(32);
  issued.record = {.id = ApiTokenId(random_.Id(kApiTokenIdPrefix)),
                   .tenant_id = tenant.id,
                   .name = std::string(token_name),
                   .token_hash = crypto::Sha256Hex(issued.token),
                   .created = clock_.Now(),
                   .last_used = std::nullopt,
                   .scope = std::string(scope)};
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.ApiTokens().Insert(issued.record));
    audit::EventSpec spec{
        .event_type = "system.api_token.create",
        .display_message = "Create API token",
        .targets = {{issued.record.id.value(), "ApiToken", issued.record.name, issued.record.name}},
        .debug_data = {{"scope", issued.record.scope}}};
    return tx.Events().Append(audit::MakeEvent(tenant.id, ctx, spec, clock_, random_)).status();
  }));
  return issued;
}

absl::StatusOr<std::string> Tenants::CreateProviderToken(const audit::RequestContext& ctx,
                                                         std::string_view token_name) {
  if (token_name.empty() || token_name.size() > 100) {
    return ValidationError("Invalid token name", {"name: 1 to 100 characters"});
  }
  std::string token = std::string(kApiTokenPrefix) + random_.Token(32);
  store::ProviderTokenRecord record{.id = random_.Id("00P"),
                                    .name = std::string(token_name),
                                    .token_hash = crypto::Sha256Hex(token),
                                    .created = clock_.Now()};
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    RETURN_IF_ERROR(tx.ProviderTokens().Insert(record));
    audit::EventSpec spec{.event_type = "system.provider_token.create",
                          .display_message = "Create provider token",
                          .targets = {{record.id, "ProviderToken", record.name, record.name}}};
    return tx.Events()
        .Append(audit::MakeEvent(TenantId(std::string(store::kProviderLogId)), ctx, spec, clock_,
                                 random_))
        .status();
  }));
  return token;
}

}  // namespace custos::directory
