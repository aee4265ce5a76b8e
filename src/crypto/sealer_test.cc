#include "crypto/sealer.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace custos::crypto {
namespace {

using ::testing::HasSubstr;

const std::string kKey(32, 'k');

// A fresh directory per test, since ctest runs tests in parallel processes.
class SealerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/custos_sealer_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static mode_t Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  void WriteFile(const std::string& path, const std::string& data, mode_t mode) {
    std::ofstream(path, std::ios::binary) << data;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  }

  std::string dir_;
};

TEST(SealerTest, RoundTrip) {
  auto sealer = Sealer::FromKey(kKey);
  ASSERT_NE(sealer, nullptr);
  std::string sealed = sealer->Seal("totp seed bytes", "factor uft123");
  EXPECT_EQ(sealed.size(), 1 + 24 + 15 + 16u);
  EXPECT_EQ(sealed[0], '\x01');
  EXPECT_EQ(sealed.find("totp seed bytes"), std::string::npos);
  auto opened = sealer->Open(sealed, "factor uft123");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "totp seed bytes");
}

TEST(SealerTest, EmptyPlaintextAndAssociatedData) {
  auto sealer = Sealer::FromKey(kKey);
  auto opened = sealer->Open(sealer->Seal("", ""), "");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "");
}

TEST(SealerTest, FreshNonceEachTime) {
  auto sealer = Sealer::FromKey(kKey);
  EXPECT_NE(sealer->Seal("x", "ad"), sealer->Seal("x", "ad"));
}

TEST(SealerTest, AnyAlteredByteIsDataLoss) {
  auto sealer = Sealer::FromKey(kKey);
  const std::string sealed = sealer->Seal("secret", "ad");
  for (size_t i = 0; i < sealed.size(); ++i) {
    std::string tampered = sealed;
    tampered[i] ^= 0x01;
    EXPECT_EQ(sealer->Open(tampered, "ad").status().code(), absl::StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ(sealer->Open(sealed.substr(0, sealed.size() - 1), "ad").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(sealer->Open("", "ad").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SealerTest, WrongAssociatedDataIsDataLoss) {
  auto sealer = Sealer::FromKey(kKey);
  std::string sealed = sealer->Seal("secret", "factor A");
  EXPECT_EQ(sealer->Open(sealed, "factor B").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(sealer->Open(sealed, "").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SealerTest, OtherKeyCannotOpen) {
  std::string sealed = Sealer::FromKey(kKey)->Seal("secret", "ad");
  auto other = Sealer::FromKey(std::string(32, 'o'));
  EXPECT_EQ(other->Open(sealed, "ad").status().code(), absl::StatusCode::kDataLoss);
}

TEST(SealerTest, FromKeyNeedsThirtyTwoBytes) {
  EXPECT_EQ(Sealer::FromKey(std::string(31, 'k')), nullptr);
  EXPECT_EQ(Sealer::FromKey(std::string(33, 'k')), nullptr);
}

TEST_F(SealerFileTest, CreatesKeyFileAndDirectoriesPrivately) {
  std::string path = dir_ + "/data/keys/seal.key";
  auto first = Sealer::OpenOrCreate(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(Mode(dir_ + "/data"), 0700u);
  EXPECT_EQ(Mode(dir_ + "/data/keys"), 0700u);
  EXPECT_EQ(std::filesystem::file_size(path), 32u);

  // The next start reads the same key.
  std::string sealed = (*first)->Seal("secret", "ad");
  auto second = Sealer::OpenOrCreate(path);
  ASSERT_TRUE(second.ok()) << second.status();
  auto opened = (*second)->Open(sealed, "ad");
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, "secret");
}

TEST_F(SealerFileTest, LoadsExistingKey) {
  std::string path = dir_ + "/seal.key";
  WriteFile(path, kKey, 0600);
  auto sealer = Sealer::OpenOrCreate(path);
  ASSERT_TRUE(sealer.ok()) << sealer.status();
  auto opened = (*sealer)->Open(Sealer::FromKey(kKey)->Seal("s", "ad"), "ad");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, "s");
}

TEST_F(SealerFileTest, RefusesKeyFileOthersCanAccess) {
  std::string path = dir_ + "/seal.key";
  for (mode_t mode : {0644, 0640, 0604, 0660, 0602}) {
    WriteFile(path, kKey, mode);
    auto sealer = Sealer::OpenOrCreate(path);
    ASSERT_FALSE(sealer.ok()) << std::oct << mode;
    EXPECT_EQ(sealer.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(sealer.status().message()), HasSubstr(path));
  }
  WriteFile(path, kKey, 0400);
  EXPECT_TRUE(Sealer::OpenOrCreate(path).ok());
}

TEST_F(SealerFileTest, RefusesKeyFileOfWrongSize) {
  std::string path = dir_ + "/seal.key";
  for (size_t size : {0, 16, 31, 33, 64}) {
    WriteFile(path, std::string(size, 'k'), 0600);
    auto sealer = Sealer::OpenOrCreate(path);
    ASSERT_FALSE(sealer.ok()) << size;
    EXPECT_EQ(sealer.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(sealer.status().message()), HasSubstr(path));
  }
}

TEST_F(SealerFileTest, RefusesDirectoryInPlaceOfKeyFile) {
  std::string path = dir_ + "/seal.key";
  ASSERT_TRUE(std::filesystem::create_directory(path));
  ::chmod(path.c_str(), 0700);
  auto sealer = Sealer::OpenOrCreate(path);
  ASSERT_FALSE(sealer.ok());
  EXPECT_THAT(std::string(sealer.status().message()), HasSubstr(path));
}

TEST_F(SealerFileTest, ErrorWhenParentIsAFile) {
  WriteFile(dir_ + "/file", "x", 0600);
  auto sealer = Sealer::OpenOrCreate(dir_ + "/file/seal.key");
  ASSERT_FALSE(sealer.ok());
  EXPECT_THAT(std::string(sealer.status().message()), HasSubstr(dir_ + "/file/seal.key"));
}

}  // namespace
}  // namespace custos::crypto
