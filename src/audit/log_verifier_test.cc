#include "audit/log_verifier.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/tiles.h"
#include "crypto/ed25519.h"

namespace custos::audit {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr std::string_view kOrigin = "log.example:8080/t/acme";
constexpr std::string_view kKeyName = "log.example:8080";

std::string Seed(char fill) { return std::string(32, fill); }

std::string Vkey(std::string_view name, const std::string& seed) {
  return note::FormatVerifierKey(name, crypto::ed25519::PublicKeyFromSeed(seed).value()).value();
}

std::vector<std::string> Entries(int n, std::string_view tag = "") {
  std::vector<std::string> entries;
  for (int i = 0; i < n; ++i) {
    entries.push_back(
        fmt::format(R"({{"eventType":"user.session.start","uuid":"e-{}{}"}})", i, tag));
  }
  return entries;
}

std::vector<std::string> LeafHashes(const std::vector<std::string>& entries) {
  std::vector<std::string> leaves;
  for (const std::string& e : entries) leaves.push_back(merkle::LeafHash(e));
  return leaves;
}

std::string SignedCheckpoint(uint64_t size, const std::string& root,
                             const std::string& seed = Seed('k'),
                             std::string_view name = kKeyName) {
  std::string body =
      FormatCheckpoint({.origin = std::string(kOrigin), .size = size, .root_hash = root}).value();
  return note::Sign(body, name, seed).value();
}

// The files a server serves for a log of `entries`: every tile of every level at its width for
// the whole tree, the entry bundles, the signed checkpoint and the keys.
std::map<std::string, std::string> ServeLog(const std::vector<std::string>& entries) {
  std::map<std::string, std::string> files;
  tiles::TreeBuilder builder;
  for (const std::string& leaf : LeafHashes(entries)) builder.Append(leaf);
  for (const store::LogTileRecord& tile : builder.TakeChangedTiles()) {
    files[tiles::TilePath(tile.level, tile.index, tile.width)] =
        tiles::BottomRow(tile.data, tile.width, tile.width).value();
  }
  for (size_t first = 0; first < entries.size(); first += tiles::kTileWidth) {
    const size_t last = std::min(entries.size(), first + tiles::kTileWidth);
    std::vector<std::string> bundle(entries.begin() + first, entries.begin() + last);
    files[tiles::EntriesPath(first / tiles::kTileWidth, static_cast<int>(last - first))] =
        tiles::EncodeEntryBundle(bundle).value();
  }
  const std::string root = merkle::RootFromLeafHashes(LeafHashes(entries));
  EXPECT_EQ(builder.Root(), root);
  files["checkpoint"] = SignedCheckpoint(entries.size(), root);
  files["keys"] = Vkey(kKeyName, Seed('k')) + "\n";
  return files;
}

class MemorySource : public LogSource {
 public:
  explicit MemorySource(std::map<std::string, std::string> files) : files_(std::move(files)) {}

  absl::StatusOr<std::string> Fetch(std::string_view path) override {
    fetched_.emplace_back(path);
    if (!error_.ok()) return error_;
    auto it = files_.find(std::string(path));
    if (it == files_.end()) return absl::NotFoundError(fmt::format("{}: 404", path));
    return it->second;
  }

  std::map<std::string, std::string>& files() { return files_; }
  const std::vector<std::string>& fetched() const { return fetched_; }
  void FailWith(absl::Status error) { error_ = std::move(error); }

 private:
  std::map<std::string, std::string> files_;
  std::vector<std::string> fetched_;
  absl::Status error_;
};

// Replaces entry bundle `index` (served at `width`) by `entries`.
void ReplaceBundle(MemorySource& source, uint64_t index, int width,
                   const std::vector<std::string>& entries) {
  source.files()[tiles::EntriesPath(index, width)] = tiles::EncodeEntryBundle(entries).value();
}

class LogVerifierTest : public ::testing::Test {
 protected:
  VerifyOptions Options(std::vector<std::string> keys = {}, bool incremental = false) {
    VerifyOptions options;
    options.trusted_keys = std::move(keys);
    options.incremental = incremental;
    options.clock = &clock_;
    return options;
  }

