#include "incident/evidence.h"

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "audit/event.h"
#include "audit/log_keys.h"
#include "audit/merkle.h"
#include "audit/note.h"
#include "audit/sequencer.h"
#include "common/clock.h"
#include "common/time_format.h"
#include "crypto/ed25519.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sealer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/sqlite/temp_sqlite_store.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kHost = "id.example.com";

// Another key of the same name: what someone who does not hold the server's key can sign with.
std::string OtherVkey() {
  const std::string seed(32, 'x');
  return audit::note::FormatVerifierKey(kHost, crypto::ed25519::PublicKeyFromSeed(seed).value())
      .value();
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

std::vector<audit::note::VerifierKey> Parse(const std::vector<std::string>& vkeys) {
  std::vector<audit::note::VerifierKey> out;
  for (const std::string& vkey : vkeys) out.push_back(audit::note::ParseVerifierKey(vkey).value());
  return out;
}

class EvidenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto temp = store::TempSqliteStore::Open();
    ASSERT_TRUE(temp.ok()) << temp.status();
    temp_ = *std::move(temp);
    sealer_ = crypto::Sealer::FromKey(std::string(32, 'k'));
    keys_ = std::make_unique<audit::LogKeys>(store(), *sealer_, clock_, random_);
    ASSERT_TRUE(keys_->EnsureKey(kHost).ok());
    for (store::TenantRecord* tenant : {&acme_, &globex_}) {
      tenant->created = clock_.Now();
      ASSERT_TRUE(
          store().Write([&](store::Transaction& tx) { return tx.Tenants().Insert(*tenant); }).ok());
    }
    sequencer_ = std::make_unique<audit::Sequencer>(
        store(), *keys_, clock_,
        audit::SequencerOptions{.host = std::string(kHost), .interval = absl::Milliseconds(5)});
    reader_ = std::make_unique<audit::LogReader>(store());
  }

  store::Store& store() { return temp_->store(); }

  // Appends `n` events to the tenant's log, one second apart; returns their uuids.
  std::vector<std::string> Append(const store::TenantRecord& tenant, int n) {
    std::vector<std::string> uuids;
    for (int i = 0; i < n; ++i) {
      clock_.Advance(absl::Seconds(1));
      audit::RequestContext ctx;
      ctx.actor = {"00uoperator", "User", "op@vendor.example", "Operator"};
      ctx.ip_address = "203.0.113.7";
      audit::EventSpec spec{.event_type = "user.session.impersonation.initiate",
                            .debug_data = {{"n", std::to_string(i)}}};
      store::EventRecord event = audit::MakeEvent(tenant.id, ctx, spec, clock_, random_);
      EXPECT_TRUE(
          store()
              .Write([&](store::Transaction& tx) { return tx.Events().Append(event).status(); })
              .ok());
      uuids.push_back(event.uuid);
    }
    return uuids;
  }

  std::vector<store::EventRecord> EventsOf(const store::TenantRecord& tenant) {
    auto events = store::ReadResult(store(), [&](store::Transaction& tx) {
      return tx.Events().Query(tenant.id, store::EventQuery{.limit = 100000});
    });
    EXPECT_TRUE(events.ok()) << events.status();
    return events.value_or(std::vector<store::EventRecord>{});
  }

  std::vector<std::string> Vkeys() { return keys_->VerifierKeys().value(); }
  std::vector<audit::note::VerifierKey> Trusted() { return Parse(Vkeys()); }

  EvidenceRequest Request(std::vector<std::string> uuids) {
    return EvidenceRequest{.incident_id = "inc_20220121",
                           .incident_title = "Support workstation compromise",
                           .tenant = acme_,
                           .event_uuids = std::move(uuids),
                           .verifier_keys = Vkeys(),
                           .timeout = absl::Seconds(20),
                           .poll_interval = absl::Milliseconds(5)};
  }

  absl::StatusOr<Json> Build(const EvidenceRequest& request) {
    return BuildEvidence(store(), *reader_, clock_, random_, request);
  }

  // 40 acme events and 3 globex events, sequenced by a running sequencer; a package of acme
  // events 3, 8, 17 and 30, asked for out of order and with a duplicate.
  Json Sample() {
    acme_uuids_ = Append(acme_, 40);
    Append(globex_, 3);
    sequencer_->Start();
    absl::StatusOr<Json> package = Build(Request(
        {acme_uuids_[17], acme_uuids_[3], acme_uuids_[30], acme_uuids_[8], acme_uuids_[17]}));
    EXPECT_TRUE(package.ok()) << package.status();
    return package.value_or(Json());
  }

  absl::Status Verify(const Json& package) { return VerifyEvidence(package, Trusted(), nullptr); }

  FakeClock clock_;
  crypto::SeededRandom random_{11};
  store::TenantRecord acme_{.id = TenantId("00oacme"), .name = "acme"};
  store::TenantRecord globex_{.id = TenantId("00oglobex"), .name = "globex"};
  std::vector<std::string> acme_uuids_;
  std::unique_ptr<store::TempSqliteStore> temp_;
  std::unique_ptr<crypto::Sealer> sealer_;
  std::unique_ptr<audit::LogKeys> keys_;
  std::unique_ptr<audit::Sequencer> sequencer_;
  std::unique_ptr<audit::LogReader> reader_;
};

