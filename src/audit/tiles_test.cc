#include "audit/tiles.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "audit/merkle.h"
#include "crypto/random.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::audit::tiles {
namespace {

using ::testing::HasSubstr;
using Key = std::pair<int, uint64_t>;

// The store of one log's tiles, as the sequencer would keep it: one row per (level, index),
// overwritten as the tile grows.
class MemoryTileReader : public TileReader {
 public:
  absl::StatusOr<store::LogTileRecord> ReadTile(int level, uint64_t index) override {
    ++reads_[{level, index}];
    if (!error_.ok()) return error_;
    auto it = tiles_.find({level, index});
    if (it == tiles_.end()) return absl::NotFoundError("no such tile");
    return it->second;
  }

  // Persists what TakeChangedTiles returned, checking what a store may rely on: a full tile is
  // written once and never changes, a partial tile only grows.
  void Put(std::vector<store::LogTileRecord> records) {
    for (store::LogTileRecord& r : records) {
      EXPECT_TRUE(r.log_id.empty());
      auto it = tiles_.find({r.level, r.index});
      if (it != tiles_.end()) {
        EXPECT_LT(it->second.width, kTileWidth)
            << "full tile " << r.level << "/" << r.index << " written again";
        EXPECT_GT(r.width, it->second.width) << "tile " << r.level << "/" << r.index;
      }
      tiles_[{r.level, r.index}] = std::move(r);
    }
  }