  absl::StatusOr<VerifyReport> Verify(MemorySource& source,
                                      const std::optional<VerifyState>& previous = std::nullopt,
                                      bool incremental = false) {
    return VerifyLog(source, Options({}, incremental), previous, nullptr);
  }

  VerifyState StateOf(const std::vector<std::string>& entries) {
    MemorySource source(ServeLog(entries));
    absl::StatusOr<VerifyReport> report = Verify(source);
    EXPECT_TRUE(report.ok()) << report.status();
    return report->state;
  }

  FakeClock clock_;
};

// Expects a log verification failure that names `index` and says `text`.
void ExpectFailureAt(const absl::StatusOr<VerifyReport>& result, uint64_t index,
                     std::string_view text) {
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsLogVerificationFailure(result.status())) << result.status();
  EXPECT_THAT(FailedIndex(result.status()), Optional(index)) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(text));
}

void ExpectFailure(const absl::StatusOr<VerifyReport>& result, std::string_view text) {
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(IsLogVerificationFailure(result.status())) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(text));
}

TEST(CompactRangeTest, RootMatchesMerkleTreeHashAtEverySize) {
  std::vector<std::string> leaves = LeafHashes(Entries(70));
  CompactRange range;
  EXPECT_EQ(range.Root(), merkle::EmptyRoot());
  for (size_t n = 1; n <= leaves.size(); ++n) {
    range.Append(leaves[n - 1]);
    std::vector<std::string> prefix(leaves.begin(), leaves.begin() + n);
    ASSERT_EQ(range.Root(), merkle::RootFromLeafHashes(prefix)) << n;
    ASSERT_EQ(range.hashes().size(), static_cast<size_t>(std::popcount(n)));
  }
  EXPECT_FALSE(CompactRange::FromHashes(70, {leaves[0]}).ok());
}

TEST_F(LogVerifierTest, GoodLogVerifiesTrustingPublishedKeysOnFirstUse) {
  const std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  absl::StatusOr<VerifyReport> report =
      VerifyLog(source, Options(), std::nullopt,
                [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); });
  ASSERT_TRUE(report.ok()) << report.status();

  const std::string vkey = Vkey(kKeyName, Seed('k'));
  EXPECT_THAT(report->trusted_on_first_use, testing::ElementsAre(vkey));
  EXPECT_THAT(report->signed_by, testing::ElementsAre(std::string(kKeyName)));
  EXPECT_EQ(report->first_checked, 0u);
  EXPECT_FALSE(report->consistent_with_previous);
  const VerifyState& state = report->state;
  EXPECT_EQ(state.origin, kOrigin);
  EXPECT_EQ(state.size, 600u);
  EXPECT_EQ(state.root_hash, merkle::RootFromLeafHashes(LeafHashes(entries)));
  EXPECT_EQ(state.checkpoint, source.files()["checkpoint"]);
  EXPECT_THAT(state.verifier_keys, testing::ElementsAre(vkey));
  EXPECT_EQ(state.compact_range.size(), 4u);  // 600 = 512 + 64 + 16 + 8
  EXPECT_EQ(state.verified_at, clock_.Now());
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{600}, uint64_t{600}));
}

TEST_F(LogVerifierTest, PinnedKeyNeedsNoPublishedKeys) {
  MemorySource source(ServeLog(Entries(10)));
  source.files().erase("keys");
  absl::StatusOr<VerifyReport> report =
      VerifyLog(source, Options({Vkey(kKeyName, Seed('k'))}), std::nullopt, nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->trusted_on_first_use.empty());
  EXPECT_THAT(source.fetched(), Not(Contains("keys")));
}

TEST_F(LogVerifierTest, StateRoundTripsThroughJson) {
  VerifyState state = StateOf(Entries(300));
  std::string json = FormatVerifyState(state);
  EXPECT_THAT(json, HasSubstr("\"compactRange\""));
  EXPECT_THAT(json, HasSubstr("\"verifiedAt\": \"2026-01-01T00:00:00.000Z\""));
  absl::StatusOr<VerifyState> parsed = ParseVerifyState(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, state);
}

