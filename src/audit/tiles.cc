#include "audit/tiles.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>

#include "audit/merkle.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace custos::audit::tiles {
namespace {

constexpr size_t kHashSize = merkle::kHashSize;
constexpr int kMaxLevel = 63;
constexpr size_t kMaxEntrySize = 65535;

// x >> s for any s; C++ leaves shifts by 64 or more undefined, and levels reach 63.
uint64_t Shr(uint64_t x, int s) { return s >= 64 ? 0 : x >> s; }

// Hashes in row r of the expanded layout of a tile of width w, and where that row starts.
size_t RowHashes(int width, int r) { return static_cast<size_t>(width) >> r; }
size_t RowOffset(int width, int r) {
  size_t offset = 0;
  for (int q = 0; q < r; ++q) offset += RowHashes(width, q);
  return offset;
}
size_t ExpandedBytes(int width) { return RowOffset(width, kTileHeight) * kHashSize; }

std::string_view HashAt(std::string_view hashes, size_t i) {
  return hashes.substr(i * kHashSize, kHashSize);
}

std::string FormatIndex(uint64_t index) {
  std::vector<unsigned> groups;
  do {
    groups.push_back(static_cast<unsigned>(index % 1000));
    index /= 1000;
  } while (index > 0);
  std::string out;
  for (size_t i = groups.size(); i-- > 1;) out += fmt::format("x{:03}/", groups[i]);
  out += fmt::format("{:03}", groups[0]);
  return out;
}

std::string WidthSuffix(int width) {
  return width < kTileWidth ? fmt::format(".p/{}", width) : std::string();
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Parses a decimal number of at most 3 digits without leading zeros ("0" itself is fine).
absl::StatusOr<int> ParseSmallNumber(std::string_view what, std::string_view s, int min, int max) {
  if (!IsDigits(s)) {
    return absl::InvalidArgumentError(fmt::format("{} \"{}\" is not a decimal number", what, s));
  }
  if (s.size() > 1 && s[0] == '0') {
    return absl::InvalidArgumentError(fmt::format("{} \"{}\" has leading zeros", what, s));
  }
  int value = 0;
  if (s.size() <= 3) {
    for (char c : s) value = value * 10 + (c - '0');
  }
  if (s.size() > 3 || value < min || value > max) {
    return absl::InvalidArgumentError(
        fmt::format("{} \"{}\" is outside {}..{}", what, s, min, max));
  }
  return value;
}

absl::StatusOr<uint64_t> ParseIndex(const std::vector<std::string_view>& groups) {
  // 2^64 - 1 has 20 digits: 7 groups.
  if (groups.size() > 7) {
    return absl::InvalidArgumentError(
        fmt::format("tile index has {} groups, at most 7 fit in 64 bits", groups.size()));
  }
  uint64_t index = 0;
  for (size_t i = 0; i < groups.size(); ++i) {
    std::string_view g = groups[i];
    if (g.empty()) return absl::InvalidArgumentError("path has an empty element");
    const bool last = i + 1 == groups.size();
    if (!last) {
      if (g[0] != 'x') {
        return absl::InvalidArgumentError(
            fmt::format("tile index group \"{}\" lacks the \"x\" prefix", g));
      }
      g.remove_prefix(1);
    }
    if (g.size() != 3 || !IsDigits(g)) {
      return absl::InvalidArgumentError(fmt::format("tile index group \"{}\" is not {}three digits",
                                                    groups[i], last ? "" : "\"x\" and "));
    }
    if (i == 0 && !last && g == "000") {
      return absl::InvalidArgumentError("tile index starts with a zero group");
    }
    const uint64_t value =
        static_cast<uint64_t>((g[0] - '0') * 100 + (g[1] - '0') * 10 + g[2] - '0');
    if (index > (std::numeric_limits<uint64_t>::max() - value) / 1000) {
      return absl::InvalidArgumentError("tile index does not fit in 64 bits");
    }
    index = index * 1000 + value;
  }
  return index;
}

std::vector<std::string_view> SplitSlashes(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

absl::Status Truncated(int level, uint64_t index, int width, size_t bytes) {
  return absl::DataLossError(
      fmt::format("stored tile {}/{} of width {} has {} bytes, the layout needs {}", level, index,
                  width, bytes, width >= 1 && width <= kTileWidth ? ExpandedBytes(width) : 0));
}

// Reads node hashes from stored tiles for one root or proof computation. Each tile is read at
// most once: the nodes of one proof cluster in a few tiles per level.
class NodeSource {
 public:
  explicit NodeSource(TileReader& reader) : reader_(reader) {}

  // The hash of the complete subtree (height, k).
  absl::StatusOr<std::string> Node(int height, uint64_t k) {
    const int level = height / kTileHeight;
    const int r = height % kTileHeight;
    const uint64_t first = k << r;  // leftmost node of height 8 * level below (height, k)
    const uint64_t index = first / kTileWidth;
    const size_t j = (first % kTileWidth) >> r;
    ASSIGN_OR_RETURN(const Tile* tile, Get(level, index));
    const uint64_t needed = (j + 1) << r;
    if (static_cast<uint64_t>(tile->width) < needed) {
      return absl::DataLossError(
          fmt::format("stored tile {}/{} has width {}, the tree needs at least {}", level, index,
                      tile->width, needed));
    }
    return std::string(HashAt(tile->data, RowOffset(tile->width, r) + j));
  }

  // MTH(D[begin:end]) for begin < end with `begin` a multiple of bit_ceil(end - begin), as in
  // every range RFC 9162's PATH and SUBPROOF recurse into: the complete subtrees given by the
  // bits of end - begin, left to right, folded from the right.
  absl::StatusOr<std::string> Range(uint64_t begin, uint64_t end) {
    const uint64_t n = end - begin;
    std::string acc;
    uint64_t right_end = end;
    for (int h = 0; h < 64; ++h) {
      if ((n >> h & 1) == 0) continue;
      const uint64_t start = right_end - (uint64_t{1} << h);
      ASSIGN_OR_RETURN(std::string node, Node(h, start >> h));
      acc = acc.empty() ? std::move(node) : merkle::NodeHash(node, acc);
      right_end = start;
    }
    return acc;
  }

 private:
  struct Tile {
    int level;
    uint64_t index;
    int width;
    std::string data;
  };

  absl::StatusOr<const Tile*> Get(int level, uint64_t index) {
    for (const Tile& t : tiles_) {
      if (t.level == level && t.index == index) return &t;
    }
    absl::StatusOr<store::LogTileRecord> record = reader_.ReadTile(level, index);
    if (absl::IsNotFound(record.status())) {
      return absl::DataLossError(fmt::format("stored tile {}/{} is missing", level, index));
    }
    if (!record.ok()) return record.status();
    if (record->level != level || record->index != index) {
      return absl::DataLossError(fmt::format("asked for tile {}/{}, the store returned {}/{}",
                                             level, index, record->level, record->index));
    }
    if (record->width < 1 || record->width > kTileWidth ||
        record->data.size() != ExpandedBytes(record->width)) {
      return Truncated(level, index, record->width, record->data.size());
    }
    tiles_.push_back(Tile{level, index, record->width, std::move(record->data)});
    return &tiles_.back();
  }

  TileReader& reader_;
  std::deque<Tile> tiles_;  // a deque keeps the pointers Get returns valid
};

}  // namespace

int TileWidthAt(uint64_t size, int level, uint64_t index) {
  if (level < 0 || level > kMaxLevel) return 0;
  const uint64_t nodes = Shr(size, kTileHeight * level);
  const uint64_t full = nodes / kTileWidth;
  if (index < full) return kTileWidth;
  if (index == full) return static_cast<int>(nodes % kTileWidth);
  return 0;
}

absl::StatusOr<std::string> ExpandTile(std::string_view bottom_row) {
  if (bottom_row.empty() || bottom_row.size() % kHashSize != 0 ||
      bottom_row.size() > kTileWidth * kHashSize) {
    return absl::InvalidArgumentError(
        fmt::format("a tile's bottom row is 1 to {} hashes of {} bytes, got {} bytes", kTileWidth,
                    kHashSize, bottom_row.size()));
  }
  const int width = static_cast<int>(bottom_row.size() / kHashSize);
  std::string out;
  out.reserve(ExpandedBytes(width));
  out.append(bottom_row);
  size_t below = 0;  // offset in hashes of row r - 1
  for (int r = 1; r < kTileHeight; ++r) {
    for (size_t j = 0; j < RowHashes(width, r); ++j) {
      // Copies: `out` may reallocate while appending.
      const std::string left(HashAt(out, below + 2 * j));
      const std::string right(HashAt(out, below + 2 * j + 1));
      out += merkle::NodeHash(left, right);
    }
    below += RowHashes(width, r - 1);
  }
  return out;
}

absl::StatusOr<std::string> BottomRow(std::string_view expanded, int stored_width, int width) {
  if (stored_width < 1 || stored_width > kTileWidth || width < 1 || width > stored_width) {
    return absl::InvalidArgumentError(fmt::format(
        "width {} of a tile stored with width {}: need 1 <= width <= stored width <= {}", width,
        stored_width, kTileWidth));
  }
  if (expanded.size() != ExpandedBytes(stored_width)) {
    return absl::InvalidArgumentError(
        fmt::format("expanded tile of width {} has {} bytes, the layout needs {}", stored_width,
                    expanded.size(), ExpandedBytes(stored_width)));
  }
  return std::string(expanded.substr(0, width * kHashSize));
}

std::string TilePath(int level, uint64_t index, int width) {
  return fmt::format("tile/{}/{}{}", level, FormatIndex(index), WidthSuffix(width));
}

std::string EntriesPath(uint64_t index, int width) {
  return fmt::format("tile/entries/{}{}", FormatIndex(index), WidthSuffix(width));
}

absl::StatusOr<TilePathParts> ParseTilePath(std::string_view path) {
  constexpr std::string_view kTilePrefix = "tile/";
  constexpr std::string_view kEntriesPrefix = "entries/";
  if (!path.starts_with(kTilePrefix)) {
    return absl::InvalidArgumentError("tile path does not start with \"tile/\"");
  }
  std::string_view rest = path.substr(kTilePrefix.size());
  TilePathParts parts;
  if (rest.starts_with(kEntriesPrefix)) {
    parts.entries = true;
    rest.remove_prefix(kEntriesPrefix.size());
  } else {
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {
      return absl::InvalidArgumentError("tile path has no tile index");
    }
    ASSIGN_OR_RETURN(parts.level,
                     ParseSmallNumber("tile level", rest.substr(0, slash), 0, kMaxLevel));
    rest.remove_prefix(slash + 1);
  }
  std::vector<std::string_view> groups = SplitSlashes(rest);
  if (groups.size() >= 2 && groups[groups.size() - 2].ends_with(".p")) {
    ASSIGN_OR_RETURN(parts.width,
                     ParseSmallNumber("partial tile width", groups.back(), 1, kTileWidth - 1));
    groups.pop_back();
    groups.back().remove_suffix(2);
  }
  ASSIGN_OR_RETURN(parts.index, ParseIndex(groups));
  return parts;
}

absl::StatusOr<std::string> EncodeEntryBundle(const std::vector<std::string>& entries) {
  size_t total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].size() > kMaxEntrySize) {
      return absl::InvalidArgumentError(fmt::format(
          "entry {} has {} bytes, a bundle holds at most {}", i, entries[i].size(), kMaxEntrySize));
    }
    total += 2 + entries[i].size();
  }
  std::string out;
  out.reserve(total);
  for (const std::string& e : entries) {
    out += static_cast<char>(e.size() >> 8);
    out += static_cast<char>(e.size() & 0xff);
    out += e;
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> DecodeEntryBundle(std::string_view bundle) {
  std::vector<std::string> entries;
  while (!bundle.empty()) {
    if (bundle.size() < 2) {
      return absl::InvalidArgumentError(
          fmt::format("entry bundle is truncated in the length of entry {}", entries.size()));
    }
    const size_t length = static_cast<size_t>(static_cast<unsigned char>(bundle[0])) << 8 |
                          static_cast<unsigned char>(bundle[1]);
    bundle.remove_prefix(2);
    if (bundle.size() < length) {
      return absl::InvalidArgumentError(
          fmt::format("entry bundle is truncated: entry {} has {} of its {} bytes", entries.size(),
                      bundle.size(), length));
    }
    entries.emplace_back(bundle.substr(0, length));
    bundle.remove_prefix(length);
  }
  return entries;
}

absl::StatusOr<std::string> RootAt(uint64_t size, TileReader& reader) {
  if (size == 0) return merkle::EmptyRoot();
  NodeSource nodes(reader);
  return nodes.Range(0, size);
}

absl::StatusOr<std::vector<std::string>> InclusionProof(uint64_t index, uint64_t size,
                                                        TileReader& reader) {
  if (index >= size) {
    return absl::InvalidArgumentError(fmt::format("index {} is beyond tree size {}", index, size));
  }
  NodeSource nodes(reader);
  // PATH(index, D[begin:end]) top-down; the proof lists the siblings bottom-up.
  std::vector<std::string> proof;
  uint64_t begin = 0;
  uint64_t end = size;
  while (end - begin > 1) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    if (index < begin + k) {
      ASSIGN_OR_RETURN(std::string sibling, nodes.Range(begin + k, end));
      proof.push_back(std::move(sibling));
      end = begin + k;
    } else {
      ASSIGN_OR_RETURN(std::string sibling, nodes.Range(begin, begin + k));
      proof.push_back(std::move(sibling));
      begin += k;
    }
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                          TileReader& reader) {
  if (size1 > size2) {
    return absl::InvalidArgumentError(
        fmt::format("size1 {} is greater than size2 {}", size1, size2));
  }
  if (size1 == 0) {
    return absl::InvalidArgumentError("size1 is 0: a tree of size 0 has no consistency proof");
  }
  NodeSource nodes(reader);
  // SUBPROOF(size1 - begin, D[begin:end], whole) top-down; the proof lists it bottom-up.
  std::vector<std::string> proof;
  uint64_t begin = 0;
  uint64_t end = size2;
  bool whole = true;  // RFC 9162's b: D[begin:end] is the whole old tree's path so far
  while (end != size1) {
    const uint64_t k = std::bit_floor(end - begin - 1);
    if (size1 - begin <= k) {
      ASSIGN_OR_RETURN(std::string sibling, nodes.Range(begin + k, end));
      proof.push_back(std::move(sibling));
      end = begin + k;
    } else {
      ASSIGN_OR_RETURN(std::string sibling, nodes.Range(begin, begin + k));
      proof.push_back(std::move(sibling));
      begin += k;
      whole = false;
    }
  }
  // The old tree's last complete subtree: the verifier knows it already when it is the old root.
  if (!whole) {
    ASSIGN_OR_RETURN(std::string subtree, nodes.Range(begin, end));
    proof.push_back(std::move(subtree));
  }
  std::reverse(proof.begin(), proof.end());
  return proof;
}

absl::StatusOr<TreeBuilder> TreeBuilder::Load(uint64_t size, TileReader& reader) {
  TreeBuilder builder;
  builder.size_ = size;
  for (int level = 0; level <= kMaxLevel; ++level) {
    const uint64_t nodes = Shr(size, kTileHeight * level);
    if (nodes == 0) break;
    EdgeTile& edge = builder.edge_.emplace_back();
    edge.index = nodes / kTileWidth;
    const int width = static_cast<int>(nodes % kTileWidth);
    if (width == 0) continue;
    absl::StatusOr<store::LogTileRecord> record = reader.ReadTile(level, edge.index);
    if (absl::IsNotFound(record.status())) {
      return absl::DataLossError(fmt::format("stored tile {}/{} is missing", level, edge.index));
    }
    if (!record.ok()) return record.status();
    if (record->level != level || record->index != edge.index) {
      return absl::DataLossError(fmt::format("asked for tile {}/{}, the store returned {}/{}",
                                             level, edge.index, record->level, record->index));
    }
    if (record->width < 1 || record->width > kTileWidth ||
        record->data.size() != ExpandedBytes(record->width)) {
      return Truncated(level, edge.index, record->width, record->data.size());
    }
    if (record->width < width) {
      return absl::DataLossError(
          fmt::format("stored tile {}/{} has width {}, a tree of size {} needs {}", level,
                      edge.index, record->width, size, width));
    }
    // A wider stored tile (written for a larger tree whose state was not kept) holds the same
    // complete subtrees at its start.
    for (int r = 0; r < kTileHeight; ++r) {
      edge.rows[r].assign(record->data, RowOffset(record->width, r) * kHashSize,
                          RowHashes(width, r) * kHashSize);
    }
  }
  return builder;
}

void TreeBuilder::Append(std::string_view leaf_hash) {
  if (leaf_hash.size() != kHashSize) {
    // Every tile offset would be wrong from here on; the sequencer passes merkle::LeafHash.
    std::fprintf(stderr, "custos: TreeBuilder::Append got a %zu-byte leaf hash\n",
                 leaf_hash.size());
    std::abort();
  }
  AddNode(0, leaf_hash);
  ++size_;
}

void TreeBuilder::AddNode(int level, std::string_view hash) {
  if (edge_.size() <= static_cast<size_t>(level)) edge_.resize(level + 1);
  EdgeTile& edge = edge_[level];
  std::array<std::string, kTileHeight>& rows = edge.rows;
  rows[0].append(hash);
  changed_levels_ |= uint64_t{1} << level;
  // Like a binary counter: each node completes a parent when it is a right child.
  for (int r = 1; r < kTileHeight; ++r) {
    const size_t below = rows[r - 1].size() / kHashSize;
    if (below % 2 != 0) return;
    rows[r] += merkle::NodeHash(HashAt(rows[r - 1], below - 2), HashAt(rows[r - 1], below - 1));
  }
  if (rows[kTileHeight - 1].size() != 2 * kHashSize) return;

  // The tile is full: persist it, and its root is the next node one level up.
  const std::string root =
      merkle::NodeHash(HashAt(rows[kTileHeight - 1], 0), HashAt(rows[kTileHeight - 1], 1));
  store::LogTileRecord full{.level = level, .index = edge.index, .width = kTileWidth};
  full.data.reserve(ExpandedBytes(kTileWidth));
  for (std::string& row : rows) {
    full.data += row;
    row.clear();
  }
  completed_.push_back(std::move(full));
  ++edge.index;
  changed_levels_ &= ~(uint64_t{1} << level);
  AddNode(level + 1, root);
}

std::string TreeBuilder::Root() const {
  if (size_ == 0) return merkle::EmptyRoot();
  // The tree is the complete subtrees given by the bits of size_; each is in the partial tile
  // of its level, at the end of its row.
  std::string acc;
  for (int h = 0; h < 64; ++h) {
    if ((size_ >> h & 1) == 0) continue;
    const std::string& row = edge_[h / kTileHeight].rows[h % kTileHeight];
    const std::string_view node = HashAt(row, row.size() / kHashSize - 1);
    acc = acc.empty() ? std::string(node) : merkle::NodeHash(node, acc);
  }
  return acc;
}

std::vector<store::LogTileRecord> TreeBuilder::TakeChangedTiles() {
  std::vector<store::LogTileRecord> out = std::move(completed_);
  completed_.clear();
  for (size_t level = 0; level < edge_.size(); ++level) {
    if ((changed_levels_ >> level & 1) == 0) continue;
    const EdgeTile& edge = edge_[level];
    store::LogTileRecord partial{.level = static_cast<int>(level),
                                 .index = edge.index,
                                 .width = static_cast<int>(edge.rows[0].size() / kHashSize)};
    partial.data.reserve(ExpandedBytes(partial.width));
    for (const std::string& row : edge.rows) partial.data += row;
    out.push_back(std::move(partial));
  }
  changed_levels_ = 0;
  std::sort(out.begin(), out.end(),
            [](const store::LogTileRecord& a, const store::LogTileRecord& b) {
              return std::pair(a.level, a.index) < std::pair(b.level, b.index);
            });
  return out;
}

}  // namespace custos::audit::tiles