  std::map<Key, store::LogTileRecord> tiles_;
  std::map<Key, int> reads_;
  absl::Status error_;
};

bool SameTiles(const std::map<Key, store::LogTileRecord>& a,
               const std::map<Key, store::LogTileRecord>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, tile] : a) {
    auto it = b.find(key);
    if (it == b.end() || it->second.width != tile.width || it->second.data != tile.data) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> LeafHashes(uint64_t n) {
  std::vector<std::string> leaves;
  leaves.reserve(n);
  for (uint64_t i = 0; i < n; ++i) leaves.push_back(merkle::LeafHash(fmt::format("entry {}", i)));
  return leaves;
}

std::string ReferenceRoot(const std::vector<std::string>& leaves, uint64_t begin, uint64_t end) {
  return merkle::RootFromLeafHashes(
      std::vector<std::string>(leaves.begin() + begin, leaves.begin() + end));
}

uint64_t Uniform(crypto::Random& rng, uint64_t n) {
  uint64_t x = 0;
  rng.Fill(&x, sizeof x);
  return x % n;
}

// The tiles a tree of `size` leaves has, with their widths, from the C2SP definition.
std::map<Key, int> ExpectedWidths(uint64_t size) {
  std::map<Key, int> widths;
  for (int level = 0; level < 8; ++level) {
    const uint64_t nodes = size >> (8 * level);
    for (uint64_t n = 0; n * 256 < nodes; ++n) {
      widths[{level, n}] = static_cast<int>(std::min<uint64_t>(256, nodes - n * 256));
    }
  }
  return widths;
}

std::map<Key, int> StoredWidths(const MemoryTileReader& reader) {
  std::map<Key, int> widths;
  for (const auto& [key, tile] : reader.tiles_) widths[key] = tile.width;
  return widths;
}

// Checks a proof from tiles against the root and leaf (and, when asked, the hashes merkle.h
// computes from the leaves).
::testing::AssertionResult InclusionMatches(MemoryTileReader& reader,
                                            const std::vector<std::string>& leaves,
                                            const std::string& root, uint64_t index, uint64_t size,
                                            bool compare_reference) {
  absl::StatusOr<std::vector<std::string>> proof = InclusionProof(index, size, reader);
  if (!proof.ok()) {
    return ::testing::AssertionFailure()
           << "InclusionProof(" << index << ", " << size << "): " << proof.status();
  }
  if (absl::Status st = merkle::VerifyInclusion(index, size, leaves[index], *proof, root);
      !st.ok()) {
    return ::testing::AssertionFailure()
           << "inclusion " << index << " in " << size << " does not verify: " << st;
  }
  if (compare_reference && *proof != merkle::InclusionProof(leaves, index, size).value()) {
    return ::testing::AssertionFailure()
           << "inclusion " << index << " in " << size << " differs from merkle.h";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult ConsistencyMatches(MemoryTileReader& reader,
                                              const std::vector<std::string>& leaves,
                                              const std::string& root1, const std::string& root2,
                                              uint64_t size1, uint64_t size2,
                                              bool compare_reference) {
  absl::StatusOr<std::vector<std::string>> proof = ConsistencyProof(size1, size2, reader);
  if (!proof.ok()) {
    return ::testing::AssertionFailure()
           << "ConsistencyProof(" << size1 << ", " << size2 << "): " << proof.status();
  }
  if (absl::Status st = merkle::VerifyConsistency(size1, size2, *proof, root1, root2); !st.ok()) {
    return ::testing::AssertionFailure()
           << "consistency " << size1 << " -> " << size2 << " does not verify: " << st;
  }
  if (compare_reference && *proof != merkle::ConsistencyProof(leaves, size1, size2).value()) {
    return ::testing::AssertionFailure()
           << "consistency " << size1 << " -> " << size2 << " differs from merkle.h";
  }
  return ::testing::AssertionSuccess();
}

// Builds a tree of leaves.size() leaves, persisting at every size in `take_at` and at the end.
MemoryTileReader BuildStore(const std::vector<std::string>& leaves,
                            const std::set<uint64_t>& take_at) {
  MemoryTileReader reader;
  TreeBuilder builder;
  for (const std::string& leaf : leaves) {
    builder.Append(leaf);
    if (take_at.contains(builder.size())) reader.Put(builder.TakeChangedTiles());
  }
  reader.Put(builder.TakeChangedTiles());
  return reader;
}

TEST(TilesPathTest, FormatsIndexInThreeDigitGroups) {
  EXPECT_EQ(TilePath(0, 1234067, 256), "tile/0/x001/x234/067");
  EXPECT_EQ(TilePath(0, 5, 256), "tile/0/005");
  EXPECT_EQ(TilePath(0, 0, 256), "tile/0/000");
  EXPECT_EQ(TilePath(3, 1000, 256), "tile/3/x001/000");
  EXPECT_EQ(TilePath(1, 1, 17), "tile/1/001.p/17");
  EXPECT_EQ(TilePath(63, std::numeric_limits<uint64_t>::max(), 1),
            "tile/63/x018/x446/x744/x073/x709/x551/615.p/1");
  EXPECT_EQ(EntriesPath(1234067, 12), "tile/entries/x001/x234/067.p/12");
  EXPECT_EQ(EntriesPath(999, 256), "tile/entries/999");
}

TEST(TilesPathTest, ParsesWhatItFormats) {
  for (int level : {0, 1, 9, 63}) {
    for (uint64_t index :
         {uint64_t{0}, uint64_t{5}, uint64_t{999}, uint64_t{1000}, uint64_t{1234067},
          (uint64_t{1} << 40) + 7, std::numeric_limits<uint64_t>::max()}) {
      for (int width : {1, 17, 255, 256}) {
        const std::string path = TilePath(level, index, width);
        absl::StatusOr<TilePathParts> parts = ParseTilePath(path);
        ASSERT_TRUE(parts.ok()) << path << ": " << parts.status();
        EXPECT_FALSE(parts->entries) << path;
        EXPECT_EQ(parts->level, level) << path;
        EXPECT_EQ(parts->index, index) << path;
        EXPECT_EQ(parts->width, width) << path;

        const std::string entries = EntriesPath(index, width);
        parts = ParseTilePath(entries);
        ASSERT_TRUE(parts.ok()) << entries << ": " << parts.status();
        EXPECT_TRUE(parts->entries) << entries;
        EXPECT_EQ(parts->level, 0) << entries;
        EXPECT_EQ(parts->index, index) << entries;
        EXPECT_EQ(parts->width, width) << entries;
      }
    }
  }
}

TEST(TilesPathTest, RejectsMalformedPaths) {
  for (const char* path : {
           "tile/0/1",                                       // index group not three digits
           "tile/0/x1/000",                                  // "x" group not three digits
           "tile/0/001/000",                                 // inner group without "x"
           "tile/0/x001",                                    // last group with "x"
           "tile/0/x000/001",                                // non-canonical leading zero group
           "tile/0/0001",                                    //
           "tile/0/000.p/0",                                 // width 0
           "tile/0/000.p/256",                               // a full tile has no .p
           "tile/0/000.p/007",                               // width with leading zeros
           "tile/0/000.p/+7",                                //
           "tile/0/000.p",                                   // .p without width
           "tile/0/000.p/1/2",                               //
           "tile/64/000",                                    // level out of range
           "tile/01/000",                                    // level with leading zero
           "tile/-1/000",                                    //
           "tile/entries/000.p/",                            // empty width
           "tile/0/000/",                                    // trailing slash
           "tile/0//000",                                    // empty element
           "tile/0/",                                        //
           "tile/0",                                         //
           "tile/entries/",                                  //
           "tile/entries",                                   //
           "/tile/0/000",                                    // leading slash
           "tiles/0/000",                                    //
           "",                                               //
           "tile/0/x018/x446/x744/x073/x709/x551/616",       // 2^64
           "tile/0/x001/x000/x000/x000/x000/x000/x000/000",  // 8 groups
       }) {
    absl::StatusOr<TilePathParts> parts = ParseTilePath(path);
    EXPECT_EQ(parts.status().code(), absl::StatusCode::kInvalidArgument) << "\"" << path << "\"";
  }
  EXPECT_THAT(std::string(ParseTilePath("tile/64/000").status().message()), HasSubstr("level"));
  EXPECT_THAT(std::string(ParseTilePath("tile/0/000.p/256").status().message()),
              HasSubstr("width"));
  EXPECT_THAT(std::string(ParseTilePath("tile/0/x1/000").status().message()), HasSubstr("x1"));
}

TEST(TilesWidthTest, SpecExampleOfSize70000) {
  // 70000 = 273 * 256 + 112 leaves; 273 = 256 + 17 level-1 nodes; 1 level-2 node.
  EXPECT_EQ(TileWidthAt(70000, 0, 0), 256);
  EXPECT_EQ(TileWidthAt(70000, 0, 272), 256);
  EXPECT_EQ(TileWidthAt(70000, 0, 273), 112);
  EXPECT_EQ(TileWidthAt(70000, 0, 274), 0);
  EXPECT_EQ(TileWidthAt(70000, 1, 0), 256);
  EXPECT_EQ(TileWidthAt(70000, 1, 1), 17);
  EXPECT_EQ(TileWidthAt(70000, 1, 2), 0);
  EXPECT_EQ(TileWidthAt(70000, 2, 0), 1);
  EXPECT_EQ(TileWidthAt(70000, 2, 1), 0);
  EXPECT_EQ(TileWidthAt(70000, 3, 0), 0);
}

TEST(TilesWidthTest, EdgeSizes) {
  EXPECT_EQ(TileWidthAt(0, 0, 0), 0);
  EXPECT_EQ(TileWidthAt(1, 0, 0), 1);
  EXPECT_EQ(TileWidthAt(255, 1, 0), 0);
  // Size 256: one full level-0 tile and a level-1 tile of width 1.
  EXPECT_EQ(TileWidthAt(256, 0, 0), 256);
  EXPECT_EQ(TileWidthAt(256, 0, 1), 0);
  EXPECT_EQ(TileWidthAt(256, 1, 0), 1);
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(TileWidthAt(max, 7, 0), 255);
  EXPECT_EQ(TileWidthAt(max, 6, 255), 255);
  EXPECT_EQ(TileWidthAt(max, 0, max >> 8), 255);
  EXPECT_EQ(TileWidthAt(max, 8, 0), 0);
  EXPECT_EQ(TileWidthAt(max, 63, 0), 0);
  EXPECT_EQ(TileWidthAt(max, 64, 0), 0);
  EXPECT_EQ(TileWidthAt(max, -1, 0), 0);
}

TEST(TilesExpandTest, RowsHoldEveryCompleteSubtree) {
  const std::vector<std::string> leaves = LeafHashes(256);
  for (size_t width : {1, 2, 3, 7, 8, 100, 255, 256}) {
    std::string bottom;
    for (size_t i = 0; i < width; ++i) bottom += leaves[i];
    absl::StatusOr<std::string> expanded = ExpandTile(bottom);
    ASSERT_TRUE(expanded.ok()) << expanded.status();
    size_t offset = 0;
    for (int r = 0; r < 8; ++r) {
      for (size_t j = 0; j < (width >> r); ++j) {
        ASSERT_EQ(expanded->substr((offset + j) * 32, 32),
                  ReferenceRoot(leaves, j << r, (j + 1) << r))
            << "width " << width << " row " << r << " node " << j;
      }
      offset += width >> r;
    }
    EXPECT_EQ(expanded->size(), offset * 32) << "width " << width;
    EXPECT_LE(offset, static_cast<size_t>(kMaxExpandedHashes));

    for (size_t w = 1; w <= width; w = w * 3 + 1) {
      absl::StatusOr<std::string> row =
          BottomRow(*expanded, static_cast<int>(width), static_cast<int>(w));
      ASSERT_TRUE(row.ok()) << row.status();
      EXPECT_EQ(*row, bottom.substr(0, w * 32));
    }
  }
}

TEST(TilesExpandTest, RefusesBadInput) {
  EXPECT_EQ(ExpandTile("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandTile(std::string(31, 'a')).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandTile(std::string(33, 'a')).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExpandTile(std::string(257 * 32, 'a')).status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::string expanded = ExpandTile(std::string(5 * 32, 'a')).value();  // 5 + 2 + 1 hashes
  ASSERT_EQ(expanded.size(), 8u * 32);
  EXPECT_TRUE(BottomRow(expanded, 5, 5).ok());
  EXPECT_EQ(BottomRow(expanded, 5, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BottomRow(expanded, 5, 6).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BottomRow(expanded, 4, 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BottomRow(expanded, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BottomRow(expanded, 257, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BottomRow(expanded.substr(1), 5, 5).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TilesEntryBundleTest, RoundTrips) {
  const std::vector<std::string> entries = {"ab", "", std::string(65535, 'z'), "{\"x\":1}"};
  absl::StatusOr<std::string> bundle = EncodeEntryBundle(entries);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->substr(0, 6), std::string("\x00\x02"
                                              "ab\x00\x00",
                                              6));
  EXPECT_EQ(bundle->substr(6, 2), "\xff\xff");
  absl::StatusOr<std::vector<std::string>> decoded = DecodeEntryBundle(*bundle);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, entries);

  EXPECT_EQ(EncodeEntryBundle({}).value(), "");
  EXPECT_TRUE(DecodeEntryBundle("").value().empty());
}

TEST(TilesEntryBundleTest, RefusesOversizedEntriesAndTruncatedBundles) {
  EXPECT_EQ(EncodeEntryBundle({"a", std::string(65536, 'z')}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string bundle = EncodeEntryBundle({"abc", "de"}).value();
  for (size_t cut = 1; cut < bundle.size(); ++cut) {
    if (cut == 5) continue;  // exactly the first entry: a valid bundle of one
    EXPECT_EQ(DecodeEntryBundle(bundle.substr(0, cut)).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "cut at " << cut;
  }
  EXPECT_EQ(DecodeEntryBundle(bundle.substr(0, 5)).value(), std::vector<std::string>{"abc"});
}

class TilesBuilderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    leaves_ = new std::vector<std::string>(LeafHashes(kSmall));
    roots_ = new std::vector<std::string>();
    for (uint64_t s = 0; s <= kSmall; ++s) roots_->push_back(ReferenceRoot(*leaves_, 0, s));
  }
  static void TearDownTestSuite() {
    delete leaves_;
    delete roots_;
  }

  static constexpr uint64_t kSmall = 1100;
  static std::vector<std::string>* leaves_;
  static std::vector<std::string>* roots_;  // roots_[s]: MTH of the first s leaves
};
std::vector<std::string>* TilesBuilderTest::leaves_ = nullptr;
std::vector<std::string>* TilesBuilderTest::roots_ = nullptr;

TEST_F(TilesBuilderTest, EverySizeUpTo1100PersistingAfterEachAppend) {
  const std::vector<std::string>& leaves = *leaves_;
  const std::vector<std::string>& roots = *roots_;
  crypto::SeededRandom rng(1);
  MemoryTileReader reader;
  TreeBuilder builder;
  EXPECT_EQ(builder.Root(), merkle::EmptyRoot());
  EXPECT_TRUE(builder.TakeChangedTiles().empty());
  EXPECT_EQ(RootAt(0, reader).value(), merkle::EmptyRoot());

  for (uint64_t size = 1; size <= kSmall; ++size) {
    builder.Append(leaves[size - 1]);
    ASSERT_EQ(builder.size(), size);
    ASSERT_EQ(builder.Root(), roots[size]) << "size " << size;
    reader.Put(builder.TakeChangedTiles());
    ASSERT_EQ(StoredWidths(reader), ExpectedWidths(size)) << "size " << size;
    // The store holds exactly what a tree of this size has: roots and proofs need every width
    // to be just enough.
    absl::StatusOr<std::string> root = RootAt(size, reader);
    ASSERT_TRUE(root.ok()) << "size " << size << ": " << root.status();
    ASSERT_EQ(*root, roots[size]) << "size " << size;

    std::vector<uint64_t> indices;
    if (size <= 300) {
      for (uint64_t i = 0; i < size; ++i) indices.push_back(i);
    } else {
      indices = {0, size - 1, size / 2, 255, 256};
      for (int n = 0; n < 5; ++n) indices.push_back(Uniform(rng, size));
    }
    for (uint64_t i : indices) {
      ASSERT_TRUE(InclusionMatches(reader, leaves, roots[size], i, size, size <= 64));
    }

    std::vector<uint64_t> olds;
    if (size <= 200) {
      for (uint64_t m = 1; m <= size; ++m) olds.push_back(m);
    } else {
      olds = {1, size - 1, size, 256, 512, 1024};
      for (int n = 0; n < 5; ++n) olds.push_back(1 + Uniform(rng, size));
    }
    for (uint64_t m : olds) {
      if (m > size) continue;
      ASSERT_TRUE(ConsistencyMatches(reader, leaves, roots[m], roots[size], m, size, size <= 64));
    }
  }
  EXPECT_TRUE(builder.TakeChangedTiles().empty());

  // With tiles wider than the trees asked about (a later state of the store).
  for (uint64_t size = 1; size <= kSmall; ++size) {
    ASSERT_EQ(RootAt(size, reader).value(), roots[size]) << "size " << size;
    for (uint64_t i : {uint64_t{0}, size / 3, size - 1, Uniform(rng, size)}) {
      ASSERT_TRUE(InclusionMatches(reader, leaves, roots[size], i, size, size % 37 == 0));
    }
    for (uint64_t m : {uint64_t{1}, size, (size + 1) / 2, 1 + Uniform(rng, size)}) {
      ASSERT_TRUE(
          ConsistencyMatches(reader, leaves, roots[m], roots[size], m, size, size % 37 == 0));
    }
  }
}

TEST_F(TilesBuilderTest, IrregularPersistingStoresTheSameTiles) {
  const std::vector<std::string>& leaves = *leaves_;
  std::set<uint64_t> every;
  for (uint64_t s = 1; s <= kSmall; ++s) every.insert(s);
  const MemoryTileReader each_append = BuildStore(leaves, every);

  for (uint64_t seed : {2, 3, 4}) {
    crypto::SeededRandom rng(seed);
    MemoryTileReader reader;
    TreeBuilder builder;
    uint64_t next_take = 1 + Uniform(rng, 600);
    for (uint64_t size = 1; size <= kSmall; ++size) {
      builder.Append(leaves[size - 1]);
      if (size == next_take) {
        reader.Put(builder.TakeChangedTiles());
        next_take += 1 + Uniform(rng, 600);
        ASSERT_EQ(StoredWidths(reader), ExpectedWidths(size)) << "size " << size;
        ASSERT_EQ(RootAt(size, reader).value(), (*roots_)[size]) << "size " << size;
      }
    }
    reader.Put(builder.TakeChangedTiles());
    EXPECT_TRUE(SameTiles(reader.tiles_, each_append.tiles_)) << "seed " << seed;
  }
}

TEST_F(TilesBuilderTest, TakeChangedTilesReturnsOnlyWhatChanged) {
  const std::vector<std::string>& leaves = *leaves_;
  TreeBuilder builder;
  for (int i = 0; i < 255; ++i) builder.Append(leaves[i]);
  std::vector<store::LogTileRecord> changed = builder.TakeChangedTiles();
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].width, 255);
  EXPECT_TRUE(builder.TakeChangedTiles().empty());

  // Leaf 256 fills tile 0/0 and starts level 1.
  builder.Append(leaves[255]);
  changed = builder.TakeChangedTiles();
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(std::pair(changed[0].level, changed[0].index), std::pair(0, uint64_t{0}));
  EXPECT_EQ(changed[0].width, 256);
  EXPECT_EQ(changed[0].data.size(), 510u * 32);
  EXPECT_EQ(std::pair(changed[1].level, changed[1].index), std::pair(1, uint64_t{0}));
  EXPECT_EQ(changed[1].width, 1);
  EXPECT_EQ(changed[1].data, ReferenceRoot(leaves, 0, 256));

  builder.Append(leaves[256]);
  changed = builder.TakeChangedTiles();
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(std::pair(changed[0].level, changed[0].index), std::pair(0, uint64_t{1}));
  EXPECT_EQ(changed[0].width, 1);
  EXPECT_EQ(changed[0].data, leaves[256]);
}

TEST_F(TilesBuilderTest, LoadContinuesTheTree) {
  const std::vector<std::string>& leaves = *leaves_;
  const MemoryTileReader whole = BuildStore(leaves, {});
  for (uint64_t split : {0, 1, 2, 3, 100, 255, 256, 257, 511, 512, 513, 700, 1099, 1100}) {
    std::set<uint64_t> takes;
    for (uint64_t s = 1; s <= split; s += 97) takes.insert(s);
    MemoryTileReader reader =
        BuildStore(std::vector<std::string>(leaves.begin(), leaves.begin() + split), takes);
    absl::StatusOr<TreeBuilder> loaded = TreeBuilder::Load(split, reader);
    ASSERT_TRUE(loaded.ok()) << "split " << split << ": " << loaded.status();
    EXPECT_EQ(loaded->size(), split);
    EXPECT_EQ(loaded->Root(), (*roots_)[split]) << "split " << split;
    EXPECT_TRUE(loaded->TakeChangedTiles().empty());
    for (uint64_t i = split; i < kSmall; ++i) {
      loaded->Append(leaves[i]);
      if (i % 50 == 0) reader.Put(loaded->TakeChangedTiles());
    }
    reader.Put(loaded->TakeChangedTiles());
    EXPECT_EQ(loaded->Root(), (*roots_)[kSmall]);
    EXPECT_TRUE(SameTiles(reader.tiles_, whole.tiles_)) << "split " << split;

    // Loading from a later state of the store (wider tiles) gives the same tree.
    MemoryTileReader later = whole;
    absl::StatusOr<TreeBuilder> from_later = TreeBuilder::Load(split, later);
    ASSERT_TRUE(from_later.ok()) << from_later.status();
    EXPECT_EQ(from_later->Root(), (*roots_)[split]) << "split " << split;
  }
}

TEST(TilesLargeTest, LargeTreesMatchTheReference) {
  constexpr uint64_t kSize = 300007;
  const std::vector<std::string> leaves = LeafHashes(kSize);
  const std::set<uint64_t> checkpoints = {65535, 65536, 65537, 70000, 131075, kSize};
  crypto::SeededRandom rng(5);
  MemoryTileReader reader;
  TreeBuilder builder;
  uint64_t next_take = 1 + Uniform(rng, 5000);
  std::map<uint64_t, std::string> roots;
  for (uint64_t size = 1; size <= kSize; ++size) {
    builder.Append(leaves[size - 1]);
    if (size == next_take) {
      reader.Put(builder.TakeChangedTiles());
      next_take += 1 + Uniform(rng, 5000);
    }
    if (!checkpoints.contains(size)) continue;
    reader.Put(builder.TakeChangedTiles());
    SCOPED_TRACE(fmt::format("size {}", size));
    const std::string root = ReferenceRoot(leaves, 0, size);
    roots[size] = root;
    ASSERT_EQ(builder.Root(), root);
    ASSERT_EQ(StoredWidths(reader), ExpectedWidths(size));
    ASSERT_EQ(RootAt(size, reader).value(), root);

    ASSERT_TRUE(InclusionMatches(reader, leaves, root, size / 2 + 1, size, true));
    for (uint64_t i : {uint64_t{0}, size - 1, uint64_t{65535} % size, uint64_t{65536} % size}) {
      ASSERT_TRUE(InclusionMatches(reader, leaves, root, i, size, false));
    }
    for (int n = 0; n < 200; ++n) {
      ASSERT_TRUE(InclusionMatches(reader, leaves, root, Uniform(rng, size), size, false));
    }
    for (const auto& [old_size, old_root] : roots) {
      ASSERT_TRUE(
          ConsistencyMatches(reader, leaves, old_root, root, old_size, size, old_size == 65537));
    }
    // Reference roots cost m hashes each: mostly small old sizes, a few anywhere.
    for (int n = 0; n < 12; ++n) {
      const uint64_t m = 1 + Uniform(rng, n < 10 ? std::min<uint64_t>(size, 5000) : size);
      ASSERT_TRUE(
          ConsistencyMatches(reader, leaves, ReferenceRoot(leaves, 0, m), root, m, size, false));
    }
  }

  // The stored rows of the 70000-leaf prefix, from the C2SP definition: level-0 rows hold leaf
  // hashes, level-1 rows the roots of 256 leaves, level 2 the root of 65536.
  for (const auto& [key, width] : ExpectedWidths(70000)) {
    const auto [level, index] = key;
    std::string bottom;
    const uint64_t span = uint64_t{1} << (8 * level);
    for (int i = 0; i < width; ++i) {
      const uint64_t begin = (index * 256 + i) * span;
      bottom += level == 0 ? leaves[begin] : ReferenceRoot(leaves, begin, begin + span);
    }
    const store::LogTileRecord& stored = reader.tiles_.at(key);
    ASSERT_GE(stored.width, width);
    const std::string expected = ExpandTile(bottom).value();
    if (stored.width == width) {
      EXPECT_EQ(stored.data, expected) << "tile " << level << "/" << index;
    } else {
      EXPECT_EQ(BottomRow(stored.data, stored.width, width).value(), bottom)
          << "tile " << level << "/" << index;
    }
  }

  // The final store answers for every earlier size.
  for (const auto& [size, root] : roots) EXPECT_EQ(RootAt(size, reader).value(), root);
}

TEST(TilesLargeTest, SpecLayoutAtSize70000AndLoad) {
  const std::vector<std::string> leaves = LeafHashes(70300);
  const MemoryTileReader whole = BuildStore(leaves, {});
  const std::vector<std::string> prefix(leaves.begin(), leaves.begin() + 70000);
  MemoryTileReader reader = BuildStore(prefix, {1000, 65536, 69999});

  std::map<Key, int> widths;
  for (uint64_t n = 0; n < 273; ++n) widths[{0, n}] = 256;
  widths[{0, 273}] = 112;
  widths[{1, 0}] = 256;
  widths[{1, 1}] = 17;
  widths[{2, 0}] = 1;
  EXPECT_EQ(StoredWidths(reader), widths);
  EXPECT_EQ(TilePath(0, 273, 112), "tile/0/273.p/112");
  EXPECT_EQ(TilePath(1, 1, 17), "tile/1/001.p/17");
  EXPECT_EQ(TilePath(2, 0, 1), "tile/2/000.p/1");

  absl::StatusOr<TreeBuilder> loaded = TreeBuilder::Load(70000, reader);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (uint64_t i = 70000; i < leaves.size(); ++i) loaded->Append(leaves[i]);
  reader.Put(loaded->TakeChangedTiles());
  EXPECT_TRUE(SameTiles(reader.tiles_, whole.tiles_));
  EXPECT_EQ(loaded->Root(), merkle::RootFromLeafHashes(leaves));
}

class TilesErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    leaves_ = LeafHashes(70000);
    reader_ = BuildStore(leaves_, {});
  }
  std::vector<std::string> leaves_;
  MemoryTileReader reader_;
};

TEST_F(TilesErrorTest, RefusesArgumentsMerkleRefuses) {
  EXPECT_EQ(InclusionProof(5, 5, reader_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InclusionProof(0, 0, reader_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(0, 5, reader_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConsistencyProof(6, 5, reader_).status().code(), absl::StatusCode::kInvalidArgument);
  MemoryTileReader empty;
  EXPECT_TRUE(ConsistencyProof(7, 7, empty).value().empty());
  EXPECT_TRUE(InclusionProof(0, 1, reader_).value().empty());
}

TEST_F(TilesErrorTest, MissingTileIsDataLoss) {
  reader_.tiles_.erase({0, 100});
  EXPECT_EQ(InclusionProof(100 * 256 + 7, 70000, reader_).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ConsistencyProof(100 * 256 + 7, 70000, reader_).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(InclusionProof(99 * 256, 70000, reader_).ok());  // another tile: unaffected

  reader_.tiles_.erase({1, 1});
  EXPECT_EQ(RootAt(70000, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TreeBuilder::Load(70000, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(RootAt(65536, reader_).ok());
}

TEST_F(TilesErrorTest, TruncatedOrMislabelledTileIsDataLoss) {
  MemoryTileReader truncated = reader_;
  truncated.tiles_.at({0, 273}).data.pop_back();
  EXPECT_EQ(RootAt(70000, truncated).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TreeBuilder::Load(70000, truncated).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(InclusionProof(70000 - 1, 70000, truncated).status().code(),
            absl::StatusCode::kDataLoss);

  MemoryTileReader wrong_width = reader_;
  wrong_width.tiles_.at({1, 1}).width = 16;  // data still of width 17
  EXPECT_EQ(RootAt(70000, wrong_width).status().code(), absl::StatusCode::kDataLoss);

  MemoryTileReader mislabelled = reader_;
  mislabelled.tiles_.at({0, 5}).index = 6;
  EXPECT_EQ(InclusionProof(5 * 256, 70000, mislabelled).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(TilesErrorTest, TooNarrowTileIsDataLoss) {
  // The store is at size 70000: the partial tiles are 0/273 width 112 and 1/1 width 17.
  EXPECT_EQ(RootAt(70001, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(InclusionProof(3, 70001, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ConsistencyProof(3, 70001, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(TreeBuilder::Load(70001, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(RootAt(256 * 256 * 2, reader_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(RootAt(70000, reader_).ok());
}

TEST_F(TilesErrorTest, StoreFailureIsPassedOn) {
  reader_.error_ = absl::UnavailableError("store down");
  EXPECT_EQ(RootAt(70000, reader_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(InclusionProof(1, 70000, reader_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(TreeBuilder::Load(70000, reader_).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TilesErrorTest, ReadsEachTileOncePerCall) {
  crypto::SeededRandom rng(6);
  for (int n = 0; n < 200; ++n) {
    const uint64_t size = 1 + Uniform(rng, 70000);
    const uint64_t other = 1 + Uniform(rng, size);
    for (int call = 0; call < 3; ++call) {
      reader_.reads_.clear();
      absl::Status st = call == 0   ? InclusionProof(other - 1, size, reader_).status()
                        : call == 1 ? ConsistencyProof(other, size, reader_).status()
                                    : RootAt(size, reader_).status();
      ASSERT_TRUE(st.ok()) << st;
      for (const auto& [key, count] : reader_.reads_) {
        ASSERT_EQ(count, 1) << "call " << call << " size " << size << " tile " << key.first << "/"
                            << key.second;
      }
    }
  }
}

}  // namespace
}  // namespace custos::audit::tiles
