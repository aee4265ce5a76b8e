#include "crypto/encoding.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace custos::crypto {
namespace {

using ::testing::Eq;
using ::testing::Optional;

// RFC 4648 section 10.
TEST(EncodingTest, Base64Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
}

// RFC 4648 section 10, decoding.
TEST(EncodingTest, Base64DecodeRfc4648Vectors) {
  EXPECT_THAT(Base64Decode(""), Optional(Eq("")));
  EXPECT_THAT(Base64Decode("Zg=="), Optional(Eq("f")));
  EXPECT_THAT(Base64Decode("Zm8="), Optional(Eq("fo")));
  EXPECT_THAT(Base64Decode("Zm9v"), Optional(Eq("foo")));
  EXPECT_THAT(Base64Decode("Zm9vYg=="), Optional(Eq("foob")));
  EXPECT_THAT(Base64Decode("Zm9vYmE="), Optional(Eq("fooba")));
  EXPECT_THAT(Base64Decode("Zm9vYmFy"), Optional(Eq("foobar")));
}

TEST(EncodingTest, Base64DecodeIsStrict) {
  EXPECT_THAT(Base64Decode("+/+/"), Optional(Eq(std::string("\xfb\xff\xbf", 3))));
  EXPECT_EQ(Base64Decode("-_-_"), std::nullopt);  // URL alphabet
  EXPECT_EQ(Base64Decode("Zg"), std::nullopt);    // padding missing
  EXPECT_EQ(Base64Decode("Zg="), std::nullopt);
  EXPECT_EQ(Base64Decode("Zm8=="), std::nullopt);
  EXPECT_EQ(Base64Decode("Zh=="), std::nullopt);  // non-zero unused bits
  EXPECT_EQ(Base64Decode("Zm9v\n"), std::nullopt);
  EXPECT_EQ(Base64Decode("Zg==Zg=="), std::nullopt);
}

TEST(EncodingTest, Base64UrlRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
  EXPECT_THAT(Base64UrlDecode(""), Optional(Eq("")));
  EXPECT_THAT(Base64UrlDecode("Zg"), Optional(Eq("f")));
  EXPECT_THAT(Base64UrlDecode("Zm8"), Optional(Eq("fo")));
  EXPECT_THAT(Base64UrlDecode("Zm9vYg"), Optional(Eq("foob")));
  EXPECT_THAT(Base64UrlDecode("Zm9vYmE"), Optional(Eq("fooba")));
  EXPECT_THAT(Base64UrlDecode("Zm9vYmFy"), Optional(Eq("foobar")));
}

TEST(EncodingTest, Base64UrlUsesUrlAlphabet) {
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  EXPECT_THAT(Base64UrlDecode("-_-_"), Optional(Eq(bytes)));
  EXPECT_EQ(Base64UrlDecode("+/+/"), std::nullopt);
}

TEST(EncodingTest, Base64UrlAcceptsCorrectPaddingOnly) {
  EXPECT_THAT(Base64UrlDecode("Zg=="), Optional(Eq("f")));
  EXPECT_THAT(Base64UrlDecode("Zm8="), Optional(Eq("fo")));
  EXPECT_EQ(Base64UrlDecode("Zg="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zm8=="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Z==="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zg==Zg=="), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("="), std::nullopt);
}

TEST(EncodingTest, Base64UrlRejectsBadInput) {
  EXPECT_EQ(Base64UrlDecode("Z"), std::nullopt);         // impossible length
  EXPECT_EQ(Base64UrlDecode("Zm9v Zg"), std::nullopt);   // space
  EXPECT_EQ(Base64UrlDecode("Zm9v\nZg"), std::nullopt);  // newline
  EXPECT_EQ(Base64UrlDecode(std::string("Zm\0v", 4)), std::nullopt);
  EXPECT_EQ(Base64UrlDecode("Zh"), std::nullopt);  // non-zero unused bits ("Zg" is canonical)
}

TEST(EncodingTest, Base32Rfc4648Vectors) {
  // Section 10 lists padded forms; ours are unpadded.
  EXPECT_EQ(Base32Encode(""), "");
  EXPECT_EQ(Base32Encode("f"), "MY");
  EXPECT_EQ(Base32Encode("fo"), "MZXQ");
  EXPECT_EQ(Base32Encode("foo"), "MZXW6");
  EXPECT_EQ(Base32Encode("foob"), "MZXW6YQ");
  EXPECT_EQ(Base32Encode("fooba"), "MZXW6YTB");
  EXPECT_EQ(Base32Encode("foobar"), "MZXW6YTBOI");
  EXPECT_THAT(Base32Decode("MY======"), Optional(Eq("f")));
  EXPECT_THAT(Base32Decode("MZXQ===="), Optional(Eq("fo")));
  EXPECT_THAT(Base32Decode("MZXW6==="), Optional(Eq("foo")));
  EXPECT_THAT(Base32Decode("MZXW6YQ="), Optional(Eq("foob")));
  EXPECT_THAT(Base32Decode("MZXW6YTB"), Optional(Eq("fooba")));
  EXPECT_THAT(Base32Decode("MZXW6YTBOI======"), Optional(Eq("foobar")));
  EXPECT_THAT(Base32Decode("MZXW6YTBOI"), Optional(Eq("foobar")));
}

TEST(EncodingTest, Base32DecodeIsCaseInsensitive) {
  EXPECT_THAT(Base32Decode("mzxw6ytboi"), Optional(Eq("foobar")));
  // The RFC 6238 test seed, as authenticator apps show it.
  EXPECT_THAT(Base32Decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
              Optional(Eq("12345678901234567890")));
}

TEST(EncodingTest, Base32RejectsBadInput) {
  EXPECT_EQ(Base32Decode("MZXW1"), std::nullopt);  // '1' is not in the alphabet
  EXPECT_EQ(Base32Decode("MZXW0"), std::nullopt);
  EXPECT_EQ(Base32Decode("M"), std::nullopt);  // impossible lengths
  EXPECT_EQ(Base32Decode("MZX"), std::nullopt);
  EXPECT_EQ(Base32Decode("MZXW6Y"), std::nullopt);
  EXPECT_EQ(Base32Decode("MY====="), std::nullopt);  // padding to 7
  EXPECT_EQ(Base32Decode("MZ"), std::nullopt);       // non-zero unused bits ("MY" is canonical)
  EXPECT_EQ(Base32Decode("MZXW 6YTB"), std::nullopt);
}

TEST(EncodingTest, Hex) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode("foobar"), "666f6f626172");  // RFC 4648 section 10 (base16), lower case
  EXPECT_EQ(HexEncode(std::string("\x00\xff", 2)), "00ff");
  EXPECT_THAT(HexDecode("666F6F626172"), Optional(Eq("foobar")));
  EXPECT_THAT(HexDecode("666f6f626172"), Optional(Eq("foobar")));
  EXPECT_EQ(HexDecode("666"), std::nullopt);
  EXPECT_EQ(HexDecode("6g"), std::nullopt);
  EXPECT_EQ(HexDecode("0x66"), std::nullopt);
}

TEST(EncodingTest, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= all.size(); len += 37) {
    std::string data = all.substr(all.size() - len);
    EXPECT_THAT(Base64UrlDecode(Base64UrlEncode(data)), Optional(Eq(data)));
    EXPECT_THAT(Base64Decode(Base64Encode(data)), Optional(Eq(data)));
    EXPECT_THAT(Base32Decode(Base32Encode(data)), Optional(Eq(data)));
    EXPECT_THAT(HexDecode(HexEncode(data)), Optional(Eq(data)));
  }
}

}  // namespace
}  // namespace custos::crypto