TEST_F(EvidenceTest, APackageFromARealLogVerifies) {
  const Json package = Sample();
  ASSERT_TRUE(package.is_object());

  EXPECT_EQ(package["format"], "custos-evidence/v1");
  EXPECT_EQ(package["tenant"], (Json{{"id", "00oacme"}, {"name", "acme"}}));
  EXPECT_EQ(package["incident"],
            (Json{{"id", "inc_20220121"}, {"title", "Support workstation compromise"}}));
  EXPECT_EQ(package["origin"], "id.example.com/t/acme");
  EXPECT_EQ(package["verifierKeys"], Json(Vkeys()));
  // Index order, duplicates once; a tenant log's indexes follow its commit order.
  ASSERT_EQ(package["events"].size(), 4u);
  std::vector<uint64_t> indexes;
  for (const Json& e : package["events"]) indexes.push_back(e["index"].get<uint64_t>());
  EXPECT_EQ(indexes, (std::vector<uint64_t>{3, 8, 17, 30}));
  EXPECT_EQ(package["manifest"]["index"], 40u);
  const uint64_t tree_size = package["treeSize"].get<uint64_t>();
  EXPECT_GT(tree_size, 40u);

  // The checkpoint is the one the server signed at that size.
  auto stored = store::ReadResult(store(), [&](store::Transaction& tx) {
    return tx.Logs().GetCheckpoint("00oacme", tree_size);
  });
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(package["checkpoint"], stored->note);

  // The entries are the stored events.
  std::vector<store::EventRecord> events = EventsOf(acme_);
  EXPECT_EQ(package["events"][1]["entry"], events[8].json);

  EvidenceSummary summary;
  ASSERT_TRUE(VerifyEvidence(package, Trusted(), &summary).ok())
      << VerifyEvidence(package, Trusted(), nullptr);
  EXPECT_EQ(summary.tenant_name, "acme");
  EXPECT_EQ(summary.tenant_id, "00oacme");
  EXPECT_EQ(summary.incident_id, "inc_20220121");
  EXPECT_EQ(summary.incident_title, "Support workstation compromise");
  EXPECT_EQ(summary.origin, "id.example.com/t/acme");
  EXPECT_EQ(summary.event_count, 4u);
  EXPECT_EQ(summary.tree_size, tree_size);
  EXPECT_EQ(summary.manifest_index, 40u);
  EXPECT_EQ(summary.first_event, events[3].published);
  EXPECT_EQ(summary.last_event, events[30].published);
  EXPECT_EQ(summary.signed_by, std::vector<std::string>{std::string(kHost)});

  // The file form parses back to the same package and verifies.
  absl::StatusOr<Json> reread = ParseEvidenceFile(SerializeEvidence(package));
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(*reread, package);
}

TEST_F(EvidenceTest, TheManifestIsAnEventInTheTenantsLogThatListsThePackage) {
  const Json package = Sample();
  std::vector<store::EventRecord> events = EventsOf(acme_);
  ASSERT_EQ(events.size(), 41u);
  const store::EventRecord& manifest = events.back();
  EXPECT_EQ(manifest.event_type, "security.incident.evidence");
  EXPECT_EQ(package["manifest"]["entry"], manifest.json);

  Json json = Json::parse(manifest.json);
  EXPECT_EQ(json["actor"]["type"], "SystemPrincipal");
  EXPECT_EQ(json["target"][0]["id"], "00oacme");
  EXPECT_EQ(json["target"][0]["type"], "Tenant");
  const Json& data = json["debugContext"]["debugData"];
  EXPECT_EQ(data["incidentId"], "inc_20220121");
  EXPECT_EQ(data["incidentTitle"], "Support workstation compromise");
  EXPECT_EQ(data["entryCount"], "4");
  // The documented digest, computed here from the stored events.
  std::string lines;
  for (int i : {3, 8, 17, 30}) {
    lines += fmt::format("{}:{}\n", i, crypto::HexEncode(audit::merkle::LeafHash(events[i].json)));
  }
  EXPECT_EQ(data["entriesSha256"], crypto::Sha256Hex(lines));
  std::string keys;
  for (const std::string& vkey : Vkeys()) keys += vkey + "\n";
  EXPECT_EQ(data["verifierKeysSha256"], crypto::Sha256Hex(keys));

  // Another tenant's log is untouched.
  EXPECT_EQ(EventsOf(globex_).size(), 3u);
}

