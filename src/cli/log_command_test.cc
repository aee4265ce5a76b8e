#include "cli/log_command.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/checkpoint.h"
#include "audit/event.h"
#include "audit/log_keys.h"
#include "audit/log_reader.h"
#include "audit/log_verifier.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/sequencer.h"
#include "audit/tiles.h"
#include "crypto/ed25519.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "incident/evidence.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kOrigin = "log.example:8080/t/acme";
constexpr std::string_view kKeyName = "log.example:8080";
const std::string kSeed(32, 'k');

std::string Vkey() {
  return audit::note::FormatVerifierKey(kKeyName, crypto::ed25519::PublicKeyFromSeed(kSeed).value())
      .value();
}

std::vector<std::string> Entries(int n) {
  std::vector<std::string> entries;
  for (int i = 0; i < n; ++i) {
    entries.push_back(fmt::format(R"({{"eventType":"user.session.start","uuid":"e-{}"}})", i));
  }
  return entries;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, std::string_view data) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << data;
}

// Writes a log of `entries` in the layout a server serves (and `custos log export` writes).
void WriteLog(const fs::path& dir, const std::vector<std::string>& entries) {
  audit::tiles::TreeBuilder builder;
  std::vector<std::string> leaves;
  for (const std::string& e : entries) leaves.push_back(audit::merkle::LeafHash(e));
  for (const std::string& leaf : leaves) builder.Append(leaf);
  for (const store::LogTileRecord& tile : builder.TakeChangedTiles()) {
    WriteFile(dir / audit::tiles::TilePath(tile.level, tile.index, tile.width),
              audit::tiles::BottomRow(tile.data, tile.width, tile.width).value());
  }
  for (size_t first = 0; first < entries.size(); first += audit::tiles::kTileWidth) {
    const size_t last = std::min(entries.size(), first + audit::tiles::kTileWidth);
    WriteFile(
        dir / audit::tiles::EntriesPath(first / audit::tiles::kTileWidth,
                                        static_cast<int>(last - first)),
        audit::tiles::EncodeEntryBundle({entries.begin() + first, entries.begin() + last}).value());
  }
  const std::string body =
      audit::FormatCheckpoint(
          {.origin = std::string(kOrigin), .size = entries.size(), .root_hash = builder.Root()})
          .value();
  WriteFile(dir / "checkpoint", audit::note::Sign(body, kKeyName, kSeed).value());
  WriteFile(dir / "keys", Vkey() + "\n");
}

// Collects what a command prints.
class Captured {
 public:
  Captured() : file_(open_memstream(&buffer_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* file_;
};

class LogCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/custos-log-command-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    io_.out = out_.file();
    io_.err = err_.file();
    io_.clock = &clock_;
    setenv("XDG_STATE_HOME", (root_ / "xdg").c_str(), 1);
    unsetenv("CUSTOS_TOKEN");
  }
  void TearDown() override { fs::remove_all(root_); }

  int Verify(const fs::path& source, const fs::path& state, bool incremental = false) {
    LogVerifyFlags flags;
    flags.source = source.string();
    flags.state_path = state.string();
    flags.incremental = incremental;
    return LogVerify(flags, io_);
  }

  fs::path root_;
  FakeClock clock_;
  Captured out_;
  Captured err_;
  LogCommandIo io_;
};

