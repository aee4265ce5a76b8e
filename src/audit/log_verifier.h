#pragma once

// Client-side verification of a Custos verifiable log (docs: /t/{tenant}/log, /provider/log),
// served as C2SP tlog-tiles with a C2SP tlog-checkpoint in a signed note, and of C2SP tlog-proof
// files.
//
// VerifyLog checks, in order: the checkpoint's signature by a trusted key; that its origin is the
// origin of the previous state; that its size is not smaller than the previous size (rollback);
// then, for every index in [start, size), that the entry's leaf hash (SHA-256(0x00 || entry))
// equals the hash at that index in the level-0 tile; that the entries folded up to the previous
// size give the previous root (history not rewritten); and that all of them give the signed
// root. It streams: one entry bundle and one tile at a time, and the tree's right edge as a
// CompactRange (at most 64 hashes), never all leaf hashes.
//
// Errors. A check that fails is a "log verification failure": kDataLoss with a payload that
// IsLogVerificationFailure() recognises and, when one index is to blame, FailedIndex() returns;
// its message says what broke ("index 17: the entry does not match the log's leaf hash: ...").
// Everything else is not a verdict about the log: errors returned by the LogSource (transport,
// I/O, kNotFound for a missing checkpoint when there is nothing to compare with) pass through,
// and kInvalidArgument reports unusable input of the caller (a bad vkey, an inconsistent state).
//
// Thread-safety: the functions are thread-safe as far as the LogSource they are given is; a
// CompactRange is a value type without internal synchronisation.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/checkpoint.h"
#include "common/clock.h"

namespace custos::audit {

// Where a log's resources come from: an HTTP prefix, an exported directory, memory in tests.
class LogSource {
 public:
  virtual ~LogSource() = default;
  // The resource at `path`, relative to the log's prefix: "checkpoint", "keys",
  // "tile/0/000.p/7", "tile/entries/x001/000". kNotFound when the source does not have it; any
  // other error is a transport or I/O error.
  virtual absl::StatusOr<std::string> Fetch(std::string_view path) = 0;
};

// A failed check (see above). `index` names the entry to blame, when there is one.
absl::Status LogVerificationFailure(std::string message,
                                    std::optional<uint64_t> index = std::nullopt);
bool IsLogVerificationFailure(const absl::Status& status);
// The index a log verification failure names; nullopt for other statuses and failures that
// blame no single entry.
std::optional<uint64_t> FailedIndex(const absl::Status& status);

// The hashes of the complete subtrees that cover leaves [0, size), left to right: one per set
// bit of size, largest first. Enough to append more leaves and to compute the root (RFC 9162
// MTH) without the leaves themselves.
class CompactRange {
 public:
  CompactRange() = default;
  // kInvalidArgument unless there are popcount(size) hashes of 32 bytes each.
  static absl::StatusOr<CompactRange> FromHashes(uint64_t size, std::vector<std::string> hashes);

  // Appends one leaf hash (32 bytes).
  void Append(std::string_view leaf_hash);
  // MTH of the leaves so far; merkle::EmptyRoot() when there are none.
  std::string Root() const;

  uint64_t size() const { return size_; }
  const std::vector<std::string>& hashes() const { return hashes_; }

 private:
  uint64_t size_ = 0;
  std::vector<std::string> hashes_;
};

// What a successful verification leaves behind, to compare the next one with (the state file).
struct VerifyState {
  std::string origin;
  uint64_t size = 0;
  std::string root_hash;                   // 32 raw bytes
  std::string checkpoint;                  // the signed note that was verified
  std::vector<std::string> verifier_keys;  // vkey texts trusted for this log
  std::vector<std::string> compact_range;  // CompactRange::hashes() of [0, size), raw bytes
  absl::Time verified_at;

