#include "oidc/keys.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <utility>

#include "common/status_macros.h"
#include "common/time_format.h"
#include "fmt/format.h"

namespace custos::oidc {
namespace {

constexpr std::array<std::string_view, 2> kAlgorithms = {kAlgEs256, kAlgEdDsa};

bool KnownAlgorithm(std::string_view alg) {
  return std::find(kAlgorithms.begin(), kAlgorithms.end(), alg) != kAlgorithms.end();
}

absl::Status UnknownAlgorithm(std::string_view alg) {
  return absl::InvalidArgumentError(
      fmt::format("unsupported signing algorithm \"{}\" (ES256 or EdDSA)", alg));
}

// Binds a sealed private key to its tenant, kid and algorithm, so that a sealed key copied to
// another tenant's row (or relabelled) does not open.
std::string SealingContext(const TenantId& tenant, std::string_view kid, std::string_view alg) {
  return fmt::format("custos.oidc.key\n{}\n{}\n{}", tenant.value(), kid, alg);
}

bool Published(const store::OidcKeyRecord& key, absl::Time now) {
  return key.created <= now && (!key.expires.has_value() || *key.expires > now);
}

bool Signing(const store::OidcKeyRecord& key, absl::Time now) {
  return key.activates <= now && (!key.retired.has_value() || *key.retired > now);
}

audit::Principal KeyTarget(const store::OidcKeyRecord& key) {
  return {key.kid, "SigningKey", key.kid, fmt::format("{} signing key", key.alg)};
}

absl::StatusOr<Json> StoredPublicJwk(const store::OidcKeyRecord& key) {
  absl::StatusOr<Json> jwk = ParseJson(key.public_jwk);
  // Only we write these rows; a private member here would be published, so refuse outright.
  if (!jwk.ok() || !jwk->is_object() || support::HasPrivateKeyMembers(*jwk)) {
    return absl::DataLossError(fmt::format("stored public key {} is not a public JWK", key.kid));
  }
  return jwk;
}

}  // namespace

// A snapshot of a tenant's key records, shared by the callers that use it while a newer one may
// already replace it in the cache.
struct KeyManager::TenantKeys {
  uint64_t generation = 0;  // KeyManager::reloads_ when the read began
  absl::Time loaded;
  std::vector<store::OidcKeyRecord> records;  // oldest first
  // Keys never change once made, so a key unsealed once stays right for as long as its record
  // exists; a reload carries these over (which also keeps Active's pointers stable).
  mutable absl::Mutex mu;
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const ActiveKey>> unsealed
      ABSL_GUARDED_BY(mu);
  // Public keys parsed once (parsing checks the point, which costs as much as a verification).
  mutable absl::flat_hash_map<std::string, support::PublicJwk> parsed ABSL_GUARDED_BY(mu);
};

KeyManager::KeyManager(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
                       crypto::Random& random, KeyOptions options)
    : store_(store), sealer_(sealer), clock_(clock), random_(random), options_(options) {}

absl::StatusOr<std::shared_ptr<const KeyManager::TenantKeys>> KeyManager::Load(
    const TenantId& tenant) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(tenant);
    if (it != cache_.end() && clock_.Now() - it->second->loaded < options_.refresh) {
      return it->second;
    }
  }
  return Reload(tenant);
}

absl::StatusOr<std::shared_ptr<const KeyManager::TenantKeys>> KeyManager::Reload(
    const TenantId& tenant) {
  auto keys = std::make_shared<TenantKeys>();
  {
    absl::MutexLock lock(&mu_);
    keys->generation = ++reloads_;
  }
  keys->loaded = clock_.Now();
  ASSIGN_OR_RETURN(keys->records, store::ReadResult(store_, [&](store::Transaction& tx) {
                     return tx.Oidc().ListKeys(tenant);
                   }));

  absl::MutexLock lock(&mu_);
  auto it = cache_.find(tenant);
  if (it != cache_.end()) {
    // A read numbered later began later, so it saw at least what this one saw (a rotation
    // committed before Rotate's own reload included): never replace it with an older snapshot.
    if (it->second->generation > keys->generation) return it->second;
    absl::MutexLock old_lock(&it->second->mu);
    for (const auto& [kid, key] : it->second->unsealed) {
      const bool present = std::any_of(keys->records.begin(), keys->records.end(),
                                       [&](const store::OidcKeyRecord& r) { return r.kid == kid; });
      if (present) keys->unsealed.emplace(kid, key);
    }
  }
  // An empty answer is not cached: another node may be making the first keys right now, and
  // PublicKey must find them as soon as it signs with them.
  if (keys->records.empty()) {
    cache_.erase(tenant);
  } else {
    cache_[tenant] = keys;
  }
  return keys;
}