TEST_F(LogCommandTest, VerifiesTrustsOnFirstUseAndWritesTheState) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(600));
  const fs::path state = root_ / "state.json";
  ASSERT_EQ(Verify(log, state), 0) << err_.text();
  EXPECT_THAT(out_.text(), HasSubstr("verified log.example:8080/t/acme: size 600, root "));
  EXPECT_THAT(out_.text(), HasSubstr("all 600 entries checked; state saved to " + state.string()));
  EXPECT_THAT(err_.text(), HasSubstr("trusted on first use"));
  EXPECT_THAT(err_.text(), HasSubstr(Vkey()));

  absl::StatusOr<audit::VerifyState> saved = audit::ParseVerifyState(ReadFile(state));
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->size, 600u);
  EXPECT_EQ(saved->verifier_keys, std::vector<std::string>{Vkey()});
  EXPECT_FALSE(fs::exists(root_ / "xdg"));  // --state was given

  // The log grows; the next run checks consistency with the saved state, quietly trusting the
  // saved key.
  WriteLog(log, Entries(700));
  Captured out2, err2;
  io_.out = out2.file();
  io_.err = err2.file();
  ASSERT_EQ(Verify(log, state, /*incremental=*/true), 0) << err2.text();
  EXPECT_THAT(out2.text(), HasSubstr("entries 600 to 699 checked; consistent with size 600 "
                                     "verified 2026-01-01T00:00:00.000Z"));
  EXPECT_THAT(err2.text(), Not(HasSubstr("trusted on first use")));
  EXPECT_EQ(audit::ParseVerifyState(ReadFile(state))->size, 700u);
}

TEST_F(LogCommandTest, DefaultStateFileIsNamedAfterTheOrigin) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(3));
  LogVerifyFlags flags;
  flags.source = log.string();
  ASSERT_EQ(LogVerify(flags, io_), 0) << err_.text();
  EXPECT_TRUE(fs::exists(root_ / "xdg" / "custos" / "log.example_8080_t_acme.json"));
  EXPECT_EQ(DefaultStatePath("h:1/t/x").value(),
            (root_ / "xdg" / "custos" / "h_1_t_x.json").string());
}

TEST_F(LogCommandTest, ACheckpointOfAnotherLogFails) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(3));  // origin log.example:8080/t/acme
  LogVerifyFlags flags;
  flags.source = log.string();
  flags.state_path = (root_ / "state.json").string();
  flags.origin = "log.example:8080/t/globex";
  EXPECT_EQ(LogVerify(flags, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("the checkpoint is for the log 'log.example:8080/t/acme'"));
  EXPECT_FALSE(fs::exists(root_ / "state.json"));
  flags.origin = "log.example:8080/t/acme";
  EXPECT_EQ(LogVerify(flags, io_), 0) << err_.text();
}

TEST_F(LogCommandTest, TamperedEntryFailsWithExitOneAndLeavesTheStateAlone) {
  const fs::path log = root_ / "log";
  std::vector<std::string> entries = Entries(600);
  WriteLog(log, {entries.begin(), entries.begin() + 300});
  const fs::path state = root_ / "state.json";
  ASSERT_EQ(Verify(log, state), 0) << err_.text();
  const std::string saved = ReadFile(state);

  WriteLog(log, entries);
  entries[300] = R"({"eventType":"user.session.start","uuid":"e-300","edited":true})";
  WriteFile(
      log / "tile/entries/001",
      audit::tiles::EncodeEntryBundle({entries.begin() + 256, entries.begin() + 512}).value());
  clock_.Advance(absl::Hours(1));
  EXPECT_EQ(Verify(log, state), 1);
  EXPECT_THAT(err_.text(),
              HasSubstr("custos: log verification FAILED: index 300: the entry does not match the "
                        "log's leaf hash: the event was altered, removed or moved (state file " +
                        state.string() + " left unchanged)"));
  EXPECT_EQ(ReadFile(state), saved);

  // Without a state file, none is written.
  const fs::path fresh = root_ / "fresh.json";
  EXPECT_EQ(Verify(log, fresh), 1);
  EXPECT_FALSE(fs::exists(fresh));
}

TEST_F(LogCommandTest, RollbackFails) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(300));
  const fs::path state = root_ / "state.json";
  ASSERT_EQ(Verify(log, state), 0) << err_.text();
  fs::remove_all(log);
  WriteLog(log, Entries(200));
  EXPECT_EQ(Verify(log, state), 1);
  EXPECT_THAT(err_.text(), HasSubstr("rollback: the log's checkpoint has size 200"));
}

