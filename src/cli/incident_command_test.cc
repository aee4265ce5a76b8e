#include "cli/incident_command.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/log_keys.h"
#include "audit/note.h"
#include "audit/sequencer.h"
#include "common/clock.h"
#include "common/time_format.h"
#include "crypto/random.h"
#include "incident/evidence.h"
#include "support/plane.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct CliRun {
  int code = 0;
  std::string out;
  std::string err;
};

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  return text;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class IncidentCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "custos-incident-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  }
  void TearDown() override {
    if (sequencer_) sequencer_->Stop();
    sequencer_.reset();
    keys_.reset();
    runtime_.reset();
    fs::remove_all(dir_);
  }

  // `custos incident ARGS...`, with --data-dir after the subcommand's name. A parse error is
  // exit 2, as main() makes it.
  CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--data-dir", dir_.string()});
    std::vector<std::string> all = {"custos", "incident"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    CLI::App app;
    IncidentCommand command;
    AddIncidentCommand(app, command);
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return CliRun{.code = 2, .err = e.what()};
    }
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    CliRun run;
    run.code = RunIncidentCommand(command, IncidentCommandIo{.out = out, .err = err});
    run.out = ReadAll(out);
    run.err = ReadAll(err);
    std::fclose(out);
    std::fclose(err);
    return run;
  }

  Runtime& OpenStore() {
    if (!runtime_) {
      ConfigFlags flags{.data_dir = dir_.string()};
      auto config = ResolveConfig(flags);
      EXPECT_TRUE(config.ok()) << config.status();
      auto runtime = OpenRuntime(*config);
      EXPECT_TRUE(runtime.ok()) << runtime.status();
      runtime_ = *std::move(runtime);
    }
    return *runtime_;
  }

  // acme reached by op1 on dev1, globex by op2 on dev2, both of vendor vnd1, in the last half
  // hour. The store is closed again afterwards (the CLI opens its own).
  void Seed() {
    store::Store& store = *OpenStore().store;
    FakeClock clock(now_ - absl::Minutes(30));
    crypto::SeededRandom random(3);
    for (const char* name : {"acme", "globex", "initech"}) {
      store::TenantRecord tenant{
          .id = TenantId(std::string("00o") + name), .name = name, .created = clock.Now()};
      ASSERT_TRUE(
          store.Write([&](store::Transaction& tx) { return tx.Tenants().Insert(tenant); }).ok());
      tenants_[name] = tenant;
    }
    auto reach = [&](const std::string& tenant, const std::string& op, const std::string& device) {
      clock.Advance(absl::Minutes(5));
      audit::RequestContext ctx;
      ctx.actor = {op, "User", op, op};
      ctx.ip_address = "10.0.0.1";
      ctx.external_session_id = "s-" + op;
      support::SupportFacts facts{.operator_id = op, .vendor_id = "vnd1", .device_id = device};
      audit::EventSpec spec{.event_type = "support.view",
                            .debug_data = {{"resource", "users"}, {"fields", "id"}}};
      ASSERT_TRUE(store
                      .Write([&](store::Transaction& tx) {
                        return support::AppendTransparencyEvents(
                            tx, clock, random, &tenants_[tenant], ctx, facts, spec);
                      })
                      .ok());
    };
    reach("acme", "op1", "dev1");
    reach("acme", "op1", "dev1");
    reach("globex", "op2", "dev2");
    runtime_.reset();
  }

  std::vector<std::string> DeclareArgs() {
    return {"declare",
            "--title",
            "Workstation dev1 taken over",
            "--vendor",
            "vnd1",
            "--device",
            "dev1",
            "--from",
            FormatRfc3339(now_ - absl::Hours(1)),
            "--to",
            FormatRfc3339(now_ + absl::Hours(1))};
  }

  std::string Declare() {
    CliRun run = Cli(DeclareArgs());
    EXPECT_EQ(run.code, 0) << run.err;
    std::string id = run.out.substr(0, run.out.find('\n'));
    EXPECT_TRUE(id.starts_with("inc")) << run.out;
    return id;
  }

  // The checkpoint signer and sequencer that `custos serve` would run on the directory.
  void StartSequencer() {
    Runtime& rt = OpenStore();
    keys_ = std::make_unique<audit::LogKeys>(*rt.store, *rt.sealer, SystemClock::Get(),
                                             crypto::SystemRandom());
    ASSERT_TRUE(keys_->EnsureKey("cli.test").ok());
    sequencer_ = std::make_unique<audit::Sequencer>(
        *rt.store, *keys_, SystemClock::Get(),
        audit::SequencerOptions{.host = "cli.test", .interval = absl::Milliseconds(5)});
    sequencer_->Start();
  }

  fs::path dir_;
  absl::Time now_;
  std::map<std::string, store::TenantRecord> tenants_;
  std::unique_ptr<Runtime> runtime_;
  std::unique_ptr<audit::LogKeys> keys_;
  std::unique_ptr<audit::Sequencer> sequencer_;
};

