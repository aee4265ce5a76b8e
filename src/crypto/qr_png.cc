#include "crypto/qr_png.h"

#include <qrencode.h>
#include <zlib.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"

namespace custos::crypto {
namespace {

constexpr int kQuietZoneModules = 4;
constexpr int kMaxScale = 64;

void PutU32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

// Length, type, data, CRC-32 over type and data (PNG spec section 5.3).
void PutChunk(std::string& png, std::string_view type, std::string_view data) {
  PutU32(png, static_cast<uint32_t>(data.size()));
  size_t crc_start = png.size();
  png.append(type);
  png.append(data);
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(png.data() + crc_start),
              static_cast<uInt>(png.size() - crc_start));
  PutU32(png, static_cast<uint32_t>(crc));
}

struct QrFree {
  void operator()(QRcode* q) const { QRcode_free(q); }
};

}  // namespace

absl::StatusOr<std::string> QrPng(std::string_view text, int scale) {
  if (scale < 1 || scale > kMaxScale) {
    return absl::InvalidArgumentError("QR scale must be 1 to 64 pixels per module");
  }
  if (text.empty() || text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("QR text must be non-empty and contain no NUL");
  }
  std::string c_text(text);
  std::unique_ptr<QRcode, QrFree> qr(
      QRcode_encodeString(c_text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1));
  if (qr == nullptr) {
    return absl::InvalidArgumentError("text does not fit in a QR code");
  }

  const int modules = qr->width + 2 * kQuietZoneModules;
  const uint32_t size = static_cast<uint32_t>(modules * scale);
  const size_t row_bytes = 1 + (size + 7) / 8;  // filter type byte, then 1 bit per pixel
  std::string raw(row_bytes * size, '\0');
  for (uint32_t y = 0; y < size; ++y) {
    unsigned char* row = reinterpret_cast<unsigned char*>(raw.data()) + y * row_bytes;
    row[0] = 0;  // filter: none
    const int my = static_cast<int>(y) / scale - kQuietZoneModules;
    for (uint32_t x = 0; x < size; ++x) {
      const int mx = static_cast<int>(x) / scale - kQuietZoneModules;
      bool dark = mx >= 0 && my >= 0 && mx < qr->width && my < qr->width &&
                  (qr->data[my * qr->width + mx] & 1) != 0;
      // In 1-bit greyscale, 1 is white.
      if (!dark) row[1 + x / 8] |= static_cast<unsigned char>(0x80u >> (x % 8));
    }
  }

  std::string idat(compressBound(static_cast<uLong>(raw.size())), '\0');
  uLongf idat_len = static_cast<uLongf>(idat.size());
  if (compress2(reinterpret_cast<Bytef*>(idat.data()), &idat_len,
                reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()),
                Z_BEST_COMPRESSION) != Z_OK) {
    return absl::InternalError("zlib could not compress the QR image");
  }
  idat.resize(idat_len);

  std::string ihdr;
  PutU32(ihdr, size);
  PutU32(ihdr, size);
  ihdr.push_back(1);  // bit depth
  ihdr.push_back(0);  // colour type: greyscale
  ihdr.push_back(0);  // compression: deflate
  ihdr.push_back(0);  // filter method 0
  ihdr.push_back(0);  // no interlace

  std::string png("\x89PNG\r\n\x1a\n", 8);
  PutChunk(png, "IHDR", ihdr);
  PutChunk(png, "IDAT", idat);
  PutChunk(png, "IEND", "");
  return png;
}

}  // namespace custos::crypto
