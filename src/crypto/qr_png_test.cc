#include "crypto/qr_png.h"

#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace custos::crypto {
namespace {

struct Chunk {
  std::string type;
  std::string data;
};

uint32_t U32(std::string_view s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

// Splits a PNG into chunks, checking the signature and every CRC.
std::vector<Chunk> ParsePng(const std::string& png) {
  std::vector<Chunk> chunks;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  size_t at = 8;
  while (at + 12 <= png.size()) {
    uint32_t len = U32(png, at);
    Chunk c{png.substr(at + 4, 4), png.substr(at + 8, len)};
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(png.data() + at + 4), len + 4);
    EXPECT_EQ(U32(png, at + 8 + len), crc) << c.type;
    chunks.push_back(c);
    at += 12 + len;
  }
  EXPECT_EQ(at, png.size());
  return chunks;
}

class DecodedPng {
 public:
  explicit DecodedPng(const std::string& png) {
    std::vector<Chunk> chunks = ParsePng(png);
    if (chunks.size() != 3) {
      ADD_FAILURE() << "expected IHDR, IDAT, IEND";
      return;
    }
    EXPECT_EQ(chunks[0].type, "IHDR");
    EXPECT_EQ(chunks[1].type, "IDAT");
    EXPECT_EQ(chunks[2].type, "IEND");
    EXPECT_EQ(chunks[2].data, "");
    const std::string& ihdr = chunks[0].data;
    EXPECT_EQ(ihdr.size(), 13u);
    width = U32(ihdr, 0);
    height = U32(ihdr, 4);
    EXPECT_EQ(ihdr.substr(8), std::string("\x01\x00\x00\x00\x00", 5))
        << "bit depth 1, greyscale, deflate, filter 0, no interlace";
    row_bytes_ = 1 + (width + 7) / 8;
    raw_.resize(row_bytes_ * height);
    uLongf raw_len = raw_.size();
    EXPECT_EQ(
        uncompress(reinterpret_cast<Bytef*>(raw_.data()), &raw_len,
                   reinterpret_cast<const Bytef*>(chunks[1].data.data()), chunks[1].data.size()),
        Z_OK);
    EXPECT_EQ(raw_len, raw_.size());
    for (uint32_t y = 0; y < height; ++y) EXPECT_EQ(raw_[y * row_bytes_], 0) << "filter, row " << y;
  }

  bool Dark(uint32_t x, uint32_t y) const {
    auto byte = static_cast<unsigned char>(raw_[y * row_bytes_ + 1 + x / 8]);
    return (byte & (0x80 >> (x % 8))) == 0;
  }

  uint32_t width = 0;
  uint32_t height = 0;

 private:
  size_t row_bytes_ = 0;
  std::string raw_;
};

TEST(QrPngTest, SmallTextIsVersionOneWithQuietZone) {
  absl::StatusOr<std::string> png = QrPng("hello", 4);
  ASSERT_TRUE(png.ok()) << png.status();
  DecodedPng image(*png);
  // Version 1 is 21 modules, plus 4 quiet modules each side, 4 pixels per module.
  EXPECT_EQ(image.width, (21u + 8) * 4);
  EXPECT_EQ(image.height, image.width);
  // Quiet zone is white; the top-left finder pattern starts dark at module (4, 4), and its
  // ring of light modules starts at module (5, 5).
  EXPECT_FALSE(image.Dark(0, 0));
  EXPECT_FALSE(image.Dark(15, 15));
  EXPECT_TRUE(image.Dark(16, 16));
  EXPECT_TRUE(image.Dark(19, 19));
  EXPECT_FALSE(image.Dark(20, 20));
  EXPECT_TRUE(image.Dark(24, 24));  // centre 3x3 of the finder
  EXPECT_FALSE(image.Dark(image.width - 1, image.height - 1));
}

TEST(QrPngTest, ScaleAndTotpUriSize) {
  std::string uri =
      "otpauth://totp/Acme%20Corp:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
      "&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30";
  absl::StatusOr<std::string> png = QrPng(uri, 3);
  ASSERT_TRUE(png.ok()) << png.status();
  DecodedPng image(*png);
  ASSERT_EQ(image.width % 3, 0u);
  uint32_t modules = image.width / 3 - 8;
  EXPECT_EQ((modules - 17) % 4, 0u) << modules;  // 17 + 4 * version
  EXPECT_GE(modules, 37u);                       // 140 bytes need at least version 5 at M
  EXPECT_EQ(image.height, image.width);
}

TEST(QrPngTest, RejectsBadArguments) {
  EXPECT_EQ(QrPng("x", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QrPng("x", 65).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QrPng("", 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QrPng(std::string("a\0b", 3), 4).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QrPng(std::string(4000, 'x'), 1).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace custos::crypto