// Flips bytes of the file at a sample of positions across it (every 31st byte), at every byte
// of the checkpoint, of one proof hash and of everything from "format" on (incident, manifest,
// origin, tenant, treeSize, verifierKeys): each edit is refused by the parser or the verifier.
TEST_F(EvidenceTest, AFlippedByteAnywhereFails) {
  const std::string file = SerializeEvidence(Sample());
  ASSERT_TRUE(VerifyEvidence(ParseEvidenceFile(file).value(), Trusted(), nullptr).ok());

  std::set<size_t> positions;
  for (size_t i = 0; i < file.size(); i += 31) positions.insert(i);
  auto add_range = [&](std::string_view text) {
    const size_t at = file.find(text);
    ASSERT_NE(at, std::string::npos) << text;
    for (size_t i = at; i < at + text.size(); ++i) positions.insert(i);
  };
  const Json package = Json::parse(file);
  add_range(Json(package["checkpoint"]).dump());
  add_range(Json(package["events"][2]["proof"][0]).dump());
  for (size_t i = file.find("\"format\""); i < file.size(); ++i) positions.insert(i);

  int tried = 0;
  for (size_t position : positions) {
    for (unsigned char mask : {0x01, 0x20}) {
      std::string edited = file;
      edited[position] = static_cast<char>(edited[position] ^ mask);
      absl::StatusOr<Json> parsed = ParseEvidenceFile(edited);
      const bool refused = !parsed.ok() || !VerifyEvidence(*parsed, Trusted(), nullptr).ok();
      EXPECT_TRUE(refused) << "byte " << position << " ^ " << int{mask} << " passed: ..."
                           << file.substr(position < 20 ? 0 : position - 20, 40) << "...";
      ++tried;
    }
  }
  EXPECT_GT(tried, 2000);
}

TEST_F(EvidenceTest, DroppedAddedOrReorderedEventsFail) {
  const Json package = Sample();

  Json dropped = package;
  dropped["events"].erase(1);
  absl::Status st = Verify(dropped);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(st), HasSubstr("entriesSha256"));
  EXPECT_THAT(Message(st), HasSubstr("an event was dropped, added or reordered"));
  // Also as a file written in canonical form.
  EXPECT_FALSE(Verify(ParseEvidenceFile(SerializeEvidence(dropped)).value()).ok());

  Json duplicated = package;
  duplicated["events"].push_back(package["events"][3]);
  EXPECT_THAT(Message(Verify(duplicated)), HasSubstr("event 4 (index 30): indexes are not"));

  Json reordered = package;
  std::swap(reordered["events"][0], reordered["events"][1]);
  EXPECT_THAT(Message(Verify(reordered)), HasSubstr("indexes are not strictly ascending"));

  Json with_manifest = package;
  with_manifest["events"].push_back(package["manifest"]);
  EXPECT_THAT(Message(Verify(with_manifest)),
              HasSubstr("event 4 (index 40): the event is the manifest itself"));

  // An event of the log that the manifest does not list, with a valid proof: refused by the
  // digest, not by its proof.
  absl::StatusOr<audit::InclusionAnswer> other =
      reader_->Inclusion("00oacme", 9, package["treeSize"].get<uint64_t>());
  ASSERT_TRUE(other.ok()) << other.status();
  Json added = package;
  Json extra = Json::object();
  extra["index"] = 9;
  extra["entry"] = other->entry;
  extra["proof"] = Json::array();
  for (const std::string& h : other->hashes) extra["proof"].push_back(crypto::Base64Encode(h));
  added["events"].insert(added["events"].begin() + 2, extra);
  EXPECT_THAT(Message(Verify(added)), HasSubstr("entriesSha256"));
}