TEST_F(LogVerifierTest, DamagedStateIsRefused) {
  VerifyState state = StateOf(Entries(300));
  std::swap(state.compact_range[0], state.compact_range[1]);
  absl::Status st = ParseVerifyState(FormatVerifyState(state)).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("does not give its root hash"));
  EXPECT_FALSE(ParseVerifyState("{\"origin\":\"x\"}").ok());
  EXPECT_FALSE(ParseVerifyState("not json").ok());
}

TEST_F(LogVerifierTest, GrownLogIsConsistentWithPreviousState) {
  const std::vector<std::string> entries = Entries(700);
  VerifyState before = StateOf({entries.begin(), entries.begin() + 300});
  MemorySource source(ServeLog(entries));
  absl::StatusOr<VerifyReport> report = Verify(source, before);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->consistent_with_previous);
  EXPECT_EQ(report->first_checked, 0u);
  EXPECT_EQ(report->state.size, 700u);
  EXPECT_TRUE(report->trusted_on_first_use.empty());  // the state's key is trusted
  EXPECT_THAT(source.fetched(), Not(Contains("keys")));
}

TEST_F(LogVerifierTest, IncrementalChecksOnlyNewEntriesAndReachesTheSameState) {
  const std::vector<std::string> entries = Entries(700);
  for (size_t old_size : {300, 512, 700}) {
    VerifyState before = StateOf({entries.begin(), entries.begin() + old_size});
    MemorySource full_source(ServeLog(entries));
    absl::StatusOr<VerifyReport> full = Verify(full_source, before);
    MemorySource source(ServeLog(entries));
    absl::StatusOr<VerifyReport> incremental = Verify(source, before, /*incremental=*/true);
    ASSERT_TRUE(incremental.ok()) << old_size << ": " << incremental.status();
    EXPECT_EQ(incremental->first_checked, old_size);
    EXPECT_TRUE(incremental->consistent_with_previous);
    EXPECT_EQ(incremental->state, full->state) << old_size;
    // Bundle 0 (entries 0..255) is never read again.
    EXPECT_THAT(source.fetched(), Not(Contains("tile/entries/000"))) << old_size;
  }
}

TEST_F(LogVerifierTest, CheckpointOlderThanTheTilesVerifiesFromFullTiles) {
  // The log grew to 700 after it signed size 300: tile 1 is full and no longer served at .p/44.
  const std::vector<std::string> entries = Entries(700);
  MemorySource source(ServeLog(entries));
  const std::vector<std::string> first(entries.begin(), entries.begin() + 300);
  source.files()["checkpoint"] =
      SignedCheckpoint(300, merkle::RootFromLeafHashes(LeafHashes(first)));
  absl::StatusOr<VerifyReport> report = Verify(source);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->state.size, 300u);
  EXPECT_THAT(source.fetched(), Contains("tile/0/001.p/44"));
  EXPECT_THAT(source.fetched(), Contains("tile/0/001"));
}

TEST_F(LogVerifierTest, EditedEntryFailsAtItsIndex) {
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  entries[300] = R"({"eventType":"user.session.start","uuid":"e-300","note":"edited"})";
  ReplaceBundle(source, 1, 256, {entries.begin() + 256, entries.begin() + 512});
  ExpectFailureAt(Verify(source), 300,
                  "index 300: the entry does not match the log's leaf hash: the event was "
                  "altered, removed or moved");
}

TEST_F(LogVerifierTest, DeletedEntryFailsWhereLaterEntriesShift) {
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  std::vector<std::string> bundle(entries.begin() + 256, entries.begin() + 512);
  bundle.erase(bundle.begin() + 44);
  ReplaceBundle(source, 1, 256, bundle);
  ExpectFailureAt(Verify(source), 300, "index 300: the entry does not match");
}