TEST_F(IncidentCommandTest, UsageErrorsExitTwo) {
  CliRun run = Cli({"declare", "--vendor", "vnd1", "--from", "2026-01-01T00:00:00Z", "--to",
                    "2026-01-02T00:00:00Z"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("--title is required"));

  run = Cli({"evidence", "incX", "-o", "x.json"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("--tenant is required"));

  run = Cli({"notify", "incX", "--audience", "everyone"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("everyone"));

  run = Cli({"declare", "--title", "T", "--vendor", "vnd1", "--from", "yesterday", "--to",
             "2026-01-02T00:00:00Z"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("window.start: must be an RFC 3339 date-time"));

  run = Cli({"declare", "--title", "T", "--from", "2026-01-01T00:00:00Z", "--to",
             "2026-01-02T00:00:00Z"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("indicators"));

  std::vector<std::string> half = DeclareArgs();
  half.insert(half.end(), {"--compromise-from", "2026-01-01T00:00:00Z"});
  run = Cli(half);
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, HasSubstr("--compromise-from and --compromise-to go together"));

  run = Cli({"show", "incnope"});
  EXPECT_EQ(run.code, 1);
  EXPECT_THAT(run.err, HasSubstr("incnope (Incident)"));
}

TEST_F(IncidentCommandTest, DeclareScopeReportNotifyClose) {
  Seed();
  const std::string id = Declare();

  CliRun early = Cli({"notify", id});
  EXPECT_EQ(early.code, 1);
  EXPECT_THAT(early.err, HasSubstr("has not been scoped yet"));

  CliRun scope = Cli({"scope", id});
  ASSERT_EQ(scope.code, 0) << scope.err;
  EXPECT_THAT(scope.out, HasSubstr("potential: 2 tenant(s)\nconfirmed: 1 tenant(s)\n"));
  EXPECT_THAT(scope.out, HasSubstr("TENANT  CONFIRMED  VIEWS  ATTEMPTS  REFUSALS\n"));
  EXPECT_THAT(scope.out, HasSubstr("acme    yes            2         0         0\n"));
  EXPECT_THAT(scope.out, HasSubstr("globex  no             1         0         0\n"));
  EXPECT_THAT(scope.err, HasSubstr("scoping " + id));

  CliRun json = Cli({"scope", id, "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  const Json parsed = Json::parse(json.out);
  EXPECT_EQ(parsed["potential"], 2);
  EXPECT_EQ(parsed["tenants"][0]["timeline"].size(), 2u);

  const fs::path report_path = dir_ / "report.html";
  CliRun report = Cli({"report", id, "--html", "-o", report_path.string()});
  ASSERT_EQ(report.code, 0) << report.err;
  EXPECT_THAT(ReadFile(report_path), HasSubstr("<h3>acme (00oacme)</h3>"));
  CliRun markdown = Cli({"report", id});
  ASSERT_EQ(markdown.code, 0) << markdown.err;
  EXPECT_THAT(markdown.out, HasSubstr("| globex | no | 1 | 0 | 0 | 1 | 0 |"));

  // acme has a security contact, globex none.
  {
    store::Store& store = *OpenStore().store;
    ASSERT_TRUE(store
                    .Write([&](store::Transaction& tx) {
                      return tx.Incidents().InsertContact(
                          store::SecurityContactRecord{.id = "sct1",
                                                       .tenant_id = tenants_["acme"].id,
                                                       .type = "email",
                                                       .name = "SOC",
                                                       .address = "soc@acme.example",
                                                       .created = now_});
                    })
                    .ok());
    runtime_.reset();
  }
  CliRun notify = Cli({"notify", id});
  ASSERT_EQ(notify.code, 0) << notify.err;
  EXPECT_THAT(notify.out,
              HasSubstr(id + " NOTIFIED: potential 2 tenant(s); 1 notification(s) queued, 0 "
                             "already queued before\n"));
  EXPECT_THAT(notify.out, HasSubstr("1 tenant(s) without a security contact: globex\n"));
  CliRun again = Cli({"notify", id, "--audience", "confirmed"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr("confirmed 1 tenant(s); 0 notification(s) queued, 1 already"));

  CliRun closed = Cli({"close", id, "--notes", "done"});
  ASSERT_EQ(closed.code, 0) << closed.err;
  EXPECT_EQ(closed.out, id + " CLOSED\n");
  CliRun twice = Cli({"close", id});
  EXPECT_EQ(twice.code, 1);
  EXPECT_THAT(twice.err, HasSubstr("is closed"));

  CliRun list = Cli({"list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr(id));
  EXPECT_THAT(list.out, HasSubstr("CLOSED"));
  CliRun show = Cli({"show", id});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out)["notes"], "done");
}

TEST_F(IncidentCommandTest, EvidenceWithoutTheSequencerSaysServeMustRun) {
  Seed();
  const std::string id = Declare();
  ASSERT_EQ(Cli({"scope", id}).code, 0);
  const fs::path out = dir_ / "evidence.json";

  CliRun no_key = Cli({"evidence", id, "--tenant", "acme", "-o", out.string()});
  EXPECT_EQ(no_key.code, 1);
  EXPECT_THAT(no_key.err, HasSubstr("`custos serve`"));

  // A key exists (serve ran once) but nothing sequences now.
  {
    Runtime& rt = OpenStore();
    audit::LogKeys keys(*rt.store, *rt.sealer, SystemClock::Get(), crypto::SystemRandom());
    ASSERT_TRUE(keys.EnsureKey("cli.test").ok());
    runtime_.reset();
  }
  CliRun stalled =
      Cli({"evidence", id, "--tenant", "acme", "-o", out.string(), "--timeout", "0.3"});
  EXPECT_EQ(stalled.code, 1);
  EXPECT_THAT(stalled.err, HasSubstr("`custos serve` (the sequencer) must be running"));
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(IncidentCommandTest, EvidenceIsWrittenAndVerifies) {
  Seed();
  const std::string id = Declare();
  ASSERT_EQ(Cli({"scope", id}).code, 0);
  StartSequencer();
  const fs::path out = dir_ / "evidence.json";

  CliRun unknown = Cli({"evidence", id, "--tenant", "initech", "-o", out.string()});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("initech (Tenant in the scope of"));

  CliRun run = Cli({"evidence", id, "--tenant", "acme", "-o", out.string(), "--timeout", "20"});
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("2 event(s) of acme"));
  EXPECT_THAT(run.err, HasSubstr("custos log verify --evidence " + out.string()));
  auto package = incident::ParseEvidenceFile(ReadFile(out));
  ASSERT_TRUE(package.ok()) << package.status();
  std::vector<audit::note::VerifierKey> trusted;
  const std::vector<std::string> vkeys = keys_->VerifierKeys().value();
  for (const std::string& vkey : vkeys) {
    trusted.push_back(audit::note::ParseVerifierKey(vkey).value());
  }
  incident::EvidenceSummary summary;
  ASSERT_TRUE(incident::VerifyEvidence(*package, trusted, &summary).ok());
  EXPECT_EQ(summary.tenant_name, "acme");
  EXPECT_EQ(summary.incident_id, id);
  EXPECT_EQ(summary.event_count, 2u);
}

}  // namespace
}  // namespace custos::cli