TEST_F(LogCommandTest, UsageAndIoErrorsExitTwo) {
  EXPECT_EQ(Verify(root_ / "missing", root_ / "state.json"), 2);
  EXPECT_THAT(err_.text(), HasSubstr("is neither an http(s) URL nor a directory"));

  const fs::path log = root_ / "log";
  WriteLog(log, Entries(3));
  WriteFile(root_ / "damaged.json", "{}");
  EXPECT_EQ(Verify(log, root_ / "damaged.json"), 2);
  EXPECT_THAT(err_.text(), HasSubstr("state file"));

  LogVerifyFlags flags;
  flags.source = log.string();
  flags.state_path = (root_ / "s.json").string();
  flags.vkeys = {"not a key"};
  EXPECT_EQ(LogVerify(flags, io_), 2);

  // Nothing listens on port 9 of localhost (discard): a network error, not a verdict.
  flags.source = "http://127.0.0.1:9/t/acme/log";
  flags.vkeys.clear();
  EXPECT_EQ(LogVerify(flags, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("GET http://127.0.0.1:9/t/acme/log/checkpoint"));
}

TEST_F(LogCommandTest, ProgressIsReportedForLongRuns) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(600));
  io_.progress_interval = absl::ZeroDuration();
  ASSERT_EQ(Verify(log, root_ / "state.json"), 0);
  EXPECT_THAT(err_.text(), HasSubstr("custos: verified 256 of 600 entries (42%)"));
}