TEST_F(LogVerifierTest, ShortBundleNamesTheFirstMissingIndex) {
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  ReplaceBundle(source, 2, 88, {entries.begin() + 512, entries.begin() + 598});
  ExpectFailureAt(Verify(source), 598, "index 598: the entry is missing");

  std::string& cut = source.files()[tiles::EntriesPath(2, 88)];
  cut = tiles::EncodeEntryBundle({entries.begin() + 512, entries.end()}).value();
  cut.resize(cut.size() - 3);
  ExpectFailureAt(Verify(source), 599, "tile/entries/002.p/88 is cut off");
}

TEST_F(LogVerifierTest, SwappedEntriesFailAtTheFirst) {
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  std::swap(entries[10], entries[11]);
  ReplaceBundle(source, 0, 256, {entries.begin(), entries.begin() + 256});
  ExpectFailureAt(Verify(source), 10, "index 10: the entry does not match");
}

TEST_F(LogVerifierTest, InsertedEntryFails) {
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  std::vector<std::string> bundle(entries.begin(), entries.begin() + 256);
  bundle.insert(bundle.begin() + 5, R"({"eventType":"user.session.start","uuid":"forged"})");
  ReplaceBundle(source, 0, 256, bundle);
  ExpectFailureAt(Verify(source), 5, "index 5: the entry does not match");

  // At the very end, nothing shifts: the extra entry is beyond the signed tree.
  std::vector<std::string> last(entries.begin() + 512, entries.end());
  last.push_back(R"({"eventType":"user.session.start","uuid":"forged"})");
  MemorySource source2(ServeLog(entries));
  ReplaceBundle(source2, 2, 88, last);
  ExpectFailureAt(Verify(source2), 600, "an entry was inserted");
}

TEST_F(LogVerifierTest, AlteredEntryWithMatchingTileFailsAtTheRoot) {
  // The server rewrote an entry and its leaf hash, but cannot re-sign the old checkpoint.
  std::vector<std::string> entries = Entries(600);
  MemorySource source(ServeLog(entries));
  entries[42] = R"({"eventType":"user.session.start","uuid":"rewritten"})";
  std::map<std::string, std::string> forged = ServeLog(entries);
  source.files()["tile/0/000"] = forged["tile/0/000"];
  source.files()["tile/entries/000"] = forged["tile/entries/000"];
  ExpectFailure(Verify(source), "the entries do not produce the signed root");
}

TEST_F(LogVerifierTest, CheckpointSignedByAnotherKeyFailsAndNamesTheSigner) {
  const std::vector<std::string> entries = Entries(20);
  MemorySource source(ServeLog(entries));
  source.files()["checkpoint"] = SignedCheckpoint(
      20, merkle::RootFromLeafHashes(LeafHashes(entries)), Seed('x'), "evil.example");
  absl::StatusOr<VerifyReport> result =
      VerifyLog(source, Options({Vkey(kKeyName, Seed('k'))}), std::nullopt, nullptr);
  ExpectFailure(result,
                "the checkpoint is not signed by a trusted key: it is signed by "
                "evil.example+");
  EXPECT_EQ(FailedIndex(result.status()), std::nullopt);

  // A key of the same name but another secret is not trusted either.
  source.files()["checkpoint"] =
      SignedCheckpoint(20, merkle::RootFromLeafHashes(LeafHashes(entries)), Seed('x'));
  ExpectFailure(VerifyLog(source, Options({Vkey(kKeyName, Seed('k'))}), std::nullopt, nullptr),
                "not signed by a trusted key");
}

TEST_F(LogVerifierTest, CheckpointWithAnotherRootFails) {
  const std::vector<std::string> entries = Entries(20);
  MemorySource source(ServeLog(entries));
  source.files()["checkpoint"] = SignedCheckpoint(20, merkle::LeafHash("something else"));
  ExpectFailure(Verify(source), "the entries do not produce the signed root: entries 0 to 19");
}

TEST_F(LogVerifierTest, RollbackToSmallerSizeFails) {
  const std::vector<std::string> entries = Entries(700);
  VerifyState before = StateOf(entries);
  MemorySource source(ServeLog({entries.begin(), entries.begin() + 300}));
  ExpectFailure(Verify(source, before),
                "rollback: the log's checkpoint has size 300, smaller than size 700 you verified "
                "on 2026-01-01T00:00:00.000Z");
}

