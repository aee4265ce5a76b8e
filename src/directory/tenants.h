#pragma once

// Tenants and their administrator API tokens. Used by `custos admin` (and later the provider
// plane). Thread-safe.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "audit/event.h"
#include "common/clock.h"
#include "crypto/random.h"
#include "store/records.h"
#include "store/store.h"

namespace custos::directory {

struct IssuedApiToken {
  store::ApiTokenRecord record;
  std::string token;  // shown once; only its SHA-256 is stored
};

class Tenants {
 public:
  Tenants(store::Store& store, const Clock& clock, crypto::Random& random);

  // `name` is the URL name: 2 to 63 characters of a-z, 0-9 and '-', not starting or ending with
  // '-'. kAlreadyExists when taken. Records tenant.lifecycle.create in the new tenant's log.
  absl::StatusOr<store::TenantRecord> Create(const audit::RequestContext& ctx,
                                             std::string_view name);
  absl::StatusOr<store::TenantRecord> Get(std::string_view name);
  // Records system.api_token.create. `scope`: store::kScopeAdmin or store::kScopeLogRead.
  absl::StatusOr<IssuedApiToken> CreateApiToken(const audit::RequestContext& ctx,
                                                std::string_view tenant_name,
                                                std::string_view token_name,
                                                std::string_view scope = store::kScopeAdmin);
  // A provider token (reads the provider log when it is not public); shown once. Records
  // system.provider_token.create in the provider log.
  absl::StatusOr<std::string> CreateProviderToken(const audit::RequestContext& ctx,
                                                  std::string_view token_name);

 private:
  store::Store& store_;
  const Clock& clock_;
  crypto::Random& random_;
};

// The prefix of every API token Custos issues, so that leaked tokens are easy to scan for.
inline constexpr std::string_view kApiTokenPrefix = "cst_";

}  // namespace custos::directory
