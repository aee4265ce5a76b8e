#pragma once

// Each tenant's token signing keys: ES256 (the default for tokens) and EdDSA, made on first use,
// sealed at rest (crypto::Sealer), published in the tenant's JWKS, and rotated with overlap:
// a new key is published `publish_ahead` before it signs anything (relying parties that cache the
// JWKS see it before its first token), and the old key stays published until every token it
// signed has expired (`keep_after`).
//
// Signing keys are cached in memory after their first use (unsealed once); the cache is
// refreshed from the store every `refresh` so that a rotation made by another process (or node)
// is picked up. Thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/event.h"
#include "common/clock.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "oidc/jwt.h"
#include "store/records.h"
#include "store/store.h"
#include "support/jwk.h"

namespace custos::oidc {

struct KeyOptions {
  absl::Duration publish_ahead = absl::Hours(24);
  absl::Duration keep_after = absl::Hours(48);  // at least the longest token lifetime
  absl::Duration refresh = absl::Seconds(30);
};

// The key a token is signed with now.
struct ActiveKey {
  std::string kid;
  SigningKey key;
};

class KeyManager {
 public:
  // References must outlive the manager.
  KeyManager(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
             crypto::Random& random, KeyOptions options = {});

  // The key that signs for `tenant` with `alg` now. When the tenant has no key yet, makes one
  // key per algorithm, active at once (event oauth2.key.create each, in the tenant's log).
  absl::StatusOr<std::shared_ptr<const ActiveKey>> Active(const TenantId& tenant,
                                                          std::string_view alg = kAlgEs256);

  // {"keys":[...]}: every published key (created, not yet expired), newest first. Makes the
  // first keys like Active when there are none.
  absl::StatusOr<Json> Jwks(const TenantId& tenant);

  // A published key by kid, for verifying tokens this tenant signed. kNotFound otherwise.
  absl::StatusOr<support::PublicJwk> PublicKey(const TenantId& tenant, std::string_view kid);

  // Starts a rotation of `alg`: a new key that signs from now + publish_ahead; the current one
  // retires then and expires keep_after later. Event oauth2.key.rotate. Returns the new key.
  absl::StatusOr<store::OidcKeyRecord> Rotate(const audit::RequestContext& ctx,
                                              const TenantId& tenant, std::string_view alg);

 private:
  struct TenantKeys;
  // The cached keys when younger than options_.refresh, else Reload.
  absl::StatusOr<std::shared_ptr<const TenantKeys>> Load(const TenantId& tenant);
  // Reads the tenant's keys from the store and caches them (keeping the keys unsealed so far).
  absl::StatusOr<std::shared_ptr<const TenantKeys>> Reload(const TenantId& tenant);
  // Load, after making a first key of each algorithm that has none.
  absl::StatusOr<std::shared_ptr<const TenantKeys>> LoadOrCreate(const TenantId& tenant);
  // A new key for `alg`, sealed, published from now and signing from `activates`.
  absl::StatusOr<store::OidcKeyRecord> NewKey(const TenantId& tenant, std::string_view alg,
                                              absl::Time now, absl::Time activates);
  // The signing key of `record`, unsealed on first use and then kept in `keys`.
  absl::StatusOr<std::shared_ptr<const ActiveKey>> Unsealed(const TenantKeys& keys,
                                                            const store::OidcKeyRecord& record);

  store::Store& store_;
  const crypto::Sealer& sealer_;
  const Clock& clock_;
  crypto::Random& random_;
  const KeyOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<TenantId, std::shared_ptr<const TenantKeys>> cache_ ABSL_GUARDED_BY(mu_);
  uint64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;  // numbers the snapshots Reload reads
};

}  // namespace custos::oidc
