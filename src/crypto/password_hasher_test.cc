#include "crypto/password_hasher.h"

#include <sodium.h>

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace custos::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr Argon2Params kSmall{.memory_kib = 1024, .iterations = 1};

TEST(PasswordHasherTest, HashVerifiesOnlyTheRightPassword) {
  PasswordHasher hasher(kSmall);
  absl::StatusOr<std::string> encoded = hasher.Hash("correct horse battery staple");
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_THAT(*encoded, StartsWith("$argon2id$v=19$m=1024,t=1,p=1$"));
  EXPECT_TRUE(hasher.Verify(*encoded, "correct horse battery staple"));
  EXPECT_FALSE(hasher.Verify(*encoded, "correct horse battery stapl"));
  EXPECT_FALSE(hasher.Verify(*encoded, "Correct horse battery staple"));
  EXPECT_FALSE(hasher.Verify(*encoded, ""));
}

TEST(PasswordHasherTest, SaltsEveryHash) {
  PasswordHasher hasher(kSmall);
  auto a = hasher.Hash("same");
  auto b = hasher.Hash("same");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(PasswordHasherTest, PasswordsWithNulAndEmptyPasswords) {
  PasswordHasher hasher(kSmall);
  auto with_nul = hasher.Hash(std::string("a\0b", 3));
  ASSERT_TRUE(with_nul.ok());
  EXPECT_TRUE(hasher.Verify(*with_nul, std::string("a\0b", 3)));
  EXPECT_FALSE(hasher.Verify(*with_nul, "a"));
  auto empty = hasher.Hash("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(hasher.Verify(*empty, ""));
}

TEST(PasswordHasherTest, MalformedEncodedIsFalse) {
  PasswordHasher hasher(kSmall);
  auto good = hasher.Hash("pw");
  ASSERT_TRUE(good.ok());
  EXPECT_FALSE(hasher.Verify("", "pw"));
  EXPECT_FALSE(hasher.Verify("not a hash", "pw"));
  EXPECT_FALSE(hasher.Verify("$argon2id$v=19$m=1024,t=1,p=1$", "pw"));
  EXPECT_FALSE(hasher.Verify(good->substr(0, good->size() - 5), "pw"));
  EXPECT_FALSE(hasher.Verify(*good + "AAAA", "pw"));
  std::string with_nul = *good;
  with_nul[with_nul.size() / 2] = '\0';
  EXPECT_FALSE(hasher.Verify(with_nul, "pw"));
  EXPECT_FALSE(hasher.Verify(std::string(*good) + std::string("\0", 1), "pw"));
}

TEST(PasswordHasherTest, OldParametersStillVerifyAndAskForRehash) {
  PasswordHasher small(kSmall);
  auto encoded = small.Hash("pw");
  ASSERT_TRUE(encoded.ok());
  EXPECT_FALSE(small.NeedsRehash(*encoded));

  PasswordHasher more_memory(Argon2Params{.memory_kib = 2048, .iterations = 1});
  EXPECT_TRUE(more_memory.Verify(*encoded, "pw"));
  EXPECT_TRUE(more_memory.NeedsRehash(*encoded));

  PasswordHasher more_passes(Argon2Params{.memory_kib = 1024, .iterations = 2});
  EXPECT_TRUE(more_passes.NeedsRehash(*encoded));
  auto fresh = more_passes.Hash("pw");
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(more_passes.NeedsRehash(*fresh));
}

TEST(PasswordHasherTest, Argon2iAndGarbageNeedRehash) {
  PasswordHasher hasher(kSmall);
  char argon2i[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i, "pw", 2, 3, 1024 * 1024, crypto_pwhash_ALG_ARGON2I13),
            0);
  EXPECT_TRUE(hasher.Verify(argon2i, "pw"));
  EXPECT_TRUE(
      PasswordHasher(Argon2Params{.memory_kib = 1024, .iterations = 3}).NeedsRehash(argon2i));
  EXPECT_TRUE(hasher.NeedsRehash("garbage"));
  EXPECT_TRUE(hasher.NeedsRehash(""));
}

TEST(PasswordHasherTest, DummyHashIsAValidHashAtCurrentParameters) {
  PasswordHasher hasher(kSmall);
  EXPECT_THAT(hasher.DummyHash(), StartsWith("$argon2id$v=19$m=1024,t=1,p=1$"));
  EXPECT_FALSE(hasher.NeedsRehash(hasher.DummyHash()));
  EXPECT_FALSE(hasher.Verify(hasher.DummyHash(), ""));
  EXPECT_EQ(&hasher.DummyHash(), &hasher.DummyHash());
}

TEST(PasswordHasherTest, ParametersOutOfRangeAreAnError) {
  PasswordHasher hasher(Argon2Params{.memory_kib = 4, .iterations = 1});
  auto encoded = hasher.Hash("pw");
  EXPECT_EQ(encoded.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(hasher.DummyHash().empty());
  EXPECT_EQ(
      PasswordHasher(Argon2Params{.memory_kib = 1024, .iterations = 0}).Hash("pw").status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(PasswordHasherTest, DefaultParametersAreOwaspMinimum) {
  PasswordHasher hasher(Argon2Params{});
  auto encoded = hasher.Hash("pw");
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_THAT(*encoded, HasSubstr("$m=19456,t=2,p=1$"));
  EXPECT_TRUE(hasher.Verify(*encoded, "pw"));
  EXPECT_FALSE(hasher.Verify(*encoded, "pW"));
  EXPECT_FALSE(hasher.NeedsRehash(*encoded));
}

}  // namespace
}  // namespace custos::crypto
