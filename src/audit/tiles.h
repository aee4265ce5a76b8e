#pragma once

// The Merkle tree of a verifiable log kept as C2SP tlog-tiles (https://c2sp.org/tlog-tiles):
// paths, the stored tile layout, appending (TreeBuilder) and roots and RFC 9162 proofs computed
// from stored tiles.
//
// Tree coordinates. Node (h, k) is the complete subtree of height h over leaves
// [k * 2^h, (k + 1) * 2^h); (0, k) is leaf hash k. A tile at level L, index N holds the hashes
// of nodes (8L, 256N + i) for i < width: its "bottom row". A tile is full at width 256.
//
// Stored ("expanded") tile layout: the bottom row of W hashes, then for r = 1..7 the
// floor(W / 2^r) hashes of nodes (8L + r, (256N >> r) + j), j = 0, 1, ...: every complete
// subtree inside the tile, so that a proof never rehashes a tile. At most 510 hashes (16,320
// bytes, for W = 256; kMaxExpandedHashes is a bound). Nodes of height 8L + 8 are not in the tile;
// they are the bottom row of level L + 1. A stored tile of width W also answers for any smaller
// width (hashes of complete subtrees never change), so one row per (L, N) is enough.
//
// Every hash is 32 raw bytes in a std::string (as in audit/merkle.h). Functions are pure and
// thread-safe; a TreeBuilder is not thread-safe (one per log, used by the sequencer only).

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "store/records.h"

namespace custos::audit::tiles {

inline constexpr int kTileHeight = 8;
inline constexpr int kTileWidth = 256;
inline constexpr int kMaxExpandedHashes = 511;

// Width of tile (level, index) in a tree of `size` leaves: 256 when full, 1..255 when partial,
// 0 when the tile has no hash yet at that size.
int TileWidthAt(uint64_t size, int level, uint64_t index);

// The expanded layout (above) of a tile whose bottom row is `bottom_row` (W * 32 bytes,
// 1 <= W <= 256). kInvalidArgument otherwise.
absl::StatusOr<std::string> ExpandTile(std::string_view bottom_row);

// The first `width` hashes of the bottom row of an expanded tile of `stored_width`, as served
// at tile/<L>/<N>[.p/<W>]. kInvalidArgument unless 1 <= width <= stored_width and the data has
// the length the layout gives.
absl::StatusOr<std::string> BottomRow(std::string_view expanded, int stored_width, int width);

// C2SP paths, relative to the log prefix: "tile/<L>/<N>[.p/<W>]" and "tile/entries/<N>[.p/<W>]",
// N as zero-padded three-digit groups, all but the last prefixed with "x" (1234067 ->
// "x001/x234/067"), ".p/<W>" only when W < 256.
std::string TilePath(int level, uint64_t index, int width);
std::string EntriesPath(uint64_t index, int width);

struct TilePathParts {
  bool entries = false;  // tile/entries/...
  int level = 0;         // 0..63 (0 for entries)
  uint64_t index = 0;
  int width = kTileWidth;  // 1..256
};

// Parses a path as above (no leading slash). kInvalidArgument, naming what is wrong, for
// anything else: a level outside 0..63 or with leading zeros, index groups that are not three
// digits or lack the "x" prefix, a width outside 1..255 or with leading zeros.
absl::StatusOr<TilePathParts> ParseTilePath(std::string_view path);

// Big-endian uint16 length-prefixed entries, as served at tile/entries/<N>. kInvalidArgument
// when an entry is longer than 65535 bytes.
absl::StatusOr<std::string> EncodeEntryBundle(const std::vector<std::string>& entries);
// The inverse; kInvalidArgument when the data is truncated.
absl::StatusOr<std::vector<std::string>> DecodeEntryBundle(std::string_view bundle);

// Source of stored tiles for one log. Implementations read the store (or a cache of it).
class TileReader {
 public:
  virtual ~TileReader() = default;
  // The stored tile (level, index); kNotFound when it was never written.
  virtual absl::StatusOr<store::LogTileRecord> ReadTile(int level, uint64_t index) = 0;
};

// MTH of the first `size` leaves, from stored tiles; merkle::EmptyRoot() for size 0.
// kDataLoss when a needed tile is missing or narrower than the size requires. Here and below,
// other errors of the reader (e.g. kUnavailable) are returned as they are.
absl::StatusOr<std::string> RootAt(uint64_t size, TileReader& reader);

// RFC 9162 PATH(index, D[size]) and PROOF(size1, D[size2]), the same hashes as the functions
// of audit/merkle.h over the leaf hashes, read from stored tiles. kInvalidArgument for the
// arguments merkle.h refuses; kDataLoss when a needed tile is missing or too narrow.
absl::StatusOr<std::vector<std::string>> InclusionProof(uint64_t index, uint64_t size,
                                                        TileReader& reader);
absl::StatusOr<std::vector<std::string>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                          TileReader& reader);

// The right edge of one log's tree, in memory, for appending.
class TreeBuilder {
 public:
  // An empty tree.
  TreeBuilder() = default;

  // Continues a tree of `size` leaves: reads the rightmost (partial) tile of each level that
  // has one. kDataLoss when one is missing or narrower than `size` requires.
  static absl::StatusOr<TreeBuilder> Load(uint64_t size, TileReader& reader);

  // Appends one leaf hash (32 bytes; merkle::LeafHash of the entry). Any other length is a
  // programming error and aborts: it would corrupt every tile from then on.
  void Append(std::string_view leaf_hash);

  uint64_t size() const { return size_; }
  // MTH of all leaves appended so far (merkle::EmptyRoot() when none).
  std::string Root() const;

  // The tiles that changed since the last call (or since Load): every tile that became full
  // and the current partial tile of each level that changed, in expanded layout, to persist.
  // log_id is left empty for the caller to fill.
  std::vector<store::LogTileRecord> TakeChangedTiles();

 private:
  // The rightmost tile of one level while it fills: row r holds the hashes of nodes
  // (8L + r, (256 * index >> r) + j) for j < width >> r, i.e. the expanded layout split by row.
  struct EdgeTile {
    uint64_t index = 0;
    std::array<std::string, kTileHeight> rows;
  };

  // Adds the next node of height 8 * level to the right edge, completing the parent nodes it
  // completes inside its tile and, when the tile becomes full, passing the tile's root up.
  void AddNode(int level, std::string_view hash);

  uint64_t size_ = 0;
  // Index = tile level; every level that has at least one node.
  std::vector<EdgeTile> edge_;
  // Tiles that became full since TakeChangedTiles, in expanded layout.
  std::vector<store::LogTileRecord> completed_;
  // Bit L set: the partial tile of level L changed since TakeChangedTiles.
  uint64_t changed_levels_ = 0;
};

}  // namespace custos::audit::tiles