TEST_F(EvidenceTest, SwappedProofsOrEntriesFail) {
  const Json package = Sample();

  Json swapped = package;
  std::swap(swapped["events"][0]["proof"], swapped["events"][2]["proof"]);
  absl::Status st = Verify(swapped);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Message(st),
              HasSubstr("event 0 (index 3): inclusion proof does not match the checkpoint root"));

  Json entries = package;
  std::swap(entries["events"][1]["entry"], entries["events"][3]["entry"]);
  EXPECT_THAT(Message(Verify(entries)),
              HasSubstr("event 1 (index 8): inclusion proof does not match"));

  Json manifest = package;
  std::swap(manifest["manifest"]["proof"], manifest["events"][3]["proof"]);
  EXPECT_THAT(Message(Verify(manifest)), HasSubstr("manifest (index 40): inclusion proof"));
}

TEST_F(EvidenceTest, AChangedTreeSizeFails) {
  const Json package = Sample();
  for (int delta : {-1, 1}) {
    Json changed = package;
    changed["treeSize"] = package["treeSize"].get<uint64_t>() + delta;
    absl::Status st = Verify(changed);
    EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
    EXPECT_THAT(Message(st), HasSubstr("the checkpoint is at tree size"));
  }
}

TEST_F(EvidenceTest, ReplacedVerifierKeysFailTheSignature) {
  const Json package = Sample();
  Json replaced = package;
  replaced["verifierKeys"] = Json::array({OtherVkey()});

  // Trusting the key the file now names (what `custos log verify --evidence` does without
  // --vkey): the checkpoint was not signed by it.
  absl::Status st = VerifyEvidence(replaced, Parse({OtherVkey()}), nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << st;
  EXPECT_THAT(Message(st), HasSubstr("the checkpoint is not signed by a trusted key"));

  // Trusting the real key: the package's own keys no longer account for the signature.
  st = Verify(replaced);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_THAT(Message(st), HasSubstr("not signed by a key in verifierKeys"));

  // Adding a key is refused too (the manifest binds the list).
  Json added = package;
  added["verifierKeys"].push_back(OtherVkey());
  EXPECT_THAT(Message(Verify(added)), HasSubstr("verifierKeysSha256"));
}

TEST_F(EvidenceTest, AWrongTrustedKeyFails) {
  const Json package = Sample();
  absl::Status st = VerifyEvidence(package, Parse({OtherVkey()}), nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated) << st;
  EXPECT_EQ(VerifyEvidence(package, {}, nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EvidenceTest, IncidentAndTenantAreBoundByTheManifest) {
  const Json package = Sample();

  Json title = package;
  title["incident"]["title"] = "Nothing to see";
  EXPECT_THAT(Message(Verify(title)), HasSubstr("incidentTitle"));

  Json id = package;
  id["incident"]["id"] = "inc_other";
  EXPECT_THAT(Message(Verify(id)), HasSubstr("incidentId"));

  Json tenant_id = package;
  tenant_id["tenant"]["id"] = "00oglobex";
  EXPECT_THAT(Message(Verify(tenant_id)), HasSubstr("the manifest's target is not the tenant"));

  Json tenant_name = package;
  tenant_name["tenant"]["name"] = "globex";
  EXPECT_THAT(Message(Verify(tenant_name)), HasSubstr("is not the log of the tenant globex"));

  Json origin = package;
  origin["origin"] = "id.example.com/t/globex";
  EXPECT_THAT(Message(Verify(origin)), HasSubstr("the checkpoint is for the log"));
}

TEST_F(EvidenceTest, MalformedPackagesAreRefusedByName) {
  const Json package = Sample();

  Json format = package;
  format["format"] = "custos-evidence/v2";
  EXPECT_THAT(Message(Verify(format)), HasSubstr("\"format\" is not \"custos-evidence/v1\""));

  Json unknown = package;
  unknown["note"] = "trust me";
  absl::Status st = Verify(unknown);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st), HasSubstr("unknown member \"note\""));

  Json missing = package;
  missing["events"][0].erase("proof");
  EXPECT_THAT(Message(Verify(missing)), HasSubstr("events[0] has no member \"proof\""));

  Json bad_hash = package;
  bad_hash["events"][0]["proof"][0] = "not base64!";
  EXPECT_THAT(Message(Verify(bad_hash)), HasSubstr("events[0].proof[0] is not a base64 string"));

  Json negative = package;
  negative["events"][0]["index"] = -3;
  EXPECT_THAT(Message(Verify(negative)), HasSubstr("events[0].index is not a non-negative"));
}

TEST_F(EvidenceTest, ParseEvidenceFileRefusesWhatIsNotACanonicalPackage) {
  absl::StatusOr<Json> st = ParseEvidenceFile("%PDF-1.7 this is not JSON");
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(st.status()), HasSubstr("the evidence file is not valid JSON (at byte 1)"));

  EXPECT_THAT(Message(ParseEvidenceFile("[1,2]\n").status()), HasSubstr("not hold a JSON object"));

  const Json package = Sample();
  st = ParseEvidenceFile(package.dump(2));
  EXPECT_THAT(Message(st.status()), HasSubstr("not in its canonical form"));
  st = ParseEvidenceFile(DumpJson(package));  // without the final newline
  EXPECT_THAT(Message(st.status()), HasSubstr("not in its canonical form"));

  std::string huge(kMaxEvidenceFileBytes + 1, ' ');
  st = ParseEvidenceFile(huge);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(Message(st.status()), HasSubstr("at most 256 MiB"));
}