TEST_F(LogCommandTest, ExportCopiesEveryTileAndVerifiesWithoutState) {
  const fs::path log = root_ / "log";
  WriteLog(log, Entries(600));
  LogExportFlags flags;
  flags.source = log.string();
  flags.out_dir = (root_ / "export").string();
  flags.vkeys = {Vkey()};
  ASSERT_EQ(LogExport(flags, io_), 0) << err_.text();
  EXPECT_THAT(out_.text(), HasSubstr("exported log.example:8080/t/acme (size 600) to " +
                                     flags.out_dir + ": checkpoint, keys, 3 entry bundles"));
  EXPECT_THAT(out_.text(), HasSubstr("4 tiles over 2 levels"));
  for (std::string_view path : {"checkpoint", "keys", "tile/0/000", "tile/0/001", "tile/0/002.p/88",
                                "tile/1/000.p/2", "tile/entries/000", "tile/entries/002.p/88"}) {
    EXPECT_EQ(ReadFile(root_ / "export" / path), ReadFile(log / path)) << path;
  }
  EXPECT_FALSE(fs::exists(root_ / "xdg"));

  // The export is a source for verify.
  EXPECT_EQ(Verify(root_ / "export", root_ / "state.json"), 0) << err_.text();

  // A non-empty directory is refused.
  EXPECT_EQ(LogExport(flags, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("exists and is not an empty directory"));
}

TEST_F(LogCommandTest, ExportOfATamperedLogFails) {
  const fs::path log = root_ / "log";
  std::vector<std::string> entries = Entries(600);
  WriteLog(log, entries);
  std::swap(entries[520], entries[521]);
  WriteFile(log / "tile/entries/002.p/88",
            audit::tiles::EncodeEntryBundle({entries.begin() + 512, entries.end()}).value());
  LogExportFlags flags;
  flags.source = log.string();
  flags.out_dir = (root_ / "export").string();
  EXPECT_EQ(LogExport(flags, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("verification of the export FAILED: index 520: the entry "
                                     "does not match the log's leaf hash"));
}

TEST_F(LogCommandTest, VerifyProofChecksTheEntry) {
  std::vector<std::string> entries = Entries(40);
  std::vector<std::string> leaves;
  for (const std::string& e : entries) leaves.push_back(audit::merkle::LeafHash(e));
  const std::string body =
      audit::FormatCheckpoint({.origin = std::string(kOrigin),
                               .size = leaves.size(),
                               .root_hash = audit::merkle::RootFromLeafHashes(leaves)})
          .value();
  audit::TlogProof proof{.extra = entries[7],
                         .index = 7,
                         .hashes = audit::merkle::InclusionProof(leaves, 7, leaves.size()).value(),
                         .checkpoint = audit::note::Sign(body, kKeyName, kSeed).value()};
  const fs::path file = root_ / "e7.tlog-proof";
  WriteFile(file, audit::FormatTlogProof(proof));

  LogVerifyProofFlags flags{.proof_path = file.string(), .vkeys = {Vkey()}};
  ASSERT_EQ(LogVerifyProof(flags, io_), 0) << err_.text();
  EXPECT_THAT(out_.text(),
              HasSubstr("verified: entry 7 is in log.example:8080/t/acme at tree size 40"));

  WriteFile(root_ / "other-entry", entries[8]);
  flags.entry_path = (root_ / "other-entry").string();
  EXPECT_EQ(LogVerifyProof(flags, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("proof verification FAILED: index 7"));

  flags.entry_path = (root_ / "no-such-file").string();
  EXPECT_EQ(LogVerifyProof(flags, io_), 2);
}

// `custos log verify --evidence`: packages built by incident::BuildEvidence from a real store,
// with a real sequencer signing the checkpoints.
class EvidenceCommandTest : public LogCommandTest {
 protected:
  void SetUp() override {
    LogCommandTest::SetUp();
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    store::Store& store = temp_->store();
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    keys_ = std::make_unique<audit::LogKeys>(store, *sealer_, clock_, random_);
    ASSERT_TRUE(keys_->EnsureKey("id.example.com").ok());
    const store::TenantRecord acme{
        .id = TenantId("00oacme"), .name = "acme", .created = clock_.Now()};
    ASSERT_TRUE(
        store.Write([&](store::Transaction& tx) { return tx.Tenants().Insert(acme); }).ok());
    std::vector<std::string> uuids;
    for (int i = 0; i < 12; ++i) {
      clock_.Advance(absl::Minutes(1));
      audit::RequestContext ctx;
      ctx.actor = {"00uop", "User", "op@vendor.example", "Operator"};
      ctx.ip_address = "203.0.113.7";
      store::EventRecord event = audit::MakeEvent(
          acme.id, ctx, {.event_type = "user.session.impersonation.initiate"}, clock_, random_);
      ASSERT_TRUE(
          store.Write([&](store::Transaction& tx) { return tx.Events().Append(event).status(); })
              .ok());
      uuids.push_back(event.uuid);
    }
    sequencer_ = std::make_unique<audit::Sequencer>(
        store, *keys_, clock_,
        audit::SequencerOptions{.host = "id.example.com", .interval = absl::Milliseconds(5)});
    sequencer_->Start();
    audit::LogReader reader(store);
    vkeys_ = keys_->VerifierKeys().value();
    absl::StatusOr<Json> package =
        incident::BuildEvidence(store, reader, clock_, random_,
                                {.incident_id = "inc_1",
                                 .incident_title = "Support workstation compromise",
                                 .tenant = acme,
                                 .event_uuids = {uuids[2], uuids[5], uuids[9]},
                                 .verifier_keys = vkeys_,
                                 .poll_interval = absl::Milliseconds(5)});
    ASSERT_TRUE(package.ok()) << package.status();
    package_ = *package;
    file_ = root_ / "acme.evidence.json";
    WriteFile(file_, incident::SerializeEvidence(package_));
  }

  int VerifyFile(const fs::path& file, std::vector<std::string> vkeys) {
    LogVerifyFlags flags;
    flags.evidence_path = file.string();
    flags.vkeys = std::move(vkeys);
    return LogVerify(flags, io_);
  }

  crypto::SeededRandom random_{3};
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<audit::LogKeys> keys_;
  std::unique_ptr<audit::Sequencer> sequencer_;
  std::vector<std::string> vkeys_;
  Json package_;
  fs::path file_;
};

TEST_F(EvidenceCommandTest, VerifiesAgainstTheGivenKey) {
  ASSERT_EQ(VerifyFile(file_, vkeys_), 0) << err_.text();
  EXPECT_EQ(out_.text(),
            fmt::format("verified evidence for tenant acme (00oacme), incident inc_1: 3 events "
                        "from 2026-01-01T00:03:00.000Z to 2026-01-01T00:10:00.000Z, tree size {}, "
                        "checkpoint origin id.example.com/t/acme, signed by id.example.com\n",
                        package_["treeSize"].get<uint64_t>()));
  EXPECT_EQ(err_.text(), "");
}

TEST_F(EvidenceCommandTest, WithoutAKeyTrustsTheFileAndSaysSo) {
  ASSERT_EQ(VerifyFile(file_, {}), 0) << err_.text();
  EXPECT_THAT(out_.text(), HasSubstr("verified evidence for tenant acme"));
  EXPECT_THAT(err_.text(),
              HasSubstr("the checkpoint's key was taken from the evidence file itself"));
  EXPECT_THAT(err_.text(), HasSubstr(vkeys_[0]));
  EXPECT_THAT(err_.text(), HasSubstr("compare it with the key published at "
                                     "https://id.example.com/.well-known/custos/log-keys"));
}

TEST_F(EvidenceCommandTest, AWrongKeyFailsWithExitOne) {
  const std::string other =
      audit::note::FormatVerifierKey(
          "id.example.com", crypto::ed25519::PublicKeyFromSeed(std::string(32, 'x')).value())
          .value();
  EXPECT_EQ(VerifyFile(file_, {other}), 1);
  EXPECT_THAT(err_.text(), HasSubstr("custos: evidence verification FAILED: the checkpoint is not "
                                     "signed by a trusted key"));
  EXPECT_EQ(out_.text(), "");
}

TEST_F(EvidenceCommandTest, AnEditedFileFailsWithExitOne) {
  // One byte of an event: 203.0.113.7 -> 203.0.113.6.
  std::string bytes = ReadFile(file_);
  const size_t at = bytes.find("203.0.113.7", bytes.find("\"events\""));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 10] = '6';
  WriteFile(root_ / "edited.json", bytes);
  EXPECT_EQ(VerifyFile(root_ / "edited.json", vkeys_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("event 0 (index 2): inclusion proof does not match the "
                                     "checkpoint root"));

  // An event dropped, the file written again in canonical form.
  Json dropped = package_;
  dropped["events"].erase(1);
  WriteFile(root_ / "dropped.json", incident::SerializeEvidence(dropped));
  EXPECT_EQ(VerifyFile(root_ / "dropped.json", vkeys_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("entriesSha256"));

  // Re-formatted: the same content, other bytes.
  WriteFile(root_ / "pretty.json", package_.dump(2));
  EXPECT_EQ(VerifyFile(root_ / "pretty.json", vkeys_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("not in its canonical form"));

  WriteFile(root_ / "junk.json", "not json");
  EXPECT_EQ(VerifyFile(root_ / "junk.json", {}), 1);
  EXPECT_THAT(err_.text(), HasSubstr("not valid JSON"));

  // The package of another log than the one asked for.
  LogVerifyFlags flags;
  flags.evidence_path = file_.string();
  flags.vkeys = vkeys_;
  flags.origin = "id.example.com/t/globex";
  EXPECT_EQ(LogVerify(flags, io_), 1);
  EXPECT_THAT(err_.text(), HasSubstr("the package is for the log 'id.example.com/t/acme'"));
}

TEST_F(EvidenceCommandTest, UsageAndIoErrorsExitTwo) {
  LogVerifyFlags both;
  both.source = (root_ / "log").string();
  both.evidence_path = file_.string();
  EXPECT_EQ(LogVerify(both, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("give it without a log source"));

  EXPECT_EQ(LogVerify(LogVerifyFlags{}, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("or --evidence FILE"));

  EXPECT_EQ(VerifyFile(root_ / "missing.json", vkeys_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("cannot open"));

  EXPECT_EQ(VerifyFile(file_, {"not a key"}), 2);
  EXPECT_THAT(err_.text(), HasSubstr("--vkey not a key"));

  LogVerifyFlags state;
  state.evidence_path = file_.string();
  state.state_path = (root_ / "state.json").string();
  EXPECT_EQ(LogVerify(state, io_), 2);
  EXPECT_THAT(err_.text(), HasSubstr("do not apply to --evidence"));
}

}  // namespace
}  // namespace custos::cli
