#pragma once

// Verification of DPoP proofs (RFC 9449): the JWT a client signs with its device key and sends
// in the `DPoP` header of each request, so that an access token bound to that key (cnf.jkt) is
// useless without the key.
//
// DpopVerifier::Verify makes the checks of RFC 9449 section 4.3 that need no state beyond a
// replay cache: one well-formed compact JWS; header typ "dpop+jwt", alg ES256 or EdDSA (never
// "none" or a MAC) matching a public jwk; a valid signature; claims jti, htm, htu and iat; htm
// equal to the request method; htu equal to the request URL without query and fragment; iat
// within the acceptance window; ath equal to the hash of the access token when one is presented;
// and a jti not seen before with the same key. Server nonces (section 8) are not supported yet.
// Binding to the access token (comparing DpopResult::jkt to its cnf.jkt) is the caller's job.
//
// Every refusal is kUnauthenticated, its message starts with the stable reason code (e.g.
// "dpop_htu_mismatch: ...") and the status carries the reason, read with DpopErrorOf. Messages
// name the failed check but never echo key material.
//
// The replay cache is a DpopReplayCache: by default the verifier's own, in memory
// (MemoryDpopReplayCache), which is right for one process; processes that serve one store
// together share one in the store instead (support/store_replay_cache.h), so that a proof used
// on one of them is refused on every other.

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace custos::support {

// Why a proof was refused. The codes (DpopErrorCode) are stable: logs and clients may rely on
// them.
enum class DpopError {
  kMultipleProofs,   // dpop_multiple_proofs: more than one DPoP header (joined with ",")
  kMalformed,        // dpop_malformed: empty, too long, or not three dot-separated parts
  kBadEncoding,      // dpop_bad_encoding: a part is not base64url, or not a JSON object
  kBadTyp,           // dpop_bad_typ: header typ is not "dpop+jwt"
  kBadAlg,           // dpop_bad_alg: alg absent, "none", symmetric or not ES256/EdDSA
  kUnsupportedCrit,  // dpop_unsupported_crit: header has "crit" (no extension is understood)
  kBadJwk,           // dpop_bad_jwk: jwk absent, not an accepted public key, or not for alg
  kPrivateJwk,       // dpop_private_jwk: jwk holds private key material
  kBadSignature,     // dpop_bad_signature: signature does not verify with the jwk
  kMissingClaim,     // dpop_missing_claim: jti, htm, htu or iat absent or of the wrong type
  kBadJti,           // dpop_bad_jti: jti empty or longer than kMaxJtiLength bytes
  kHtmMismatch,      // dpop_htm_mismatch: htm is not the request method
  kHtuMismatch,      // dpop_htu_mismatch: htu is not the request URL
  kIatTooOld,        // dpop_iat_too_old: iat before now - max_age
  kIatInFuture,      // dpop_iat_in_future: iat after now + max_clock_skew
  kAthMissing,       // dpop_ath_missing: access token presented, proof has no ath
  kAthMismatch,      // dpop_ath_mismatch: ath is not the hash of the access token
  kReplayed,         // dpop_replayed: this key already used this jti within the window
  kReplayCacheFull,  // dpop_replay_cache_full: too many live proofs to remember another
};

// The stable code, e.g. "dpop_htu_mismatch".
std::string_view DpopErrorCode(DpopError error);

// The reason carried by a status that Verify returned; nullopt for any other status.
std::optional<DpopError> DpopErrorOf(const absl::Status& status);

// The request the proof must match.
struct DpopCheck {
  std::string method;  // e.g. "POST"; compared case-sensitively, as HTTP methods are
  std::string url;     // the absolute URL the server received, query and fragment allowed
  std::optional<std::string> access_token;  // when set, the proof must carry its ath
  // When false, Verify does not record the jti: the caller calls Record once it has checked
  // what the proof is for (e.g. that its access token is valid), so that proofs of strangers
  // cannot fill the replay cache.
  bool record = true;
};

// What a valid proof says.
struct DpopResult {
  std::string jkt;  // RFC 7638 SHA-256 thumbprint of the proof's jwk, base64url
  std::string jti;
  absl::Time iat;
};

struct DpopOptions {
  // A proof is accepted while now - max_age <= iat <= now + max_clock_skew.
  absl::Duration max_age = absl::Seconds(60);
  absl::Duration max_clock_skew = absl::Seconds(60);
  // Bounds of the in-memory replay cache. A jti is remembered until its proof could no longer
  // be accepted (iat + max_age). When a bound is reached, new proofs are refused
  // (kReplayCacheFull) rather than accepted unremembered: the per-key bound confines a noisy
  // client to its own key.
  size_t max_replay_entries = 100'000;
  size_t max_replay_entries_per_key = 1'000;
};

inline constexpr size_t kMaxJtiLength = 128;
// Longer proofs are refused before any parsing (a P-256 proof is about 600 bytes).
inline constexpr size_t kMaxProofLength = 8192;

// The message of the kUnavailable status (not a DpopError: the proof is not to blame) with
// which Verify and Record refuse a proof when the replay cache cannot answer. It names no
// internal detail, so that it may reach the client; the cache's error goes to the server log.
inline constexpr std::string_view kReplayCacheUnavailable =
    "the DPoP proof cannot be checked for replay now; try again later";

// Where a DpopVerifier remembers the jti values of the proofs it accepted, each until its proof
// could no longer be accepted. Implementations are thread-safe.
class DpopReplayCache {
 public:
  virtual ~DpopReplayCache() = default;
  // Remembers that the key with thumbprint `jkt` used `jti`, until `expires`. nullopt when that
  // was not remembered yet (an entry whose expiry has passed counts as absent); kReplayed when
  // it was; kReplayCacheFull when the cache has no room for it. An error status when the cache
  // cannot tell (its store is unavailable, say): the verifier then refuses the proof (see
  // kReplayCacheUnavailable).
  virtual absl::StatusOr<std::optional<DpopError>> Remember(const std::string& jkt,
                                                            const std::string& jti,
                                                            absl::Time expires) = 0;
};

// The replay cache of one process, in memory, within DpopOptions' bounds. Thread-safe. `clock`
// must outlive it.
class MemoryDpopReplayCache final : public DpopReplayCache {
 public:
  MemoryDpopReplayCache(const Clock& clock, const DpopOptions& options);
  MemoryDpopReplayCache(const MemoryDpopReplayCache&) = delete;
  MemoryDpopReplayCache& operator=(const MemoryDpopReplayCache&) = delete;

  absl::StatusOr<std::optional<DpopError>> Remember(const std::string& jkt, const std::string& jti,
                                                    absl::Time expires) override;

  // Number of jti values remembered now (expired ones are dropped first).
  size_t Size();

 private:
  void DropExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const size_t max_entries_;
  const size_t max_entries_per_key_;
  absl::Mutex mu_;
  // jkt -> jti values seen with that key.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> seen_ ABSL_GUARDED_BY(mu_);
  // Expiry -> (jkt, jti), to drop entries in time order.
  std::multimap<absl::Time, std::pair<std::string, std::string>> expiry_ ABSL_GUARDED_BY(mu_);
};

// Verifies DPoP proofs and remembers their jti values. Thread-safe. `clock` must outlive it.
class DpopVerifier {
 public:
  // Remembers jti values in `replay_cache`, which must outlive the verifier; without one, in a
  // MemoryDpopReplayCache of its own.
  explicit DpopVerifier(const Clock& clock, DpopOptions options = {},
                        DpopReplayCache* replay_cache = nullptr);

  DpopVerifier(const DpopVerifier&) = delete;
  DpopVerifier& operator=(const DpopVerifier&) = delete;

  // Checks `proof_jwt` (the DPoP header value) against `check` and, when it passes every check,
  // records its jti. kUnauthenticated with a DpopError for a refused proof; kInvalidArgument when
  // `check.url` itself is not an absolute http(s) URL (a bug in the caller).
  absl::StatusOr<DpopResult> Verify(std::string_view proof_jwt, const DpopCheck& check);

  // Records the jti of a proof that Verify accepted with `record = false`. kUnauthenticated with
  // kReplayed or kReplayCacheFull when it cannot; kUnavailable (no DpopError) when the replay
  // cache cannot tell whether the jti was used: the proof is refused either way.
  absl::Status Record(const DpopResult& result);

  // Number of jti values in the verifier's own in-memory cache now (expired ones are dropped
  // first); 0 when it was given a cache.
  size_t ReplayCacheSize();

 private:
  const Clock& clock_;
  const DpopOptions options_;
  std::unique_ptr<MemoryDpopReplayCache> own_cache_;  // null when given one
  DpopReplayCache& replay_cache_;
};

// The URL as RFC 9449 compares htu: scheme and host in lower case, the scheme's default port
// dropped, an empty path as "/", percent-encodings of unreserved characters decoded and the
// others in upper case, query and fragment dropped. nullopt unless it is an absolute http or
// https URL with a host and no user information. Exposed for tests.
std::optional<std::string> NormalizeHtu(std::string_view url);

}  // namespace custos::support
