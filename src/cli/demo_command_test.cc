#include "cli/demo_command.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "audit/note.h"
#include "common/json.h"
#include "incident/evidence.h"

namespace custos::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string Contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  return text;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The first group of `pattern` in `text`; empty when it does not match.
std::string Find(const std::string& text, const std::string& pattern) {
  std::smatch match;
  return std::regex_search(text, match, std::regex(pattern)) ? match[1].str() : "";
}

class DemoCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "custos-demo-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    out_ = std::tmpfile();
    err_ = std::tmpfile();
  }
  void TearDown() override {
    std::fclose(out_);
    std::fclose(err_);
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  fs::path root_;
  std::FILE* out_ = nullptr;
  std::FILE* err_ = nullptr;
};

TEST_F(DemoCommandTest, LeavesADirectoryOfOtherDataAlone) {
  const fs::path dir = root_ / "data";
  fs::create_directories(dir);
  std::ofstream(dir / "custos.db") << "someone's store";
  DemoFlags flags;
  flags.config.data_dir = dir.string();
  flags.force = true;
  EXPECT_EQ(RunDemo(flags, out_, err_), 1);
  EXPECT_THAT(Contents(err_), HasSubstr("not a custos demo directory"));
  EXPECT_EQ(ReadFile(dir / "custos.db"), "someone's store");
}

TEST_F(DemoCommandTest, ReplaysScopesProvesAndNotifiesASmallStory) {
  const fs::path dir = root_ / "demo";
  DemoFlags flags;
  flags.config.data_dir = dir.string();
  flags.tenants = 12;
  flags.engineers = 3;
  flags.days = 1;
  ASSERT_EQ(RunDemo(flags, out_, err_), 0) << Contents(err_);
  const std::string out = Contents(out_);

  // The scope agrees with the replay's plan, the takeover reached two tenants, and every tenant
  // of the potential scope got one notification that the sink could verify.
  const std::string potential = Find(out, R"(Potential scope: (\d+) of 12 tenants)");
  ASSERT_FALSE(potential.empty()) << out;
  EXPECT_THAT(out, HasSubstr("(the replay's plan says " + potential + ": exact)"));
  EXPECT_THAT(out, HasSubstr("Confirmed scope: 2 tenants"));
  EXPECT_THAT(out,
              HasSubstr(potential + " webhooks to " + potential + " tenants; the sink verified " +
                        potential + " signatures, 0 refused"));
  EXPECT_THAT(out, HasSubstr("DENY confirmation_denied"));
  EXPECT_THAT(Contents(err_), HasSubstr("day 1/1"));

  // The evidence packages verify offline against the keys they carry.
  std::vector<fs::path> packages;
  for (const fs::directory_entry& e : fs::directory_iterator(dir / "evidence")) {
    packages.push_back(e.path());
  }
  ASSERT_THAT(packages, SizeIs(2));
  for (const fs::path& path : packages) {
    auto package = incident::ParseEvidenceFile(ReadFile(path));
    ASSERT_TRUE(package.ok()) << package.status();
    std::vector<audit::note::VerifierKey> trusted;
    for (const Json& vkey : (*package)["verifierKeys"]) {
      trusted.push_back(*audit::note::ParseVerifierKey(vkey.get<std::string>()));
    }
    EXPECT_TRUE(incident::VerifyEvidence(*package, trusted, nullptr).ok()) << path;
  }
  EXPECT_EQ(Json::parse(ReadFile(dir / "demo.json"))["status"], "done");
  EXPECT_EQ(ReadFile(dir / "demo-summary.txt"), out);

  // A second demo into the same directory needs --force.
  EXPECT_EQ(RunDemo(flags, out_, err_), 1);
  EXPECT_THAT(Contents(err_), HasSubstr("add --force"));
}

}  // namespace
}  // namespace custos::cli