absl::StatusOr<std::shared_ptr<const KeyManager::TenantKeys>> KeyManager::LoadOrCreate(
    const TenantId& tenant) {
  ASSIGN_OR_RETURN(std::shared_ptr<const TenantKeys> keys, Load(tenant));
  std::vector<std::string_view> missing;
  for (std::string_view alg : kAlgorithms) {
    const bool has = std::any_of(keys->records.begin(), keys->records.end(),
                                 [&](const store::OidcKeyRecord& r) { return r.alg == alg; });
    if (!has) missing.push_back(alg);
  }
  if (missing.empty()) return keys;

  // Made before the transaction so the write lock is not held for key generation.
  const absl::Time now = clock_.Now();
  std::vector<store::OidcKeyRecord> made;
  for (std::string_view alg : missing) {
    ASSIGN_OR_RETURN(store::OidcKeyRecord key, NewKey(tenant, alg, now, now));
    made.push_back(std::move(key));
  }
  audit::RequestContext ctx;
  ctx.actor = audit::SystemPrincipal();
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    // Another thread or node may have made them since we looked.
    ASSIGN_OR_RETURN(std::vector<store::OidcKeyRecord> existing, tx.Oidc().ListKeys(tenant));
    for (const store::OidcKeyRecord& key : made) {
      const bool has = std::any_of(existing.begin(), existing.end(),
                                   [&](const store::OidcKeyRecord& r) { return r.alg == key.alg; });
      if (has) continue;
      RETURN_IF_ERROR(tx.Oidc().InsertKey(key));
      audit::EventSpec spec{.event_type = "oauth2.key.create",
                            .display_message = "Create token signing key",
                            .targets = {KeyTarget(key)},
                            .debug_data = {{"alg", key.alg}, {"kid", key.kid}}};
      RETURN_IF_ERROR(
          tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status());
    }
    return absl::OkStatus();
  }));
  return Reload(tenant);
}

absl::StatusOr<store::OidcKeyRecord> KeyManager::NewKey(const TenantId& tenant,
                                                        std::string_view alg, absl::Time now,
                                                        absl::Time activates) {
  ASSIGN_OR_RETURN(SigningKey key, SigningKey::Generate(alg));
  // The kid is the RFC 7638 thumbprint: unique per key, and checkable by anyone holding the JWK.
  ASSIGN_OR_RETURN(support::PublicJwk public_key, support::ParsePublicJwk(key.PublicJwk("")));
  std::string kid = support::Thumbprint(public_key);
  std::string private_bytes = key.PrivateBytes();
  if (private_bytes.empty()) return absl::InternalError("cannot encode a new signing key");
  std::string sealed = sealer_.Seal(private_bytes, SealingContext(tenant, kid, alg));
  OPENSSL_cleanse(private_bytes.data(), private_bytes.size());
  store::OidcKeyRecord record{.kid = kid,
                              .tenant_id = tenant,
                              .alg = std::string(alg),
                              .public_jwk = DumpJson(key.PublicJwk(kid)),
                              .sealed_private = std::move(sealed),
                              .created = now,
                              .activates = activates};
  return record;
}

absl::StatusOr<std::shared_ptr<const ActiveKey>> KeyManager::Unsealed(
    const TenantKeys& keys, const store::OidcKeyRecord& record) {
  {
    absl::MutexLock lock(&keys.mu);
    auto it = keys.unsealed.find(record.kid);
    if (it != keys.unsealed.end()) return it->second;
  }
  absl::StatusOr<std::string> private_bytes =
      sealer_.Open(record.sealed_private, SealingContext(record.tenant_id, record.kid, record.alg));
  if (!private_bytes.ok()) {
    return absl::DataLossError(fmt::format("cannot unseal signing key {}: {}", record.kid,
                                           std::string(private_bytes.status().message())));
  }
  absl::StatusOr<SigningKey> key = SigningKey::FromPrivateBytes(record.alg, *private_bytes);
  OPENSSL_cleanse(private_bytes->data(), private_bytes->size());
  if (!key.ok()) {
    return absl::DataLossError(
        fmt::format("stored signing key {} is not a {} key", record.kid, record.alg));
  }
  auto active = std::make_shared<const ActiveKey>(ActiveKey{record.kid, *std::move(key)});
  absl::MutexLock lock(&keys.mu);
  // When two threads unseal at once, the first one's key is the one everyone keeps.
  return keys.unsealed.emplace(record.kid, std::move(active)).first->second;
}