TEST_F(EvidenceTest, AnUnknownEventIsNamedAndNoManifestIsWritten) {
  std::vector<std::string> acme = Append(acme_, 3);
  std::vector<std::string> globex = Append(globex_, 1);
  ASSERT_TRUE(sequencer_->Drain().ok());

  absl::StatusOr<Json> st = Build(Request({acme[0], "01890000-0000-7000-8000-000000000000"}));
  EXPECT_EQ(st.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(st.status()),
              HasSubstr("event 01890000-0000-7000-8000-000000000000 is not in the System Log "
                        "of tenant acme"));

  // Another tenant's event is not in this tenant's log.
  st = Build(Request({acme[1], globex[0]}));
  EXPECT_EQ(st.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(st.status()), HasSubstr(globex[0]));

  EXPECT_EQ(EventsOf(acme_).size(), 3u);
}

TEST_F(EvidenceTest, WaitsForTheSequencerAndTimesOutNamingWhatIsWaiting) {
  std::vector<std::string> uuids = Append(acme_, 3);

  EvidenceRequest request = Request(uuids);
  request.timeout = absl::Milliseconds(60);
  absl::StatusOr<Json> st = Build(request);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Message(st.status()), HasSubstr("3 of 3 events are not sequenced"));
  EXPECT_THAT(Message(st.status()), HasSubstr("no manifest was written"));
  EXPECT_EQ(EventsOf(acme_).size(), 3u);

  // Sequenced, but nothing signs a checkpoint over the manifest.
  ASSERT_TRUE(sequencer_->Drain().ok());
  st = Build(request);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Message(st.status()), HasSubstr("no signed checkpoint covers it"));

  // A sequencer that starts while the build waits.
  const std::vector<std::string> later = Append(acme_, 2);
  std::thread starter([&] {
    absl::SleepFor(absl::Milliseconds(50));
    sequencer_->Start();
  });
  absl::StatusOr<Json> package = Build(Request(later));
  starter.join();
  ASSERT_TRUE(package.ok()) << package.status();
  EXPECT_TRUE(Verify(*package).ok());
}

TEST_F(EvidenceTest, APackageWithoutEventsStillProvesItsManifest) {
  sequencer_->Start();
  absl::StatusOr<Json> package = Build(Request({}));
  ASSERT_TRUE(package.ok()) << package.status();
  EvidenceSummary summary;
  ASSERT_TRUE(VerifyEvidence(*package, Trusted(), &summary).ok());
  EXPECT_EQ(summary.event_count, 0u);
  EXPECT_FALSE(summary.first_event.has_value());
  EXPECT_EQ(Json::parse((*package)["manifest"]["entry"]
                            .get<std::string>())["debugContext"]["debugData"]["entryCount"],
            "0");
}

TEST_F(EvidenceTest, RequestsAreChecked) {
  EvidenceRequest request = Request({});
  request.incident_id = "";
  EXPECT_EQ(Build(request).status().code(), absl::StatusCode::kInvalidArgument);

  request = Request({});
  request.verifier_keys = {};
  EXPECT_EQ(Build(request).status().code(), absl::StatusCode::kInvalidArgument);

  request = Request({});
  request.incident_title = std::string(kMaxIncidentFieldBytes + 1, 't');
  EXPECT_EQ(Build(request).status().code(), absl::StatusCode::kInvalidArgument);

  request = Request({});
  request.tenant.id = TenantId(std::string(store::kProviderLogId));
  EXPECT_EQ(Build(request).status().code(), absl::StatusCode::kInvalidArgument);

  // Without the signing key among the keys to embed, no package is handed out.
  sequencer_->Start();
  request = Request({});
  request.verifier_keys = {OtherVkey()};
  absl::StatusOr<Json> st = Build(request);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(Message(st.status()), HasSubstr("does not verify"));
}

}  // namespace
}  // namespace custos::incident
