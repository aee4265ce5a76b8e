#include "audit/log_reader.h"

#include <utility>

#include <fmt/format.h>

#include "audit/merkle.h"
#include "common/status_macros.h"

namespace custos::audit {

// Tiles of one log through a read transaction, full ones through the reader's cache.
class CachingTileReader : public tiles::TileReader {
 public:
  CachingTileReader(LogReader& owner, store::Transaction& tx, std::string_view log_id)
      : owner_(owner), tx_(tx), log_id_(log_id) {}

  absl::StatusOr<store::LogTileRecord> ReadTile(int level, uint64_t index) override {
    LogReader::TileKey key{log_id_, level, index};
    if (auto cached = owner_.CachedTile(key)) return *cached;
    ASSIGN_OR_RETURN(store::LogTileRecord tile, tx_.Logs().GetTile(log_id_, level, index));
    if (tile.width == tiles::kTileWidth) {
      owner_.CacheTile(key, std::make_shared<const store::LogTileRecord>(tile));
    }
    return tile;
  }

 private:
  LogReader& owner_;
  store::Transaction& tx_;
  std::string log_id_;
};

namespace {

absl::Status NoCheckpointYet() {
  return absl::NotFoundError("the log has no signed checkpoint yet");
}

absl::StatusOr<store::CheckpointRecord> Latest(store::Transaction& tx, std::string_view log_id) {
  absl::StatusOr<store::CheckpointRecord> latest = tx.Logs().LatestCheckpoint(log_id);
  if (absl::IsNotFound(latest.status())) return NoCheckpointYet();
  return latest;
}

}  // namespace

LogReader::LogReader(store::Store& store, size_t cached_tiles)
    : store_(store), capacity_(cached_tiles) {}

std::shared_ptr<const store::LogTileRecord> LogReader::CachedTile(const TileKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.position);
  return it->second.tile;
}

void LogReader::CacheTile(const TileKey& key, std::shared_ptr<const store::LogTileRecord> tile) {
  if (capacity_ == 0) return;
  absl::MutexLock lock(&mu_);
  if (cache_.contains(key)) return;
  lru_.push_front(key);
  cache_[key] = Slot{std::move(tile), lru_.begin()};
  if (cache_.size() > capacity_) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
}

absl::StatusOr<store::CheckpointRecord> LogReader::LatestCheckpoint(std::string_view log_id) {
  return store::ReadResult(store_, [&](store::Transaction& tx) { return Latest(tx, log_id); });
}

absl::StatusOr<std::string> LogReader::Resource(std::string_view log_id,
                                                const tiles::TilePathParts& path) {
  return store::ReadResult(store_, [&](store::Transaction& tx) -> absl::StatusOr<std::string> {
    ASSIGN_OR_RETURN(store::CheckpointRecord latest, Latest(tx, log_id));
    const int available = tiles::TileWidthAt(latest.size, path.level, path.index);
    if (available == 0 || path.width > available) {
      return absl::NotFoundError(
          fmt::format("no such tile in the tree of the latest checkpoint (size {})", latest.size));
    }
    if (path.entries) {
      ASSIGN_OR_RETURN(std::vector<store::EventRecord> events,
                       tx.Logs().Entries(log_id, path.index * tiles::kTileWidth, path.width));
      std::vector<std::string> entries;
      entries.reserve(events.size());
      for (store::EventRecord& event : events) entries.push_back(std::move(event.json));
      return tiles::EncodeEntryBundle(entries);
    }
    CachingTileReader reader(*this, tx, log_id);
    absl::StatusOr<store::LogTileRecord> tile = reader.ReadTile(path.level, path.index);
    if (absl::IsNotFound(tile.status())) {
      return absl::DataLossError(
          fmt::format("tile {}/{} of a signed tree is missing", path.level, path.index));
    }
    RETURN_IF_ERROR(tile.status());
    return tiles::BottomRow(tile->data, tile->width, path.width);
  });
}