  bool operator==(const VerifyState&) const = default;
};

// JSON: {"origin","size","rootHash"(base64),"checkpoint","verifierKeys":[...],
// "compactRange":[base64...],"verifiedAt"(RFC 3339)}.
std::string FormatVerifyState(const VerifyState& state);
// kInvalidArgument, naming the problem, for malformed JSON, a missing or mistyped field, a bad
// vkey, or a compact range that does not have popcount(size) hashes or does not give rootHash.
absl::StatusOr<VerifyState> ParseVerifyState(std::string_view json);

struct VerifyOptions {
  // vkey texts trusted in addition to the previous state's. With none here and none in the
  // state, the keys the log publishes ("keys") are fetched and trusted on first use.
  std::vector<std::string> trusted_keys;
  // Check only the entries after the previous state's size, continuing from its compact range.
  // Without a previous state every entry is checked.
  bool incremental = false;
  // Stamps VerifyState::verified_at. Must outlive the call.
  const Clock* clock = &SystemClock::Get();
};

struct VerifyReport {
  VerifyState state;  // to store for the next run
  Checkpoint checkpoint;
  std::vector<std::string> signed_by;     // names of the trusted keys whose signature verified
  uint64_t first_checked = 0;             // entries [first_checked, checkpoint.size) were checked
  bool consistent_with_previous = false;  // a previous state was given and the log extends it
  // The vkeys fetched from the log and trusted because no key was given (empty otherwise).
  std::vector<std::string> trusted_on_first_use;
};

// Called after each tile with the number of leaves verified so far (from index 0) and the tree
// size. May be empty.
using ProgressFn = std::function<void(uint64_t verified, uint64_t total)>;

// Verifies the log behind `source` as described at the top. Returns the report with the new
// state, a log verification failure, or another error (see above).
absl::StatusOr<VerifyReport> VerifyLog(LogSource& source, const VerifyOptions& options,
                                       const std::optional<VerifyState>& previous,
                                       const ProgressFn& progress);

// Fetches the bottom row of tile (level, index) of `width` hashes (width * 32 bytes): from the
// partial path, or, when that is not found and width < 256, as the prefix of the full tile (a
// partial tile may be gone once it is full). A response of the wrong length is a log
// verification failure; kNotFound when neither path exists.
absl::StatusOr<std::string> FetchTile(LogSource& source, int level, uint64_t index, int width);

// Fetches entry bundle `index` holding `width` entries, with the same fallback to the full
// bundle (cut to its first `width` entries). The data is returned as served otherwise; the
// caller checks its content.
absl::StatusOr<std::string> FetchEntryBundle(LogSource& source, uint64_t index, int width);

// A C2SP tlog-proof@v1 (https://c2sp.org/tlog-proof):
//   c2sp.org/tlog-proof@v1\n
//   [extra <base64 of extra>\n]
//   index <decimal>\n
//   <base64 hash>\n ...          (inclusion proof, from the leaf's sibling up)
//   \n
//   <signed checkpoint note, verbatim>
// Custos puts the entry bytes in `extra`.
struct TlogProof {
  std::optional<std::string> extra;  // raw bytes
  uint64_t index = 0;
  std::vector<std::string> hashes;  // 32 raw bytes each
  std::string checkpoint;           // signed note text

  bool operator==(const TlogProof&) const = default;
};

// The proof text. Expects 32-byte hashes and a note ending in a newline (as note::Sign makes).
std::string FormatTlogProof(const TlogProof& proof);
// kInvalidArgument, naming the problem, for any departure from the format above.
absl::StatusOr<TlogProof> ParseTlogProof(std::string_view text);

struct VerifiedTlogProof {
  Checkpoint checkpoint;
  uint64_t index = 0;
  std::string entry;                   // the entry whose inclusion was proven
  std::vector<std::string> signed_by;  // names of the trusted keys whose signature verified
};

// Checks a tlog-proof: the checkpoint is signed by one of `trusted_keys` (vkey texts), and the
// entry (`entry` when given, else the proof's `extra`) is the leaf at `index` of the signed
// tree. A malformed proof, a bad signature or a failed inclusion is a log verification failure;
// kInvalidArgument for a bad vkey, no keys, or no entry at all.
absl::StatusOr<VerifiedTlogProof> VerifyTlogProof(std::string_view proof_text,
                                                  const std::optional<std::string>& entry,
                                                  const std::vector<std::string>& trusted_keys);

}  // namespace custos::audit
