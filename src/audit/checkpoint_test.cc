#include "audit/checkpoint.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace custos::audit {
namespace {

using ::testing::HasSubstr;

const std::string kRoot(32, '\x5a');
const std::string kRootB64 = crypto::Base64Encode(kRoot);

TEST(CheckpointTest, FormatsTheC2spBody) {
  Checkpoint cp{"id.example.com/t/acme", 1234, kRoot, {}};
  EXPECT_EQ(FormatCheckpoint(cp).value(), "id.example.com/t/acme\n1234\n" + kRootB64 + "\n");
}

TEST(CheckpointTest, RoundTripsWithAndWithoutExtensions) {
  for (const Checkpoint& cp : {
           Checkpoint{"id.example.com/t/acme", 0, kRoot, {}},
           Checkpoint{"o", 18446744073709551615u, std::string(32, '\0'), {}},
           Checkpoint{"go.sum database tree", 7, kRoot, {"ext one", "\xe2\x80\x94 not a sig"}},
       }) {
    std::string body = FormatCheckpoint(cp).value();
    absl::StatusOr<Checkpoint> parsed = ParseCheckpoint(body);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, cp);
  }
}

TEST(CheckpointTest, FormatRejectsInvalidCheckpoints) {
  EXPECT_FALSE(FormatCheckpoint({"", 1, kRoot, {}}).ok());
  EXPECT_FALSE(FormatCheckpoint({"a\nb", 1, kRoot, {}}).ok());
  EXPECT_FALSE(FormatCheckpoint({"o", 1, std::string(31, 'x'), {}}).ok());
  EXPECT_FALSE(FormatCheckpoint({"o", 1, kRoot, {""}}).ok());
  EXPECT_FALSE(FormatCheckpoint({"o", 1, kRoot, {"a\nb"}}).ok());
}

TEST(CheckpointTest, ParseRejectsMalformedBodies) {
  struct Case {
    std::string body;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"o\n1\n" + kRootB64, "newline"},
           {"", "newline"},
           {"o\n1\n", "expected origin"},
           {"\n1\n" + kRootB64 + "\n", "empty origin"},
           {"o\n01\n" + kRootB64 + "\n", "tree size"},
           {"o\n\n" + kRootB64 + "\n", "tree size"},
           {"o\n-1\n" + kRootB64 + "\n", "tree size"},
           {"o\n+1\n" + kRootB64 + "\n", "tree size"},
           {"o\n 1\n" + kRootB64 + "\n", "tree size"},
           {"o\n18446744073709551616\n" + kRootB64 + "\n", "tree size"},
           {"o\n1\n" + crypto::Base64Encode(std::string(31, 'x')) + "\n", "not 32 bytes"},
           {"o\n1\n" + crypto::Base64Encode(std::string(33, 'x')) + "\n", "not 32 bytes"},
           {"o\n1\n" + crypto::Base64UrlEncode(std::string(32, '\xff')) + "\n", "base64"},
           {"o\n1\n" + kRootB64 + "\n\next\n", "empty extension"},
       }) {
    absl::Status st = ParseCheckpoint(c.body).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_THAT(std::string(st.message()), HasSubstr(c.message)) << c.body;
  }
}

TEST(CheckpointTest, ParsesZeroSize) {
  absl::StatusOr<Checkpoint> cp = ParseCheckpoint("o\n0\n" + kRootB64 + "\n");
  ASSERT_TRUE(cp.ok()) << cp.status();
  EXPECT_EQ(cp->size, 0u);
}

}  // namespace
}  // namespace custos::audit
