#include "api/console/console_files.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace custos::api::console {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kIndex[] =
    "<!doctype html><title>Custos</title><script type=module "
    "src=/console/assets/index-3f2a9c.js></script>";

std::optional<std::string> HeaderOf(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return std::nullopt;
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

class ConsoleFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / fmt::format("custos-console-test-{}", ::getpid());
    fs::remove_all(root_);
    dist_ = root_ / "dist";
    WriteFile(dist_ / "index.html", kIndex);
    WriteFile(dist_ / "assets" / "index-3f2a9c.js", "console.log('custos');");
    WriteFile(dist_ / "assets" / "index-77aa01.css", "body{margin:0}");
    WriteFile(dist_ / "assets" / "inter-400.woff2", std::string("wOF2\0\1", 6));
    WriteFile(dist_ / "favicon.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>");
    WriteFile(dist_ / "blob.xyz", "?");
    WriteFile(dist_ / ".env", "SECRET=1");
    WriteFile(root_ / "secret.txt", "outside the console");
    fs::create_symlink(root_ / "secret.txt", dist_ / "leak.txt");
  }
  void TearDown() override { fs::remove_all(root_); }

  Response Get(ConsoleFiles& files, std::string_view path, std::string if_none_match = "") {
    Request request;
    request.method = "GET";
    request.path = "/console/" + std::string(path);
    if (!if_none_match.empty()) request.headers["if-none-match"] = if_none_match;
    return files.Serve(path, request);
  }

  // Every console answer, whatever it is, carries these.
  static void ExpectConsoleHeaders(const Response& r) {
    EXPECT_EQ(HeaderOf(r, "Content-Security-Policy"), std::string(kConsoleCsp)) << r.status;
    EXPECT_EQ(HeaderOf(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(HeaderOf(r, "Referrer-Policy"), "no-referrer");
  }

  fs::path root_;
  fs::path dist_;
};

TEST_F(ConsoleFilesTest, TheConsoleAndItsRoutesGetIndexHtmlRevalidatedEveryTime) {
  ConsoleFiles files(dist_.string());
  for (std::string_view path : {"", "index.html", "users", "users/00u1a2b3", "assets/"}) {
    Response r = Get(files, path);
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.body, kIndex) << path;
    EXPECT_EQ(HeaderOf(r, "Content-Type"), "text/html; charset=utf-8") << path;
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-cache") << path;
    ExpectConsoleHeaders(r);
  }
}

TEST_F(ConsoleFilesTest, HashedAssetsAreImmutableWithTheirContentType) {
  ConsoleFiles files(dist_.string());
  struct Case {
    std::string_view path;
    std::string_view type;
    std::string_view cache;
  };
  for (const Case& c : {
           Case{"assets/index-3f2a9c.js", "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable"},
           Case{"assets/index-77aa01.css", "text/css; charset=utf-8",
                "public, max-age=31536000, immutable"},
           Case{"assets/inter-400.woff2", "font/woff2", "public, max-age=31536000, immutable"},
           Case{"favicon.svg", "image/svg+xml", "no-cache"},
           Case{"blob.xyz", "application/octet-stream", "no-cache"},
       }) {
    Response r = Get(files, c.path);
    EXPECT_EQ(r.status, 200) << c.path;
    EXPECT_EQ(HeaderOf(r, "Content-Type"), std::string(c.type)) << c.path;
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), std::string(c.cache)) << c.path;
    ExpectConsoleHeaders(r);
  }
  EXPECT_EQ(Get(files, "assets/index-3f2a9c.js").body, "console.log('custos');");
  EXPECT_EQ(ContentTypeFor("INDEX.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("noextension"), "application/octet-stream");
}

TEST_F(ConsoleFilesTest, AMissingFileWithAnExtensionIs404NotTheConsole) {
  ConsoleFiles files(dist_.string());
  for (std::string_view path : {"assets/gone-123.js", "robots.txt", "users/photo.png"}) {
    Response r = Get(files, path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("<!doctype"))) << path;
    EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store");
    ExpectConsoleHeaders(r);
  }
}

TEST_F(ConsoleFilesTest, NothingOutsideTheDirectoryOrHiddenIsServed) {
  ConsoleFiles files(dist_.string());
  // The router hands the path over decoded: "%2e%2e", "..%2f" and "%2F" arrive as below.
  for (std::string_view path :
       {"../secret.txt", "assets/../../secret.txt", "..", ".", "./index.html", "assets/./x.js",
        ".env", "assets/..\\..\\secret.txt", "leak.txt", "assets//index-3f2a9c.js",
        "a/../../secret.txt", "/etc/passwd", "assets/\x01.js"}) {
    Response r = Get(files, path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("outside the console"))) << path;
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr("SECRET"))) << path;
    ExpectConsoleHeaders(r);
  }
}

TEST_F(ConsoleFilesTest, AnUnbuiltConsoleIs503SayingHowToBuildIt) {
  for (const fs::path& dir : {root_ / "missing", root_}) {  // no directory; no index.html
    ConsoleFiles files(dir.string());
    for (std::string_view path : {"", "assets/index-3f2a9c.js", "users"}) {
      Response r = Get(files, path);
      EXPECT_EQ(r.status, 503) << dir << " " << path;
      EXPECT_THAT(r.body, HasSubstr("make web"));
      EXPECT_EQ(HeaderOf(r, "Cache-Control"), "no-store");
      ExpectConsoleHeaders(r);
    }
  }
  EXPECT_FALSE(ConsoleBuilt((root_ / "missing").string()));
  EXPECT_TRUE(ConsoleBuilt(dist_.string()));
}

TEST_F(ConsoleFilesTest, AnUnchangedFileIs304AndARebuildIsServedAtOnce) {
  ConsoleFiles files(dist_.string());
  Response first = Get(files, "");
  std::optional<std::string> etag = HeaderOf(first, "ETag");
  ASSERT_TRUE(etag.has_value());
  Response same = Get(files, "", *etag);
  EXPECT_EQ(same.status, 304);
  EXPECT_THAT(same.body, IsEmpty());
  ExpectConsoleHeaders(same);

  WriteFile(dist_ / "index.html", "<!doctype html><title>Custos, rebuilt</title>");
  Response rebuilt = Get(files, "", *etag);
  EXPECT_EQ(rebuilt.status, 200);
  EXPECT_THAT(rebuilt.body, HasSubstr("rebuilt"));
  EXPECT_NE(HeaderOf(rebuilt, "ETag"), etag);
}

TEST(ConsoleDirTest, TheConfiguredDirectoryElseTheBuiltIn) {
  Config config;
  EXPECT_TRUE(ConsoleDir(config).ends_with("/web/dist")) << ConsoleDir(config);
  config.console_dir = "/srv/custos/console";
  EXPECT_EQ(ConsoleDir(config), "/srv/custos/console");
}

}  // namespace
}  // namespace custos::api::console
