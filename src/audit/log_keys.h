#pragma once

// The checkpoint signing keys of a Custos server (Ed25519, C2SP signed-note). One key signs the
// checkpoints of every log the server keeps; its name is the host of the public base URL. The
// seed is stored sealed (crypto::Sealer, the data directory's key) and only unsealed in memory to
// sign. Rotation makes a new key the signer and marks the old one retired; retired keys stay
// published, so checkpoints they signed keep verifying.
//
// Thread-safe: every method may be called from any thread.

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/event.h"
#include "common/clock.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "store/store.h"

namespace custos::audit {

// The key that signs now. Holds a secret (seed): never log it.
struct LogSigner {
  std::string key_record_id;  // store::LogKeyRecord::id
  std::string name;
  std::string seed;  // 32 raw bytes
};

class LogKeys {
 public:
  // All references must outlive the LogKeys.
  LogKeys(store::Store& store, const crypto::Sealer& sealer, const Clock& clock,
          crypto::Random& random);

  // Creates the first key, named `name`, when the store has none (a provider-log event
  // "log.key.create" records it). Does nothing when a key exists. kInvalidArgument for a name
  // that cannot name a key.
  absl::Status EnsureKey(std::string_view name);

  // Makes a new key named `name` the signer and retires the current one, in one transaction with
  // the provider-log event "log.key.rotate". Returns the new key's vkey.
  absl::StatusOr<std::string> Rotate(std::string_view name, const RequestContext& context);

  // The current signer: the newest key that is not retired. Read from the store each time it
  // changes (another process may rotate); kFailedPrecondition when there is no key;
  // kDataLoss when the sealed seed does not open.
  absl::StatusOr<LogSigner> Current();

  // Every key's vkey, the current one first, then the retired ones, newest first.
  absl::StatusOr<std::vector<std::string>> VerifierKeys();

 private:
  absl::StatusOr<store::LogKeyRecord> NewKey(std::string_view name);

  store::Store& store_;
  const crypto::Sealer& sealer_;
  const Clock& clock_;
  crypto::Random& random_;
  absl::Mutex mu_;
  LogSigner cached_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos::audit
