#pragma once

// The read side of the verifiable logs: latest checkpoint, C2SP tlog-tiles resources (hash tiles
// and entry bundles) and RFC 9162 proofs, all bounded by the latest signed checkpoint (nothing
// beyond it is served). Full tiles never change, so a bounded LRU cache keeps the hot ones in
// memory; partial tiles are always read from the store.
//
// Log ids are tenant ids or store::kProviderLogId. Errors: kNotFound when the log has no
// checkpoint yet, or the resource, index, uuid or size is beyond it; kInvalidArgument for
// malformed requests (naming the parameter); store errors as they come.
//
// Thread-safe.

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "audit/tiles.h"
#include "store/store.h"

namespace custos::audit {

struct InclusionAnswer {
  std::string origin;
  uint64_t index = 0;
  uint64_t tree_size = 0;
  std::string entry;      // the entry bytes (the event's canonical JSON)
  std::string leaf_hash;  // 32 raw bytes
  std::vector<std::string> hashes;
  std::string checkpoint;  // the note signed at tree_size, or empty when none was
};

struct ConsistencyAnswer {
  std::string origin;
  uint64_t from = 0;
  uint64_t to = 0;
  std::vector<std::string> hashes;
};

class LogReader {
 public:
  // `store` must outlive the reader. `cached_tiles`: full tiles kept in memory (each <= 16 KiB).
  explicit LogReader(store::Store& store, size_t cached_tiles = 4096);

  absl::StatusOr<store::CheckpointRecord> LatestCheckpoint(std::string_view log_id);

  // The bytes of tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]. An entry bundle stops at the
  // first entry whose event row is missing (so a verifier sees exactly where).
  absl::StatusOr<std::string> Resource(std::string_view log_id, const tiles::TilePathParts& path);

  // Inclusion proof of entry `index` in the tree of `size` (default: the latest checkpoint's).
  absl::StatusOr<InclusionAnswer> Inclusion(std::string_view log_id, uint64_t index,
                                            std::optional<uint64_t> size);
  // The same for the event with this uuid; kNotFound while it is not in a checkpoint yet.
  absl::StatusOr<InclusionAnswer> InclusionByUuid(std::string_view log_id, std::string_view uuid,
                                                  std::optional<uint64_t> size);
  // Just the hashes of the inclusion proof of `index` in the tree of `size`, from the tiles (no
  // entry read, no checkpoint bound: callers check those). The proof part of Inclusion.
  absl::StatusOr<std::vector<std::string>> InclusionHashes(std::string_view log_id, uint64_t index,
                                                           uint64_t size);
  // Consistency proof between sizes `from` and `to` (default: the latest checkpoint's).
  absl::StatusOr<ConsistencyAnswer> Consistency(std::string_view log_id, uint64_t from,
                                                std::optional<uint64_t> to);

 private:
  using TileKey = std::tuple<std::string, int, uint64_t>;
  std::shared_ptr<const store::LogTileRecord> CachedTile(const TileKey& key);
  void CacheTile(const TileKey& key, std::shared_ptr<const store::LogTileRecord> tile);
  friend class CachingTileReader;

  absl::StatusOr<InclusionAnswer> InclusionIn(store::Transaction& tx, std::string_view log_id,
                                              uint64_t index, std::optional<uint64_t> size);

  store::Store& store_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::list<TileKey> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  struct Slot {
    std::shared_ptr<const store::LogTileRecord> tile;
    std::list<TileKey>::iterator position;
  };
  absl::flat_hash_map<TileKey, Slot> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace custos::audit
