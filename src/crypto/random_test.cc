#include "crypto/random.h"

#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace custos::crypto {
namespace {

using ::testing::MatchesRegex;

TEST(SeededRandomTest, SameSeedSameSequence) {
  SeededRandom a(42);
  SeededRandom b(42);
  EXPECT_EQ(a.Bytes(40), b.Bytes(40));
  EXPECT_EQ(a.Id("00u"), b.Id("00u"));
  EXPECT_EQ(a.Uuid(), b.Uuid());
}

TEST(SeededRandomTest, DifferentSeedsAndCallsDiffer) {
  SeededRandom a(1);
  SeededRandom b(2);
  std::string a1 = a.Bytes(32);
  EXPECT_NE(a1, b.Bytes(32));
  EXPECT_NE(a1, a.Bytes(32));  // the stream moves on
}

TEST(SeededRandomTest, IsChaCha20KeystreamOfTheSeed) {
  // Seed 0 is the all-zero key; the first call uses nonce 0: the keystream of RFC 7539's
  // original-ChaCha20 test vector 1 (draft-agl-tls-chacha20poly1305 section 7, TC1).
  SeededRandom r(0);
  EXPECT_EQ(HexEncode(r.Bytes(32)),
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7");
}

TEST(RandomTest, IdHasPrefixAndSeventeenBase62Characters) {
  SeededRandom r(7);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string id = r.Id("00u");
    EXPECT_THAT(id, MatchesRegex("00u[0-9A-Za-z]{17}"));
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
}

// Returns the scripted bytes, then zeros.
class ScriptedRandom final : public Random {
 public:
  explicit ScriptedRandom(std::vector<unsigned char> bytes) : bytes_(std::move(bytes)) {}
  void Fill(void* out, size_t n) override {
    auto* p = static_cast<unsigned char*>(out);
    for (size_t i = 0; i < n; ++i) p[i] = next_ < bytes_.size() ? bytes_[next_++] : 0;
  }

 private:
  std::vector<unsigned char> bytes_;
  size_t next_ = 0;
};

TEST(RandomTest, IdRedrawsBytesThatWouldBiasTheAlphabet) {
  // 248..255 would map onto '0'..'7' a second time under a plain modulo; they must be skipped.
  ScriptedRandom r({248, 249, 250, 251, 252, 253, 254, 255, 61, 1});
  EXPECT_EQ(r.Id("x"), "xz1000000000000000");
}

TEST(RandomTest, IdKeepsDrawingWhenManyBytesAreRejected) {
  std::vector<unsigned char> bytes(100, 255);
  bytes.push_back(10);
  ScriptedRandom r(bytes);
  EXPECT_EQ(r.Id(""), "A0000000000000000");
}

TEST(RandomTest, UuidIsVersion4) {
  SeededRandom r(9);
  for (int i = 0; i < 50; ++i) {
    EXPECT_THAT(
        r.Uuid(),
        MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  }
}

TEST(RandomTest, UuidV7CarriesTheMillisecondsAndSortsByTime) {
  SeededRandom r(9);
  // 2026-01-01T00:00:00.123Z = 1767225600123 ms = 0x019b76daa87b.
  const absl::Time t = absl::FromUnixMillis(1767225600123);
  std::string a = r.UuidV7(t);
  EXPECT_THAT(a, MatchesRegex("019b76da-a87b-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  std::string previous = a;
  for (int i = 1; i < 50; ++i) {
    std::string next = r.UuidV7(t + absl::Milliseconds(i));
    EXPECT_LT(previous, next);
    previous = next;
  }
  EXPECT_NE(r.UuidV7(t), r.UuidV7(t)) << "74 random bits within one millisecond";
}

TEST(RandomTest, TokenIsBase64UrlOfRequestedBytes) {
  SeededRandom r(3);
  std::string token = r.Token();
  EXPECT_EQ(token.size(), 43u);
  auto raw = Base64UrlDecode(token);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 32u);
  EXPECT_EQ(r.Token(16).size(), 22u);
}

TEST(SystemRandomTest, ProducesDistinctValues) {
  Random& r = SystemRandom();
  EXPECT_EQ(&r, &SystemRandom());
  EXPECT_NE(r.Bytes(32), r.Bytes(32));
  EXPECT_NE(r.Id("00u"), r.Id("00u"));
  EXPECT_THAT(r.Id("00o"), MatchesRegex("00o[0-9A-Za-z]{17}"));
}

TEST(SeededRandomTest, ConcurrentCallersNeverShareOutput) {
  SeededRandom r(5);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::vector<std::string>> out(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, &out, t] {
      for (int i = 0; i < kPerThread; ++i) out[t].push_back(r.Bytes(16));
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : out) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace custos::crypto
