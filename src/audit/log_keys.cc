#include "audit/log_keys.h"

#include <algorithm>

#include <fmt/format.h>

#include "audit/note.h"
#include "common/status_macros.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"

namespace custos::audit {
namespace {

// The sealed seed is bound to its key record, so a seed moved to another record does not open.
std::string SealingContext(std::string_view key_record_id) {
  return fmt::format("custos log key {}", key_record_id);
}

const store::LogKeyRecord* Newest(const std::vector<store::LogKeyRecord>& keys) {
  const store::LogKeyRecord* current = nullptr;
  for (const store::LogKeyRecord& key : keys) {
    if (!key.retired && (current == nullptr || key.created >= current->created)) current = &key;
  }
  return current;
}

}  // namespace

LogKeys::LogKeys(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
                 crypto::Random& random)
    : store_(store), sealer_(sealer), clock_(clock), random_(random) {}

absl::StatusOr<store::LogKeyRecord> LogKeys::NewKey(std::string_view name) {
  if (!note::IsValidKeyName(name)) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' cannot name a log key (no spaces or '+')", name));
  }
  store::LogKeyRecord key;
  key.id = "lk_" + crypto::HexEncode(random_.Bytes(8));
  key.name = std::string(name);
  const std::string seed = crypto::ed25519::GenerateSeed(random_);
  ASSIGN_OR_RETURN(key.public_key, crypto::ed25519::PublicKeyFromSeed(seed));
  key.sealed_seed = sealer_.Seal(seed, SealingContext(key.id));
  key.created = clock_.Now();
  return key;
}

absl::Status LogKeys::EnsureKey(std::string_view name) {
  ASSIGN_OR_RETURN(store::LogKeyRecord key, NewKey(name));
  ASSIGN_OR_RETURN(const std::string vkey, note::FormatVerifierKey(key.name, key.public_key));
  return store_.Write([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::LogKeyRecord> keys, tx.Logs().ListKeys());
    if (Newest(keys) != nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(tx.Logs().InsertKey(key));
    RequestContext ctx;
    ctx.actor = SystemPrincipal();
    EventSpec spec{.event_type = "log.key.create",
                   .display_message = "Create checkpoint signing key",
                   .targets = {{key.id, "LogKey", vkey, key.name}}};
    return tx.Events()
        .Append(MakeEvent(TenantId(std::string(store::kProviderLogId)), ctx, spec, clock_, random_))
        .status();
  });
}

absl::StatusOr<std::string> LogKeys::Rotate(std::string_view name, const RequestContext& context) {
  ASSIGN_OR_RETURN(store::LogKeyRecord key, NewKey(name));
  ASSIGN_OR_RETURN(std::string vkey, note::FormatVerifierKey(key.name, key.public_key));
  RETURN_IF_ERROR(store_.Write([&](store::Transaction& tx) -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<store::LogKeyRecord> keys, tx.Logs().ListKeys());
    std::vector<Principal> targets = {{key.id, "LogKey", vkey, key.name}};
    for (const store::LogKeyRecord& old : keys) {
      if (old.retired) continue;
      RETURN_IF_ERROR(tx.Logs().RetireKey(old.id, key.created));
      ASSIGN_OR_RETURN(std::string old_vkey, note::FormatVerifierKey(old.name, old.public_key));
      targets.push_back({old.id, "LogKey", old_vkey, old.name});
    }
    RETURN_IF_ERROR(tx.Logs().InsertKey(key));
    EventSpec spec{.event_type = "log.key.rotate",
                   .display_message = "Rotate checkpoint signing key",
                   .targets = std::move(targets)};
    return tx.Events()
        .Append(
            MakeEvent(TenantId(std::string(store::kProviderLogId)), context, spec, clock_, random_))
        .status();
  }));
  return vkey;
}

absl::StatusOr<LogSigner> LogKeys::Current() {
  ASSIGN_OR_RETURN(
      std::vector<store::LogKeyRecord> keys,
      store::ReadResult(store_, [](store::Transaction& tx) { return tx.Logs().ListKeys(); }));
  const store::LogKeyRecord* current = Newest(keys);
  if (current == nullptr) {
    return absl::FailedPreconditionError("no checkpoint signing key: the server creates one");
  }
  absl::MutexLock lock(&mu_);
  if (cached_.key_record_id != current->id) {
    absl::StatusOr<std::string> seed =
        sealer_.Open(current->sealed_seed, SealingContext(current->id));
    if (!seed.ok()) {
      return absl::DataLossError(fmt::format("the sealed seed of log key {} does not open: {}",
                                             current->id, std::string(seed.status().message())));
    }
    cached_ = LogSigner{.key_record_id = current->id, .name = current->name, .seed = *seed};
  }
  return cached_;
}

absl::StatusOr<std::vector<std::string>> LogKeys::VerifierKeys() {
  ASSIGN_OR_RETURN(
      std::vector<store::LogKeyRecord> keys,
      store::ReadResult(store_, [](store::Transaction& tx) { return tx.Logs().ListKeys(); }));
  const store::LogKeyRecord* current = Newest(keys);
  std::vector<const store::LogKeyRecord*> order;
  if (current != nullptr) order.push_back(current);
  std::vector<const store::LogKeyRecord*> retired;
  for (const store::LogKeyRecord& key : keys) {
    if (&key != current) retired.push_back(&key);
  }
  std::sort(retired.begin(), retired.end(),
            [](const auto* a, const auto* b) { return a->created > b->created; });
  order.insert(order.end(), retired.begin(), retired.end());
  std::vector<std::string> out;
  for (const store::LogKeyRecord* key : order) {
    ASSIGN_OR_RETURN(std::string vkey, note::FormatVerifierKey(key->name, key->public_key));
    out.push_back(std::move(vkey));
  }
  return out;
}

}  // namespace custos::audit