TEST_F(LogVerifierTest, RewrittenHistoryBeforeTheStateFails) {
  std::vector<std::string> entries = Entries(700);
  VerifyState before = StateOf({entries.begin(), entries.begin() + 300});
  entries[10] = R"({"eventType":"user.session.start","uuid":"rewritten"})";
  MemorySource source(ServeLog(entries));  // consistent tiles, properly signed
  ExpectFailure(Verify(source, before),
                "history rewritten: the tree of size 300 no longer has the root you verified on "
                "2026-01-01T00:00:00.000Z");
  // Incremental mode does not read entry 10, but the signed root gives it away.
  ExpectFailure(Verify(source, before, /*incremental=*/true),
                "the entries do not produce the signed root");

  // A rewrite inside the tile that holds the state's size is caught in incremental mode too.
  entries = Entries(700);
  entries[280] = R"({"eventType":"user.session.start","uuid":"rewritten"})";
  MemorySource source2(ServeLog(entries));
  ExpectFailure(Verify(source2, before, /*incremental=*/true),
                "history rewritten: the tree of size 300 no longer has the root you verified on "
                "2026-01-01T00:00:00.000Z (entries 256 to 299 changed)");
}

TEST_F(LogVerifierTest, SameSizeWithAnotherRootIsRewrittenHistory) {
  std::vector<std::string> entries = Entries(300);
  VerifyState before = StateOf(entries);
  entries[299] = R"({"eventType":"user.session.start","uuid":"rewritten"})";
  MemorySource source(ServeLog(entries));
  ExpectFailure(Verify(source, before), "history rewritten");
}

TEST_F(LogVerifierTest, OtherOriginFails) {
  VerifyState before = StateOf(Entries(30));
  before.origin = "log.example:8080/t/other";
  MemorySource source(ServeLog(Entries(40)));
  ExpectFailure(Verify(source, before), "but the state is for log \"log.example:8080/t/other\"");
}

TEST_F(LogVerifierTest, MissingTileIsAFailureButTransportErrorsAreNot) {
  MemorySource source(ServeLog(Entries(600)));
  source.files().erase("tile/0/001");
  ExpectFailureAt(Verify(source), 256, "the log does not serve tile/0/001");

  MemorySource down(ServeLog(Entries(600)));
  down.FailWith(absl::UnavailableError("connection refused"));
  absl::StatusOr<VerifyReport> result = Verify(down);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsLogVerificationFailure(result.status()));

  MemorySource empty(std::map<std::string, std::string>{});
  result = Verify(empty);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(IsLogVerificationFailure(result.status()));

  // A log that had entries and no longer has a checkpoint is a failure.
  ExpectFailure(Verify(empty, StateOf(Entries(5))), "no checkpoint any more");
}

TEST_F(LogVerifierTest, TileOfWrongLengthFails) {
  MemorySource source(ServeLog(Entries(600)));
  source.files()["tile/0/002.p/88"].resize(87 * 32);
  ExpectFailureAt(Verify(source), 512, "tile/0/002.p/88 has 2784 bytes, expected 2816");
}

TEST_F(LogVerifierTest, BadTrustedKeyIsAUsageError) {
  MemorySource source(ServeLog(Entries(3)));
  absl::StatusOr<VerifyReport> result =
      VerifyLog(source, Options({"not-a-key"}), std::nullopt, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsLogVerificationFailure(result.status()));
}

class TlogProofTest : public ::testing::Test {
 protected:
  TlogProof ProofFor(uint64_t index) {
    TlogProof proof;
    proof.extra = entries_[index];
    proof.index = index;
    proof.hashes = merkle::InclusionProof(leaves_, index, leaves_.size()).value();
    proof.checkpoint = SignedCheckpoint(leaves_.size(), merkle::RootFromLeafHashes(leaves_));
    return proof;
  }