absl::StatusOr<std::shared_ptr<const ActiveKey>> KeyManager::Active(const TenantId& tenant,
                                                                    std::string_view alg) {
  if (!KnownAlgorithm(alg)) return UnknownAlgorithm(alg);
  ASSIGN_OR_RETURN(std::shared_ptr<const TenantKeys> keys, LoadOrCreate(tenant));
  const absl::Time now = clock_.Now();
  // Of the keys signing now (one, except in a rotation's overlap), the one activated last.
  const store::OidcKeyRecord* chosen = nullptr;
  for (const store::OidcKeyRecord& key : keys->records) {
    if (key.alg != alg || !Signing(key, now)) continue;
    if (chosen == nullptr || key.activates >= chosen->activates) chosen = &key;
  }
  if (chosen == nullptr) {
    return absl::FailedPreconditionError(
        fmt::format("tenant {} has no {} key that signs now", tenant.value(), alg));
  }
  return Unsealed(*keys, *chosen);
}

absl::StatusOr<Json> KeyManager::Jwks(const TenantId& tenant) {
  ASSIGN_OR_RETURN(std::shared_ptr<const TenantKeys> keys, LoadOrCreate(tenant));
  const absl::Time now = clock_.Now();
  std::vector<const store::OidcKeyRecord*> published;
  for (auto it = keys->records.rbegin(); it != keys->records.rend(); ++it) {
    if (Published(*it, now)) published.push_back(&*it);
  }
  std::stable_sort(published.begin(), published.end(),
                   [](const store::OidcKeyRecord* a, const store::OidcKeyRecord* b) {
                     return a->created > b->created;
                   });
  Json list = Json::array();
  for (const store::OidcKeyRecord* key : published) {
    ASSIGN_OR_RETURN(Json jwk, StoredPublicJwk(*key));
    list.push_back(std::move(jwk));
  }
  return Json{{"keys", std::move(list)}};
}

absl::StatusOr<support::PublicJwk> KeyManager::PublicKey(const TenantId& tenant,
                                                         std::string_view kid) {
  ASSIGN_OR_RETURN(std::shared_ptr<const TenantKeys> keys, Load(tenant));
  const absl::Time now = clock_.Now();
  for (const store::OidcKeyRecord& key : keys->records) {
    if (key.kid != kid || !Published(key, now)) continue;
    {
      absl::MutexLock lock(&keys->mu);
      if (auto it = keys->parsed.find(key.kid); it != keys->parsed.end()) return it->second;
    }
    ASSIGN_OR_RETURN(Json jwk, StoredPublicJwk(key));
    absl::StatusOr<support::PublicJwk> parsed = support::ParsePublicJwk(jwk);
    if (!parsed.ok()) {
      return absl::DataLossError(fmt::format("stored public key {} is not valid", key.kid));
    }
    absl::MutexLock lock(&keys->mu);
    keys->parsed.emplace(key.kid, *parsed);
    return parsed;
  }
  return absl::NotFoundError("no published signing key has that kid");
}

absl::StatusOr<store::OidcKeyRecord> KeyManager::Rotate(const audit::RequestContext& ctx,
                                                        const TenantId& tenant,
                                                        std::string_view alg) {
  if (!KnownAlgorithm(alg)) return UnknownAlgorithm(alg);
  RETURN_IF_ERROR(LoadOrCreate(tenant).status());
  const absl::Time now = clock_.Now();
  const absl::Time activates = now + options_.publish_ahead;
  ASSIGN_OR_RETURN(store::OidcKeyRecord created, NewKey(tenant, alg, now, activates));
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::OidcKeyRecord> existing, tx.Oidc().ListKeys(tenant));
    std::vector<std::string> retiring;
    // Every key of `alg` without a retirement signs until the new one takes over (a key
    // pending from an earlier rotation included), and stays published for the tokens it signed.
    for (store::OidcKeyRecord& key : existing) {
      if (key.alg != alg || key.retired.has_value()) continue;
      key.retired = activates;
      key.expires = activates + options_.keep_after;
      RETURN_IF_ERROR(tx.Oidc().UpdateKey(key));
      retiring.push_back(key.kid);
    }
    RETURN_IF_ERROR(tx.Oidc().InsertKey(created));
    audit::EventSpec spec{
        .event_type = "oauth2.key.rotate",
        .display_message = "Rotate token signing key",
        .targets = {KeyTarget(created)},
        .debug_data = {{"alg", created.alg},
                       {"kid", created.kid},
                       {"activates", FormatRfc3339(activates)},
                       {"retiredKids", fmt::format("{}", fmt::join(retiring, " "))},
                       {"retiredKeysExpire", FormatRfc3339(activates + options_.keep_after)}}};
    return tx.Events().Append(audit::MakeEvent(tenant, ctx, spec, clock_, random_)).status();
  }));
  RETURN_IF_ERROR(Reload(tenant).status());
  return created;
}

}  // namespace custos::oidc