absl::StatusOr<InclusionAnswer> LogReader::InclusionIn(store::Transaction& tx,
                                                       std::string_view log_id, uint64_t index,
                                                       std::optional<uint64_t> size) {
  ASSIGN_OR_RETURN(store::CheckpointRecord latest, Latest(tx, log_id));
  InclusionAnswer answer;
  answer.tree_size = size.value_or(latest.size);
  if (answer.tree_size == 0 || answer.tree_size > latest.size) {
    return absl::InvalidArgumentError(
        fmt::format("size must be between 1 and {} (the latest checkpoint)", latest.size));
  }
  if (index >= answer.tree_size) {
    return absl::NotFoundError(
        fmt::format("index {} is not in the tree of size {}", index, answer.tree_size));
  }
  if (!size) {
    answer.checkpoint = latest.note;
  } else {
    absl::StatusOr<store::CheckpointRecord> at = tx.Logs().GetCheckpoint(log_id, *size);
    if (at.ok()) answer.checkpoint = at->note;
  }
  ASSIGN_OR_RETURN(store::LogStateRecord state, tx.Logs().GetState(log_id));
  answer.origin = state.origin;
  answer.index = index;
  ASSIGN_OR_RETURN(std::vector<store::EventRecord> events, tx.Logs().Entries(log_id, index, 1));
  if (events.empty()) {
    return absl::DataLossError(fmt::format("the event at index {} is missing", index));
  }
  answer.entry = std::move(events.front().json);
  answer.leaf_hash = merkle::LeafHash(answer.entry);
  CachingTileReader reader(*this, tx, log_id);
  ASSIGN_OR_RETURN(answer.hashes, tiles::InclusionProof(index, answer.tree_size, reader));
  return answer;
}

absl::StatusOr<std::vector<std::string>> LogReader::InclusionHashes(std::string_view log_id,
                                                                    uint64_t index, uint64_t size) {
  return store::ReadResult(store_, [&](store::Transaction& tx) {
    CachingTileReader reader(*this, tx, log_id);
    return tiles::InclusionProof(index, size, reader);
  });
}

absl::StatusOr<InclusionAnswer> LogReader::Inclusion(std::string_view log_id, uint64_t index,
                                                     std::optional<uint64_t> size) {
  return store::ReadResult(
      store_, [&](store::Transaction& tx) { return InclusionIn(tx, log_id, index, size); });
}

absl::StatusOr<InclusionAnswer> LogReader::InclusionByUuid(std::string_view log_id,
                                                           std::string_view uuid,
                                                           std::optional<uint64_t> size) {
  return store::ReadResult(store_, [&](store::Transaction& tx) -> absl::StatusOr<InclusionAnswer> {
    ASSIGN_OR_RETURN(store::EventRecord event, tx.Logs().FindEvent(log_id, uuid));
    if (!event.log_index) {
      return absl::NotFoundError(
          "the event is not in a signed checkpoint yet; retry in a "
          "second");
    }
    return InclusionIn(tx, log_id, *event.log_index, size);
  });
}

absl::StatusOr<ConsistencyAnswer> LogReader::Consistency(std::string_view log_id, uint64_t from,
                                                         std::optional<uint64_t> to) {
  return store::ReadResult(
      store_, [&](store::Transaction& tx) -> absl::StatusOr<ConsistencyAnswer> {
        ASSIGN_OR_RETURN(store::CheckpointRecord latest, Latest(tx, log_id));
        ConsistencyAnswer answer;
        answer.from = from;
        answer.to = to.value_or(latest.size);
        if (answer.to > latest.size) {
          return absl::InvalidArgumentError(
              fmt::format("to must be at most {} (the latest checkpoint)", latest.size));
        }
        if (from == 0 || from > answer.to) {
          return absl::InvalidArgumentError(
              fmt::format("from must be between 1 and {}", answer.to));
        }
        ASSIGN_OR_RETURN(store::LogStateRecord state, tx.Logs().GetState(log_id));
        answer.origin = state.origin;
        CachingTileReader reader(*this, tx, log_id);
        ASSIGN_OR_RETURN(answer.hashes, tiles::ConsistencyProof(from, answer.to, reader));
        return answer;
      });
}

}  // namespace custos::audit