  std::vector<std::string> entries_ = Entries(300);
  std::vector<std::string> leaves_ = LeafHashes(entries_);
  std::vector<std::string> keys_ = {Vkey(kKeyName, Seed('k'))};
};

TEST_F(TlogProofTest, FormatsAsC2spAndRoundTrips) {
  TlogProof proof = ProofFor(17);
  std::string text = FormatTlogProof(proof);
  EXPECT_TRUE(text.starts_with("c2sp.org/tlog-proof@v1\nextra "));
  EXPECT_THAT(text, HasSubstr("\nindex 17\n"));
  EXPECT_THAT(text, HasSubstr("=\n\n" + std::string(kOrigin) + "\n300\n"));
  absl::StatusOr<TlogProof> parsed = ParseTlogProof(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, proof);

  proof.extra.reset();
  EXPECT_EQ(ParseTlogProof(FormatTlogProof(proof)).value(), proof);
}

TEST_F(TlogProofTest, VerifiesWithTheEntryFromExtraOrGiven) {
  const std::string text = FormatTlogProof(ProofFor(299));
  absl::StatusOr<VerifiedTlogProof> verified = VerifyTlogProof(text, std::nullopt, keys_);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(verified->index, 299u);
  EXPECT_EQ(verified->entry, entries_[299]);
  EXPECT_EQ(verified->checkpoint.origin, kOrigin);
  EXPECT_EQ(verified->checkpoint.size, 300u);

  EXPECT_TRUE(VerifyTlogProof(text, entries_[299], keys_).ok());
  absl::Status other = VerifyTlogProof(text, entries_[298], keys_).status();
  EXPECT_TRUE(IsLogVerificationFailure(other));
  EXPECT_EQ(FailedIndex(other), 299u);
  EXPECT_THAT(std::string(other.message()), HasSubstr("index 299: the entry is not proven"));
}

TEST_F(TlogProofTest, TamperedProofFails) {
  TlogProof proof = ProofFor(5);
  proof.hashes[3][0] ^= 1;
  absl::Status st = VerifyTlogProof(FormatTlogProof(proof), std::nullopt, keys_).status();
  EXPECT_TRUE(IsLogVerificationFailure(st)) << st;

  proof = ProofFor(5);
  proof.extra = "{\"edited\":true}";
  EXPECT_TRUE(IsLogVerificationFailure(
      VerifyTlogProof(FormatTlogProof(proof), std::nullopt, keys_).status()));

  proof = ProofFor(5);
  proof.index = 6;
  EXPECT_TRUE(IsLogVerificationFailure(
      VerifyTlogProof(FormatTlogProof(proof), std::nullopt, keys_).status()));

  proof = ProofFor(5);
  st = VerifyTlogProof(FormatTlogProof(proof), std::nullopt, {Vkey("other.example", Seed('o'))})
           .status();
  EXPECT_TRUE(IsLogVerificationFailure(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("not signed by a trusted key"));

  std::string text = FormatTlogProof(ProofFor(5));
  text.replace(text.find("index 5"), 7, "index 05");
  st = VerifyTlogProof(text, std::nullopt, keys_).status();
  EXPECT_TRUE(IsLogVerificationFailure(st));
  EXPECT_THAT(std::string(st.message()), HasSubstr("leading zeros"));
}

TEST_F(TlogProofTest, RejectsMalformedText) {
  const std::string good = FormatTlogProof(ProofFor(5));
  for (std::string bad : {
           std::string("c2sp.org/tlog-proof@v2\n") + good.substr(good.find('\n') + 1),
           good.substr(0, good.find("\n\n") + 2),  // no checkpoint
           std::string("c2sp.org/tlog-proof@v1\nindex 1\nnot base64\n\n") + ProofFor(5).checkpoint,
           std::string("c2sp.org/tlog-proof@v1\nindex -1\n\n") + ProofFor(5).checkpoint,
           std::string("c2sp.org/tlog-proof@v1\nindex 1\n"),
       }) {
    EXPECT_EQ(ParseTlogProof(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace custos::audit
